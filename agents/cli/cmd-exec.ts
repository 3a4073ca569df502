// `opscrew exec 'LINE'`: run one vetted command as a person would, under the same policy and audit.
import type { Command } from 'commander';
import { workspaceDir, type CliContext } from './context.js';

export function registerExec(program: Command, ctx: CliContext): void {
  program
    .command('exec')
    .description('run one vetted command line through the policy and the audit log; prints its (scrubbed) output')
    .argument('<line>', "the command line, quoted as one argument: 'cat /srv/shop/.env.example'")
    .option('--agent <name>', 'run as this specialist (default: a person, whose scope is the whole config)')
    .option('--task <id>', 'record the call against this task (and use its approvals)')
    .option('--json', 'print JSON instead of the raw output')
    .addHelpText(
      'after',
      "\nExit code: the command's own when it ran; else 3 needs approval, 4 refused, 5 not a vetted call, 6 config invalid, 124 timed out.",
    )
    .action(async (line: string, opts: { agent?: string; task?: string; json?: boolean }, cmd: Command) => {
      const { execCommand } = await import('./gate-actions.js');
      ctx.exitCode = await execCommand(ctx.io, workspaceDir(ctx.io, cmd), line, opts);
    });
}
