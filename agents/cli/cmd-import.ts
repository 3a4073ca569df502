// `opscrew import PLAN.md [--dry-run] [--json]`: split a planning document into backlog tasks.
// Ids are handed out under the store's write lock (like `tasks new`), so a concurrent `tasks new`
// or daemon intake cannot take the same ones; the queue is rescanned afterwards to mirror the files.
import { existsSync } from 'node:fs';
import { isAbsolute, relative, resolve } from 'node:path';
import type { Command } from 'commander';
import { formatIssue, type Issue } from '../../mcp-server/core/errors.js';
import type { ImportResult } from '../../mcp-server/core/plan-write.js';
import { resolveWorkspace } from '../../mcp-server/core/workspace.js';
import { CliError, workspaceDir, type CliContext } from './context.js';
import { EXIT } from './exit-codes.js';
import { printJson, printLines, renderTable, type CliIO } from './output.js';

export interface ImportOptions {
  dryRun?: boolean;
  json?: boolean;
}

export function registerImport(program: Command, ctx: CliContext): void {
  program
    .command('import')
    .description(
      'split a planning document into backlog tasks: numbered sections become tasks, a roadmap table or P0-P3 labels give priorities, sh/bash/console blocks become Steps, "Done when"/"Success criteria" lists become Acceptance Criteria',
    )
    .argument('<plan>', 'the plan (a Markdown file)')
    .option('--dry-run', 'print what would be created; write nothing')
    .option('--json', 'print JSON')
    .action(async (plan: string, opts: ImportOptions, cmd: Command) => {
      ctx.exitCode = await importCommand(ctx.io, workspaceDir(ctx.io, cmd), plan, opts);
    });
}

function planDisplayName(io: CliIO, abs: string): string {
  const rel = relative(io.cwd, abs);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) ? rel : abs;
}

export async function importCommand(io: CliIO, dir: string, plan: string, opts: ImportOptions): Promise<number> {
  const { importPlan } = await import('../../mcp-server/core/plan-write.js');
  const planPath = resolve(io.cwd, plan);
  const planName = planDisplayName(io, planPath);
  const ws = resolveWorkspace(dir);
  const hasWorkspace = existsSync(ws.tasksDir);
  if (!opts.dryRun && !hasWorkspace) {
    throw new CliError(EXIT.CONFIG, `${ws.root} is not an opscrew workspace (no tasks/ folder): run \`opscrew init ${ws.root}\` or pass --workspace DIR`);
  }

  let res: ReturnType<typeof importPlan>;
  if (opts.dryRun || !hasWorkspace) {
    // A dry run reads the folders for the next ids but opens no store: ids may still shift.
    res = importPlan({ workspace: ws, planPath, planName, dryRun: true });
  } else {
    const [{ openStore }, { createFolderQueue }, rows] = await Promise.all([
      import('../../mcp-server/core/store.js'),
      import('../../mcp-server/core/queue.js'),
      import('../../mcp-server/core/queue-rows.js'),
    ]);
    const store = openStore(ws.dbPath);
    try {
      const queue = createFolderQueue({ workspace: ws, store });
      await queue.scan();
      res = store.db.immediate(() => importPlan({ workspace: ws, planPath, planName, firstNumber: rows.maxTaskNumber(store.db) + 1 }));
      if (res.ok && res.value.created.length > 0) await queue.scan();
    } finally {
      store.close();
    }
  }

  if (!res.ok) {
    if (opts.json) printJson(io, { ok: false, code: res.code, message: res.message });
    throw new CliError(EXIT.FAILED, res.message);
  }
  const r = res.value;
  if (opts.json) {
    printJson(io, { ok: true, ...r });
    return EXIT.OK;
  }
  printSummary(io, r);
  return EXIT.OK;
}

function criteriaCell(c: ImportResult['created'][number]['criteria']): string {
  const total = c.verify + c.manual + c.na;
  if (total === 0) return '0';
  const parts = [c.verify > 0 ? `${c.verify} verify` : '', c.manual > 0 ? `${c.manual} manual` : '', c.na > 0 ? `${c.na} n/a` : ''].filter((p) => p !== '');
  return `${total} (${parts.join(', ')})`;
}

function printSummary(io: CliIO, r: ImportResult): void {
  const n = r.created.length;
  io.out(
    r.dryRun
      ? `Plan "${r.plan.title}" (${r.plan.file}): would create ${n} task(s); dry run, nothing written.\n`
      : `Plan "${r.plan.title}" (${r.plan.file}): created ${n} task(s) in tasks/backlog/.\n`,
  );
  printLines(
    io,
    renderTable(r.created, [
      { header: 'ID', get: (t) => t.id },
      { header: 'PRIORITY', get: (t) => t.priority },
      { header: 'EST', get: (t) => t.estimate ?? '-', max: 12 },
      { header: 'STEPS', get: (t) => String(t.steps) },
      { header: 'CRITERIA', get: (t) => criteriaCell(t.criteria) },
      { header: 'ROLLBACK', get: (t) => String(t.rollback) },
      { header: 'DEPENDS', get: (t) => (t.dependsOn.length > 0 ? t.dependsOn.join(',') : '-'), max: 28 },
      { header: 'TITLE', get: (t) => t.title, max: 72 },
    ]),
  );
  if (!r.dryRun) printLines(io, r.created.map((t) => `created ${t.id} ${t.file}`));
  if (r.warnings.length > 0) {
    io.out(`\n${r.warnings.length} warning(s):\n`);
    printLines(io, r.warnings.map((w: Issue) => `warning: ${formatIssue(w)}`));
  }
}
