// `opscrew audit`: the append-only record of every tool call, allowed or denied.
import type { Command } from 'commander';
import { workspaceDir, type CliContext } from './context.js';

export function registerAudit(program: Command, ctx: CliContext): void {
  program
    .command('audit')
    .description('list audit rows: every tool call, allowed or denied, oldest first')
    .option('--task <id>', 'only calls made for this task')
    .option('--agent <name>', 'only calls made by this agent (a person is "person")')
    .option('--since <when>', 'only calls since WHEN: an ISO date/time, or a duration back from now (30m, 2h, 7d)')
    .option('--limit <n>', 'at most the N most recent rows', '100')
    .option('--json', 'print JSON')
    .action(async (opts: AuditOptions, cmd: Command) => {
      const { runAudit } = await import('./audit-actions.js');
      ctx.exitCode = await runAudit(ctx.io, workspaceDir(ctx.io, cmd), opts);
    });
}

export interface AuditOptions {
  task?: string;
  agent?: string;
  since?: string;
  limit: string;
  json?: boolean;
}

