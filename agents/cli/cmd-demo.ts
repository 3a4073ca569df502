// `opscrew demo`: the main job on embedded defaults, until the crew exists. Builds a throwaway
// workspace from the project's examples/, then runs the same code as `tasks lint`,
// `tasks list` and `check-command` over it. Nothing outside the temp workspace is touched.
import type { Command } from 'commander';
import type { CliContext } from './context.js';

export function registerDemo(program: Command, ctx: CliContext): void {
  program
    .command('demo')
    .description("build a throwaway workspace from the project's examples/ and lint, list and policy-check every task in it")
    .option('--dir <dir>', 'build the workspace here instead of a new temp folder (must not exist yet)')
    .option('--json', 'print JSON')
    .action(async (opts: { dir?: string; json?: boolean }) => {
      const { runDemo } = await import('./demo-actions.js');
      ctx.exitCode = await runDemo(ctx.io, opts);
    });
}
