// The CLI entry: wires the command groups onto one commander program and maps every outcome
// to a documented exit code. Heavy modules are imported lazily inside each action so that
// `opscrew --help` and `tasks list` stay fast.
import { Command, CommanderError } from 'commander';
import type { CliContext } from './context.js';
import { EXIT, EXIT_CODES_HELP } from './exit-codes.js';
import { processIO, type CliIO } from './output.js';
import { registerInit } from './cmd-init.js';
import { registerTasks } from './cmd-tasks.js';
import { registerCheck } from './cmd-check.js';
import { registerExec } from './cmd-exec.js';
import { registerAudit } from './cmd-audit.js';
import { registerDemo } from './cmd-demo.js';
import { mcpErrorExit, registerMcp } from './cmd-mcp.js';
import { registerTokens } from './cmd-tokens.js';
import { registerKnowledge } from './cmd-knowledge.js';
import { registerImport } from './cmd-import.js';
import { registerRun } from './cmd-run.js';
import { registerApprove } from './cmd-approve.js';
import { registerDoctor } from './cmd-doctor.js';

import { VERSION } from './version.js';

export { VERSION };

export function buildProgram(ctx: CliContext): Command {
  const program = new Command('opscrew');
  program
    .description('Agent-driven task runner for infrastructure work: vetted tools, policy, proof, memory.')
    .version(VERSION, '-V, --version')
    .option('-w, --workspace <dir>', 'workspace folder (default: $OPSCREW_WORKSPACE, else the current directory)')
    .exitOverride()
    .configureOutput({ writeOut: (s) => ctx.io.out(s), writeErr: (s) => ctx.io.err(s) })
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText('after', `\n${EXIT_CODES_HELP}\n\nEnvironment:\n  OPSCREW_WORKSPACE  workspace folder when --workspace is not given\n`);
  registerInit(program, ctx);
  registerTasks(program, ctx);
  registerCheck(program, ctx);
  registerExec(program, ctx);
  registerAudit(program, ctx);
  registerDemo(program, ctx);
  registerMcp(program, ctx);
  registerTokens(program, ctx);
  registerKnowledge(program, ctx);
  registerImport(program, ctx);
  registerRun(program, ctx);
  registerApprove(program, ctx);
  registerDoctor(program, ctx);
  return program;
}

/** Runs the CLI on `argv` (without node and script) and returns the exit code; never exits the process. */
export async function main(argv: string[], io: CliIO = processIO()): Promise<number> {
  const ctx: CliContext = { io, exitCode: EXIT.OK };
  const program = buildProgram(ctx);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return ctx.exitCode;
  } catch (e) {
    return handleError(e, io);
  }
}

/** Maps an error thrown by a command to its exit code, printing it (the mcp fast path uses it too). */
export function handleError(e: unknown, io: CliIO): number {
  if (e instanceof CommanderError) {
    // commander already printed its message (or the help) through configureOutput.
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.exitCode === 0) return EXIT.OK;
    return EXIT.USAGE;
  }
  // Everything else maps as on `opscrew mcp`'s fast path (which never loads commander).
  return mcpErrorExit(e, io);
}
