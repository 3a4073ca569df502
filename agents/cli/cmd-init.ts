// `opscrew init [DIR]`: lay out a workspace. Idempotent; never overwrites an existing file.
import { copyFileSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { Command } from 'commander';
import { resolveWorkspace, type Workspace } from '../../mcp-server/core/workspace.js';
import { workspaceDir, type CliContext } from './context.js';
import { printJson, printLines } from './output.js';
import { packageRoot } from './paths.js';

export const MINIMAL_CONFIG = `# opscrew workspace config — see the README section "Config" for every key.
# Scopes are empty: add kube contexts, compose projects, ssh hosts, Vault paths, file roots
# and HTTP hosts before agents may touch them.
mode: standard          # read-only | standard | full
brain: runbook          # runbook | claude
concurrency: 2
timeouts: { command: 2m, task: 30m, approval: 15m }
`;

export interface InitResult {
  workspace: string;
  /** Workspace-relative paths this run created. */
  created: string[];
  /** Workspace-relative paths that were already there (left untouched). */
  existing: string[];
  config: 'created-from-example' | 'created-minimal' | 'kept';
}

/** Creates what is missing; touches nothing that exists. The database is created by the caller. */
export function initWorkspace(ws: Workspace, exampleConfig: string | undefined): InitResult {
  const created: string[] = [];
  const existing: string[] = [];
  const rel = (abs: string): string => relative(ws.root, abs);
  const ensureDir = (abs: string, keep: boolean): void => {
    if (existsSync(abs)) {
      existing.push(`${rel(abs)}/`);
      return;
    }
    mkdirSync(abs, { recursive: true });
    created.push(`${rel(abs)}/`);
    // .gitkeep so an empty queue folder survives a git checkout.
    if (keep && readdirSync(abs).length === 0) writeFileSync(join(abs, '.gitkeep'), '');
  };
  mkdirSync(ws.root, { recursive: true });
  for (const d of [ws.backlog, ws.active, ws.completed, ws.retrospectives]) ensureDir(d, true);
  ensureDir(ws.stateDir, false);

  const ignore = join(ws.stateDir, '.gitignore');
  if (!existsSync(ignore)) {
    writeFileSync(ignore, '# opscrew state (database, logs): never commit\n*\n', { flag: 'wx' });
    created.push(rel(ignore));
  }

  let config: InitResult['config'] = 'kept';
  if (existsSync(ws.configPath)) existing.push(rel(ws.configPath));
  else {
    if (exampleConfig !== undefined && existsSync(exampleConfig)) {
      copyFileSync(exampleConfig, ws.configPath, 1 /* COPYFILE_EXCL: never overwrite */);
      config = 'created-from-example';
    } else {
      writeFileSync(ws.configPath, MINIMAL_CONFIG, { flag: 'wx' });
      config = 'created-minimal';
    }
    created.push(rel(ws.configPath));
  }
  return { workspace: ws.root, created, existing, config };
}

/** The project's example config, if this installation ships one. */
export function exampleConfigPath(): string | undefined {
  try {
    return join(packageRoot(), 'examples', 'opscrew.config.yaml');
  } catch {
    return undefined;
  }
}

export function registerInit(program: Command, ctx: CliContext): void {
  program
    .command('init')
    .description('create a workspace: tasks/{backlog,active,completed}/, retrospectives/, opscrew.config.yaml, .opscrew/ (idempotent, never overwrites)')
    .argument('[dir]', 'workspace folder (default: --workspace, $OPSCREW_WORKSPACE, else the current directory)')
    .option('--json', 'print the result as JSON')
    .action(async (dirArg: string | undefined, opts: { json?: boolean }, cmd: Command) => {
      const ws = resolveWorkspace(workspaceDir(ctx.io, cmd, dirArg));
      const result = initWorkspace(ws, exampleConfigPath());
      // The database comes last, so a broken SQLite still leaves the folders in place.
      const hadDb = existsSync(ws.dbPath);
      const { openStore } = await import('../../mcp-server/core/store.js');
      openStore(ws.dbPath).close();
      (hadDb ? result.existing : result.created).push(relative(ws.root, ws.dbPath));
      if (opts.json) {
        printJson(ctx.io, result);
        return;
      }
      const lines = [`workspace: ${ws.root}`];
      for (const c of result.created) lines.push(`  created  ${c}`);
      for (const c of result.existing) lines.push(`  exists   ${c}`);
      if (result.config === 'created-from-example') {
        lines.push(`opscrew.config.yaml is a copy of the example config: edit its scopes to match your systems`);
      }
      lines.push('next: drop a task into tasks/backlog/ or run `opscrew tasks new --title "..."`');
      printLines(ctx.io, lines);
    });
}
