// What every command needs: the I/O, the workspace directory, and a way to report an exit code.
// Commands throw CliError for expected failures; main maps it to the exit code.
import { isAbsolute, resolve } from 'node:path';
import type { Command } from 'commander';
import type { CliIO } from './output.js';
import { EXIT, type ExitCode } from './exit-codes.js';

export interface CliContext {
  io: CliIO;
  /** Set by an action; main returns it. */
  exitCode: number;
}

/** An expected failure: printed as `opscrew: message` on stderr, mapped to `code`. */
export class CliError extends Error {
  readonly exitCode: ExitCode;
  constructor(exitCode: ExitCode, message: string) {
    super(message);
    this.name = 'CliError';
    this.exitCode = exitCode;
  }
}

export interface GlobalOptions {
  workspace?: string;
  json?: boolean;
}

export function globals(cmd: Command): GlobalOptions {
  return cmd.optsWithGlobals<GlobalOptions>();
}

/** `--workspace DIR`, else `OPSCREW_WORKSPACE`, else the current directory; always absolute. */
export function workspaceDir(io: CliIO, cmd: Command, explicit?: string): string {
  return workspaceDirFrom(io, explicit ?? globals(cmd).workspace);
}

/** The same rule from an already-read `--workspace` value (the `opscrew mcp` fast path has no commander). */
export function workspaceDirFrom(io: CliIO, given: string | undefined): string {
  const raw = given ?? nonEmpty(io.env.OPSCREW_WORKSPACE) ?? io.cwd;
  return isAbsolute(raw) ? resolve(raw) : resolve(io.cwd, raw);
}

function nonEmpty(s: string | undefined): string | undefined {
  return s !== undefined && s.trim() !== '' ? s : undefined;
}

/** Maps an error code from mcp-server/core (OpsError.code / Fail.code) to an exit code. */
export function exitForCode(code: string): ExitCode {
  if (/^(config|workspace)/.test(code)) return EXIT.CONFIG;
  return EXIT.FAILED;
}
