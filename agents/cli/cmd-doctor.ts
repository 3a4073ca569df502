// `opscrew doctor`: the pre-flight. Binaries and versions the configured tools need, config and
// profiles valid, the store opens, kube contexts/ssh hosts/Vault reachable, compose files exist.
import type { Command } from 'commander';
import { workspaceDir, type CliContext } from './context.js';

export interface DoctorOptions {
  json?: boolean;
  /** Per network probe and per version command, in ms (string from the command line). */
  timeout?: string;
}

export function registerDoctor(program: Command, ctx: CliContext): void {
  program
    .command('doctor')
    .description('pre-flight: binaries and versions, config and specialist profiles, the store, kube contexts, ssh hosts, Vault, compose files')
    .option('--timeout <ms>', 'time limit of each probe (TCP connect, HTTP, version command)', '3000')
    .option('--json', 'print JSON: {ok, checks: [{name, status, message, fix?}]}')
    .addHelpText('after', '\nEach check is ok, warn or fail with a one-line fix. Exit code: 0 when nothing fails, 1 otherwise.')
    .action(async (opts: DoctorOptions, cmd: Command) => {
      const { runDoctor } = await import('./doctor-actions.js');
      ctx.exitCode = await runDoctor(ctx.io, workspaceDir(ctx.io, cmd), opts);
    });
}
