// The crew on more than one core: one JavaScript thread runs a crew's bookkeeping (parsing,
// rendering, SQLite, policy) for every task, so `threads` crews share the workspace instead, each
// its own event loop, store connection and queue holder, exactly like daemons started side by
// side. The queue's write lock, leases and fencing keep them from ever running one task twice;
// the concurrency and every specialist's cap are split between them so the totals stay as set.
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { loadConfig, type Config } from '../../mcp-server/core/config.js';
import { OpsError } from '../../mcp-server/core/errors.js';
import { loadSpecialists, type Specialist } from '../../mcp-server/core/specialists.js';
import { resolveWorkspace } from '../../mcp-server/core/workspace.js';
import { defaultHolder } from '../../mcp-server/core/queue.js';
import { runCrew, type CrewOptions, type CrewSummary } from './crew.js';
import type { CrewEvent } from './progress.js';

export interface ThreadedCrewOptions extends CrewOptions {
  /** Crews on their own threads (default 1: this thread only); capped by the concurrency. */
  threads?: number;
}

/** What a crew thread gets: plain data only (structured clone). */
export interface CrewThreadData {
  options: Omit<CrewOptions, 'signal' | 'onProgress' | 'store' | 'brainImpl' | 'broker' | 'spawn' | 'now' | 'workspace'> & { workspace: string };
  /** Forward every event to the parent (it has a progress callback). */
  forwardEvents: boolean;
}

export type CrewThreadMessage =
  | { type: 'event'; event: CrewEvent }
  | { type: 'done'; summary: CrewSummary }
  | { type: 'error'; code: string; message: string };

/**
 * A sensible default for `threads`: one per core but one, at most one per two workers. The core
 * left over serves the file system's syncs, the thread pool and the processes the tasks run; on
 * two cores a second crew thread measured 30–45% more CPU per task for no more tasks/s (each
 * thread's SQLite connection re-reads what the other one wrote).
 */
export function defaultCrewThreads(concurrency: number, cores: number = availableParallelism()): number {
  return Math.max(1, Math.min(cores - 1, Math.floor(concurrency / 2)));
}

/** `total` split into `n` shares that differ by at most one, larger shares first. */
export function splitShares(total: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => Math.floor(total / n) + (i < total % n ? 1 : 0));
}

/** The compiled thread entry (tests run the TypeScript sources; the entry always runs from dist/). */
export function crewThreadEntry(): string {
  const here = fileURLToPath(import.meta.url);
  const sibling = join(dirname(here), 'crew-thread-entry.js');
  if (here.endsWith('.js') && existsSync(sibling)) return sibling;
  // agents/runtime/crew-threads.ts → <root>/dist/agents/runtime/crew-thread-entry.js
  return join(dirname(here), '..', '..', 'dist', 'agents', 'runtime', 'crew-thread-entry.js');
}

/** Union of the crews' summaries: a task one crew failed and another finished counts as finished. */
export function mergeSummaries(parts: readonly CrewSummary[]): CrewSummary {
  const completed = parts.flatMap((p) => p.completed);
  const blocked = parts.flatMap((p) => p.blocked);
  const settled = new Set([...completed, ...blocked.map((b) => b.id)]);
  const failed = new Map<string, { id: string; reason: string }>();
  for (const p of parts) for (const f of p.failed) if (!settled.has(f.id)) failed.set(f.id, f);
  const runs = parts.flatMap((p) => p.runs).sort((a, b) => a.startedMs - b.startedMs);
  return { completed, blocked, failed: [...failed.values()], runs };
}

/**
 * runCrew over `threads` crews. Falls back to one crew when the options carry things that cannot
 * cross a thread (an injected brain, spawner, broker, store or clock) or there is one worker.
 */
export async function runCrewThreads(opts: ThreadedCrewOptions): Promise<CrewSummary> {
  const { threads: wanted, ...crewOpts } = opts;
  const injected = opts.brainImpl || opts.spawn || opts.broker || opts.store || (opts.now && opts.now !== Date.now);
  const ws = typeof opts.workspace === 'string' ? resolveWorkspace(opts.workspace) : opts.workspace;
  const env = opts.env ?? process.env;
  let config: Config | undefined = opts.config;
  if (!config) {
    const c = loadConfig({ workspaceDir: ws.root, env });
    if (!c.ok) throw new OpsError('config-invalid', c.message, { cause: c.cause });
    config = c.value;
  }
  const concurrency = Math.max(1, opts.concurrency ?? config.concurrency);
  const n = Math.max(1, Math.min(wanted ?? 1, concurrency));
  if (n === 1 || injected) return runCrew({ ...crewOpts, config });
  let specialists: Specialist[] | undefined = opts.specialists;
  if (!specialists) {
    if (!opts.specialistsDir) throw new OpsError('specialists-missing', 'runCrew needs specialists or specialistsDir');
    const s = loadSpecialists(opts.specialistsDir);
    if (!s.ok) throw new OpsError('specialist-invalid', s.message, { cause: s.cause });
    specialists = s.value;
  }
  const shares = splitShares(concurrency, n);
  const caps = specialists.map((s) => splitShares(s.maxConcurrency, n));
  // A specialist capped at 1 runs in the first crew only; the last crews get what is left over.
  const profilesFor = (i: number): Specialist[] => specialists.map((s, k) => ({ ...s, maxConcurrency: caps[k]?.[i] ?? 0 }));
  const holder = opts.holder ?? defaultHolder();
  const { signal, onProgress } = opts;

  const threadOpts = (i: number): CrewThreadData['options'] => {
    const o: CrewThreadData['options'] = {
      workspace: ws.root,
      config,
      specialists: profilesFor(i),
      concurrency: shares[i] ?? 1,
      holder: `${holder}#${i}`,
      env: { ...env },
    };
    if (opts.once !== undefined) o.once = opts.once;
    if (opts.brain !== undefined) o.brain = opts.brain;
    if (opts.retrospectives !== undefined) o.retrospectives = opts.retrospectives;
    if (i > 0) o.recoverRetrospectives = false; // the first crew recovers missed retrospectives
    if (opts.backoff !== undefined) o.backoff = opts.backoff;
    if (opts.heartbeatMs !== undefined) o.heartbeatMs = opts.heartbeatMs;
    if (opts.leaseMs !== undefined) o.leaseMs = opts.leaseMs;
    if (opts.pollMs !== undefined) o.pollMs = opts.pollMs;
    if (opts.reconcileMs !== undefined) o.reconcileMs = opts.reconcileMs;
    if (opts.approvalPollMs !== undefined) o.approvalPollMs = opts.approvalPollMs;
    if (opts.graceMs !== undefined) o.graceMs = opts.graceMs;
    if (opts.jsonLog !== undefined) o.jsonLog = opts.jsonLog;
    return o;
  };

  const entry = crewThreadEntry();
  const workers: Worker[] = [];
  const results: Array<Promise<CrewSummary>> = [];
  let startedThreads = false;
  const startThreads = (): void => {
    if (startedThreads || signal?.aborted) return;
    startedThreads = true;
    for (let i = 1; i < n; i++) results.push(startThread(i));
  };
  const startThread = (i: number): Promise<CrewSummary> => {
    const data: CrewThreadData = { options: threadOpts(i), forwardEvents: onProgress !== undefined };
    const w = new Worker(entry, { workerData: data });
    workers.push(w);
    return new Promise<CrewSummary>((resolve, reject) => {
      let settled = false;
      w.on('message', (m: CrewThreadMessage) => {
        if (m.type === 'event') {
          try {
            onProgress?.(m.event);
          } catch {
            // a broken progress callback must not stop the crew
          }
        } else if (m.type === 'done') {
          settled = true;
          resolve(m.summary);
        } else {
          settled = true;
          reject(new OpsError(m.code, `crew thread ${i}: ${m.message}`));
        }
      });
      w.on('error', (e) => {
        settled = true;
        reject(new OpsError('crew-thread-failed', `crew thread ${i} failed: ${e.message}`, { cause: e }));
      });
      w.on('exit', (code) => {
        if (!settled) reject(new OpsError('crew-thread-failed', `crew thread ${i} exited (${code}) without a summary`));
      });
    });
  };
  // `--once` has its backlog now: every crew starts at once. A daemon starts the others only when
  // its first crew has ready work it cannot take (each crew thread costs ~40 MiB while idle).
  if (opts.once) startThreads();
  const stopAll = (): void => {
    for (const w of workers) w.postMessage({ type: 'stop' });
  };
  signal?.addEventListener('abort', stopAll, { once: true });
  try {
    const first = runCrew({
      ...crewOpts,
      workspace: ws,
      config,
      specialists: profilesFor(0),
      concurrency: shares[0] ?? 1,
      holder: `${holder}#0`,
      onSaturated: startThreads,
    });
    first.catch(stopAll); // this thread's crew failed: the others stop claiming and finish what they run
    const firstDone = await Promise.allSettled([first]);
    // The first crew has returned, so no more threads start; wait for the ones that did.
    const all = [...firstDone, ...(await Promise.allSettled(results))];
    const failure = all.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failure) throw failure.reason;
    return mergeSummaries(all.map((r) => (r as PromiseFulfilledResult<CrewSummary>).value));
  } finally {
    signal?.removeEventListener('abort', stopAll);
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
