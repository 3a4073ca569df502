// The one place that starts processes (and the only importer of execa). No shell, argv
// arrays, the env exactly as given, a timeout that kills the whole process group, bounded
// output, and failures returned as data.
import { homedir } from 'node:os';
import type { Readable } from 'node:stream';
import { execa } from 'execa';
import type { SpawnRequest, SpawnResult, Spawner } from './types.js';

/** Time between SIGTERM and SIGKILL to the process group. */
export const KILL_GRACE_MS = 1_500;
/** After the leader is gone, how long we wait for pipes held by escaped descendants. */
const DRAIN_GRACE_MS = 500;
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** PATH, HOME and LANG (from `source`, with sane defaults) plus exactly `extra`. */
export function baseEnv(
  extra: Record<string, string> = {},
  source: Record<string, string | undefined> = process.env,
): Record<string, string> {
  return {
    PATH: source.PATH || DEFAULT_PATH,
    HOME: source.HOME || homedir(),
    LANG: source.LANG || 'C.UTF-8',
    ...extra,
  };
}

/** Keeps the first `cap` bytes of a stream and drops (but keeps draining) the rest. */
class CappedSink {
  private chunks: Buffer[] = [];
  private size = 0;
  truncated = false;
  constructor(private readonly cap: number) {}
  push(chunk: Buffer | string): void {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    const room = this.cap - this.size;
    if (room <= 0) {
      if (buf.length > 0) this.truncated = true;
      return;
    }
    if (buf.length > room) {
      this.chunks.push(buf.subarray(0, room));
      this.size += room;
      this.truncated = true;
    } else {
      this.chunks.push(buf);
      this.size += buf.length;
    }
  }
  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    // Negative pid: the whole process group (the child was started detached = its own group).
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the group is already gone.
  }
}

// Detached groups do not get the terminal's SIGINT and execa's cleanup skips detached
// children, so the groups still running when this process exits are ended here. The one
// piece of module state: a registry of live groups, hooked on first use, never at import.
const liveGroups = new Set<number>();
let exitHooked = false;
function track(pid: number): void {
  liveGroups.add(pid);
  if (!exitHooked) {
    exitHooked = true;
    process.once('exit', () => {
      for (const g of liveGroups) killGroup(g, 'SIGKILL');
    });
  }
}

function errnoCode(e: unknown): string | undefined {
  if (e && typeof e === 'object' && 'code' in e && typeof (e as { code: unknown }).code === 'string') {
    return (e as { code: string }).code;
  }
  return undefined;
}

function start(req: SpawnRequest) {
  return execa(req.file, req.args, {
    env: req.env,
    extendEnv: false,
    ...(req.cwd !== undefined ? { cwd: req.cwd } : {}),
    ...(req.input !== undefined ? { input: req.input } : { stdin: 'ignore' as const }),
    // Its own process group, so a timeout or abort can end every descendant at once.
    detached: true,
    reject: false,
    buffer: false,
    stripFinalNewline: false,
    windowsHide: true,
  });
}

/** Runs one program. Never throws for a failing or missing program. */
export const runProcess: Spawner = async (req: SpawnRequest): Promise<SpawnResult> => {
  const started = performance.now();
  const elapsed = (): number => Math.round((performance.now() - started) * 10) / 10;
  const out = new CappedSink(req.outputCap);
  const err = new CappedSink(req.outputCap);

  // The program never started: the reason is data, like any other outcome.
  const notStarted = (spawnError: string, aborted = false): SpawnResult => ({
    exitCode: null,
    signal: null,
    stdout: '',
    stderr: '',
    durationMs: elapsed(),
    timedOut: false,
    truncated: false,
    ...(aborted ? { aborted: true } : {}),
    spawnError,
  });

  if (req.signal?.aborted) return notStarted('aborted before start', true);

  let sub: ReturnType<typeof start>;
  try {
    sub = start(req);
  } catch (e) {
    // Invalid arguments (an empty program name...) are refused by execa synchronously.
    return notStarted(e instanceof Error ? (e.message.split('\n')[0] ?? e.message) : String(e));
  }

  if (sub.pid !== undefined) track(sub.pid);
  const stdout = sub.stdout as Readable | null;
  const stderr = sub.stderr as Readable | null;
  stdout?.on('data', (c: Buffer | string) => out.push(c));
  stderr?.on('data', (c: Buffer | string) => err.push(c));

  let timedOut = false;
  let aborted = false;
  let forceTimer: NodeJS.Timeout | undefined;
  const terminate = (): void => {
    const pid = sub.pid;
    if (pid === undefined) return;
    killGroup(pid, 'SIGTERM');
    forceTimer ??= setTimeout(() => killGroup(pid, 'SIGKILL'), KILL_GRACE_MS);
  };
  const timer = setTimeout(() => {
    timedOut = true;
    terminate();
  }, req.timeoutMs);
  const onAbort = (): void => {
    aborted = true;
    terminate();
  };
  req.signal?.addEventListener('abort', onAbort, { once: true });

  // The leader's exit; descendants that escaped the group could keep pipes open forever,
  // so the streams get a short, bounded drain after it.
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    sub.once('exit', (code, signal) => {
      // Anything still in the group now is a straggler holding our pipes: end it.
      if (sub.pid !== undefined) killGroup(sub.pid, 'SIGKILL');
      resolve({ code, signal });
    });
    sub.once('error', () => resolve({ code: null, signal: null }));
  });

  let spawnError: string | undefined;
  let exitCode: number | null = null;
  let signal: string | null = null;
  try {
    const result = await Promise.race([
      sub,
      exited.then(
        () =>
          new Promise<'drain-timeout'>((resolve) => {
            const t = setTimeout(() => resolve('drain-timeout'), DRAIN_GRACE_MS + KILL_GRACE_MS);
            const clear = (): void => clearTimeout(t);
            Promise.resolve(sub).then(clear, clear);
          }),
      ),
    ]);
    if (result === 'drain-timeout') {
      stdout?.destroy();
      stderr?.destroy();
      const ex = await exited;
      exitCode = ex.code;
      signal = ex.signal;
    } else {
      const code = errnoCode(result.cause) ?? (result as { code?: string }).code;
      if (result.failed && result.exitCode === undefined && result.signal === undefined && !timedOut && !aborted) {
        spawnError = code ? `${code}: ${req.file}` : (result.shortMessage ?? `cannot start ${req.file}`);
      }
      exitCode = result.exitCode ?? null;
      signal = result.signal ?? null;
    }
  } catch (e) {
    // execa with reject:false should not throw; if it does, it is still data to the caller.
    spawnError = e instanceof Error ? e.message : String(e);
  } finally {
    clearTimeout(timer);
    req.signal?.removeEventListener('abort', onAbort);
    // Nothing started by this call outlives it: reap stragglers left in the group.
    if (sub.pid !== undefined) {
      killGroup(sub.pid, 'SIGKILL');
      liveGroups.delete(sub.pid);
    }
    if (forceTimer) clearTimeout(forceTimer);
  }

  return {
    exitCode,
    signal,
    stdout: out.text(),
    stderr: err.text(),
    durationMs: elapsed(),
    timedOut,
    truncated: out.truncated || err.truncated,
    ...(aborted ? { aborted: true } : {}),
    ...(spawnError !== undefined ? { spawnError } : {}),
  };
};
