// `opscrew approve ID` / `opscrew deny ID`: a person decides a pending approval request while a
// run waits on it (`status: awaiting-approval` in the task file). `approve --list` shows them.
// The decider is recorded as `person:<login name>`; an agent can never approve its own request.
import { userInfo } from 'node:os';
import type { Command } from 'commander';
import { CliError, workspaceDir, type CliContext } from './context.js';
import { EXIT } from './exit-codes.js';
import type { CliIO } from './output.js';

export function registerApprove(program: Command, ctx: CliContext): void {
  program
    .command('approve')
    .description('approve a pending request so the waiting run continues (the exact command it was asked for, once)')
    .argument('[id]', 'the request id (apr-xxxxxxxx) shown by the waiting run')
    .option('--list', 'list pending requests instead')
    .option('--json', 'print JSON')
    .action(async (id: string | undefined, opts: { list?: boolean; json?: boolean }, cmd: Command) => {
      const dir = workspaceDir(ctx.io, cmd);
      ctx.exitCode = opts.list || id === undefined ? await listPending(ctx.io, dir, opts) : await decide(ctx.io, dir, id, true, opts);
    });
  program
    .command('deny')
    .description('deny a pending request: the waiting run stops and its task is blocked with the reason')
    .argument('<id>', 'the request id (apr-xxxxxxxx)')
    .option('--json', 'print JSON')
    .action(async (id: string, opts: { json?: boolean }, cmd: Command) => {
      ctx.exitCode = await decide(ctx.io, workspaceDir(ctx.io, cmd), id, false, opts);
    });
}

/** Who decides: the login name, prefixed so it can never equal an agent name. */
export function personName(): string {
  let name = 'unknown';
  try {
    name = userInfo().username || name;
  } catch {
    // no passwd entry (some containers): still a person, just unnamed
  }
  return `person:${name}`;
}

async function openDb(dir: string) {
  const { requireWorkspace } = await import('./tasks-actions.js');
  const { existsSync } = await import('node:fs');
  const ws = requireWorkspace(dir);
  if (!existsSync(ws.dbPath)) throw new CliError(EXIT.FAILED, `no approval requests yet: ${ws.dbPath} does not exist (nothing has run in this workspace)`);
  const { openStore } = await import('../../mcp-server/core/store.js');
  return openStore(ws.dbPath);
}

export async function decide(io: CliIO, dir: string, id: string, approve: boolean, opts: { json?: boolean }): Promise<number> {
  const store = await openDb(dir);
  try {
    const { decideApproval } = await import('../../mcp-server/core/approvals.js');
    const r = decideApproval(store.db, id, { by: personName(), approve, now: io.now() });
    if (!r.ok) throw new CliError(EXIT.FAILED, r.message);
    const a = r.value;
    if (opts.json) io.out(`${JSON.stringify(a, null, 2)}\n`);
    else io.out(`${a.id} ${a.state} by ${a.decidedBy ?? '?'}: ${a.canonical}${a.taskId ? ` (task ${a.taskId})` : ''}\n`);
    return EXIT.OK;
  } finally {
    store.close();
  }
}

export async function listPending(io: CliIO, dir: string, opts: { json?: boolean }): Promise<number> {
  const store = await openDb(dir);
  try {
    const { listApprovals } = await import('../../mcp-server/core/approvals.js');
    const { renderTable, printLines } = await import('./output.js');
    const now = io.now();
    const rows = listApprovals(store.db, { state: 'pending' }).filter((a) => a.expiresMs > now);
    if (opts.json) {
      io.out(`${JSON.stringify(rows, null, 2)}\n`);
      return EXIT.OK;
    }
    if (rows.length === 0) {
      io.out('no pending approval requests\n');
      return EXIT.OK;
    }
    printLines(
      io,
      renderTable(rows, [
        { header: 'ID', get: (a) => a.id },
        { header: 'TASK', get: (a) => a.taskId ?? '-' },
        { header: 'AGENT', get: (a) => a.requestedBy ?? '-' },
        { header: 'EXPIRES IN', get: (a) => `${Math.max(0, Math.round((a.expiresMs - now) / 1000))}s` },
        { header: 'COMMAND', get: (a) => a.canonical },
      ]),
    );
    return EXIT.OK;
  } finally {
    store.close();
  }
}
