// `opscrew run [--once]`: the crew. Claims ready tasks, routes them to specialists, runs them with
// the runbook brain through the policy gate, and completes, retries or blocks them. Without
// --once it is a daemon that watches the backlog until SIGTERM/SIGINT (graceful stop).
import { join } from 'node:path';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { CliError, workspaceDir, type CliContext } from './context.js';
import { EXIT } from './exit-codes.js';
import type { CliIO } from './output.js';

export interface RunOptions {
  once?: boolean;
  concurrency?: number;
  brain?: 'runbook' | 'claude';
  json?: boolean;
  threads?: number;
}


function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new InvalidArgumentError('a whole number of workers from 1 to 64');
  return n;
}

export function registerRun(program: Command, ctx: CliContext): void {
  program
    .command('run')
    .description('run the crew: claim ready tasks, run them as their specialist through the policy, complete, retry or block them')
    .option('--once', 'process until nothing is ready and no worker runs, then exit 0 (default: keep watching the backlog)')
    .option('--concurrency <n>', 'workers (default: concurrency in opscrew.config.yaml)', positiveInt)
    .option('--threads <n>', 'crews on their own threads sharing the workers and specialist caps (default: one per core, at most one per two workers)', positiveInt)
    .addOption(new Option('--brain <brain>', 'runbook (deterministic, no API key) or claude').choices(['runbook', 'claude']))
    .option('--json', 'print the summary as JSON on stdout (progress stays on stderr)')
    .addHelpText('after', '\nStop a running crew with Ctrl-C or SIGTERM: it stops claiming, lets running tasks finish, releases the rest.')
    .action(async (opts: RunOptions, cmd: Command) => {
      ctx.exitCode = await runCommand(ctx.io, workspaceDir(ctx.io, cmd), opts);
    });
}

export async function runCommand(io: CliIO, dir: string, opts: RunOptions): Promise<number> {
  const { requireWorkspace } = await import('./tasks-actions.js');
  const { requireConfig } = await import('./lint-context.js');
  const ws = requireWorkspace(dir);
  const config = await requireConfig(ws, io);
  const brain = opts.brain ?? config.brain;
  if (brain === 'claude') {
    // Fail at start with a clear message; the default runbook brain never needs a key.
    const { checkClaudeBrainAvailable } = await import('../runtime/claude-brain.js');
    const available = checkClaudeBrainAvailable(io.env);
    if (!available.ok) throw new CliError(EXIT.USAGE, available.message);
  }

  const [{ runCrewThreads, defaultCrewThreads }, { createProgressPrinter }, { packageRoot }, { renderTable, printJson, printLines }] = await Promise.all([
    import('../runtime/crew-threads.js'),
    import('../runtime/progress.js'),
    import('./paths.js'),
    import('./output.js'),
  ]);
  const controller = new AbortController();
  const stop = (sig: NodeJS.Signals): void => {
    if (controller.signal.aborted) return;
    io.err(`opscrew: ${sig}: stopping — no new claims; running tasks finish or are released\n`);
    controller.abort(new Error(sig));
  };
  const onTerm = (): void => stop('SIGTERM');
  const onInt = (): void => stop('SIGINT');
  process.on('SIGTERM', onTerm);
  process.on('SIGINT', onInt);
  let summary;
  try {
    summary = await runCrewThreads({
      threads: opts.threads ?? defaultCrewThreads(opts.concurrency ?? config.concurrency),
      workspace: ws,
      config,
      specialistsDir: join(packageRoot(), 'agents', 'specialists'),
      once: opts.once === true,
      ...(opts.concurrency !== undefined ? { concurrency: opts.concurrency } : {}),
      brain,
      ...(config.timeouts.lease !== undefined ? { leaseMs: config.timeouts.lease } : {}),
      ...(config.timeouts.grace !== undefined ? { graceMs: config.timeouts.grace } : {}),
      now: io.now,
      env: { ...io.env },
      signal: controller.signal,
      onProgress: createProgressPrinter({ write: (t) => io.err(t), isTTY: process.stderr.isTTY === true }),
    });
  } finally {
    process.off('SIGTERM', onTerm);
    process.off('SIGINT', onInt);
  }
  if (opts.json) {
    printJson(io, summary);
    return EXIT.OK;
  }
  const rows = [
    ...summary.completed.map((id) => ({ id, outcome: 'completed', reason: '' })),
    ...summary.blocked.map((b) => ({ id: b.id, outcome: 'blocked', reason: b.reason })),
    ...summary.failed.map((f) => ({ id: f.id, outcome: 'failed (will retry)', reason: f.reason })),
  ];
  if (rows.length === 0) {
    io.out('nothing was ready to run\n');
    return EXIT.OK;
  }
  printLines(
    io,
    renderTable(rows, [
      { header: 'TASK', get: (r) => r.id },
      { header: 'OUTCOME', get: (r) => r.outcome },
      { header: 'REASON', get: (r) => r.reason, max: 160 },
    ]),
  );
  io.out(`${summary.completed.length} completed, ${summary.blocked.length} blocked, ${summary.failed.length} failed; logs in ${ws.logsDir}\n`);
  return EXIT.OK;
}
