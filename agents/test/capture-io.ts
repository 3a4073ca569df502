// The CLI's I/O for in-process tests: stdout and stderr captured, env, cwd and clock given.
import type { CliIO } from '../cli/output.js';

export type CapturedIO = CliIO & { stdout: () => string; stderr: () => string };

export function captureIO(o: { env?: Record<string, string>; cwd: string; now?: () => number }): CapturedIO {
  let out = '';
  let err = '';
  return {
    out: (t) => void (out += typeof t === 'string' ? t : Buffer.from(t).toString('utf8')),
    err: (t) => void (err += t),
    env: o.env ?? {},
    cwd: o.cwd,
    now: o.now ?? Date.now,
    stdout: () => out,
    stderr: () => err,
  };
}
