// `opscrew check-command 'LINE'`: how a line parses and what the policy decides; runs nothing.
import type { Command } from 'commander';
import { workspaceDir, type CliContext } from './context.js';

export function registerCheck(program: Command, ctx: CliContext): void {
  program
    .command('check-command')
    .description('show how one command line parses (tool, verb, class, scope, canonical form) and what the policy decides, without running it')
    .argument('<line>', "the command line, quoted as one argument: 'kubectl --context staging -n orders get pods'")
    .option('--agent <name>', 'decide as this specialist (default: a person, whose scope is the whole config)')
    .option('--task <id>', "count this task's recorded approvals")
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExit codes: 0 allowed, 3 needs approval, 4 refused by policy, 5 not a vetted call (unparseable), 6 config invalid.')
    .action(async (line: string, opts: { agent?: string; task?: string; json?: boolean }, cmd: Command) => {
      const { checkCommand } = await import('./gate-actions.js');
      ctx.exitCode = await checkCommand(ctx.io, workspaceDir(ctx.io, cmd), line, opts);
    });
}
