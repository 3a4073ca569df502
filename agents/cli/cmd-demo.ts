// `opscrew demo`: the main job end to end with nothing but Node and no API key. Builds a
// throwaway workspace from the project's examples/demo/, starts a local demo app on 127.0.0.1,
// runs the crew once with the runbook brain and checks that the example tasks ended as their
// Context says (completed with evidence, refused by policy, rolled back and blocked, run after
// a dependency). Exits 1 when any of them did not: it doubles as a smoke test of the product.
import type { Command } from 'commander';
import type { CliContext } from './context.js';

export function registerDemo(program: Command, ctx: CliContext): void {
  program
    .command('demo')
    .description(
      'run the crew on example tasks against a local demo app: one completes with evidence, one is refused by policy, ' +
        'one fails verification and is rolled back, one waits for a dependency',
    )
    .option('--dir <dir>', 'build the workspace here instead of a new temp folder (must not exist yet); it is kept afterwards')
    .option('--json', 'print the outcome as JSON on stdout (progress stays on stderr)')
    .addHelpText('after', '\nExit 0 when every example task ended as expected, 1 (with the checks that failed) otherwise.')
    .action(async (opts: { dir?: string; json?: boolean }) => {
      const { runDemo } = await import('./demo-actions.js');
      ctx.exitCode = await runDemo(ctx.io, opts);
    });
}
