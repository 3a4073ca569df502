// The crew: claims ready tasks from the queue, routes each to a specialist, runs it with a brain
// under a per-task timeout with lease heartbeats, then completes, retries (release + backoff) or
// blocks it. `once` processes until nothing is ready and no worker runs; the daemon mode keeps
// watching the backlog until its signal aborts. Every state change goes through the queue and
// presents the claim's fencing token.
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { basename, join } from 'node:path';
import { loadConfig, type Config } from '../../mcp-server/core/config.js';
import { writeFileDurable } from '../../mcp-server/core/durable-fs.js';
import { OpsError } from '../../mcp-server/core/errors.js';
import { createFolderQueue, type Claim, type TaskQueue, type TaskRecord } from '../../mcp-server/core/queue.js';
import { loadSpecialists, type Specialist } from '../../mcp-server/core/specialists.js';
import { openStore, type Store } from '../../mcp-server/core/store.js';
import { parseTask } from '../../mcp-server/core/task-parse.js';
import { updateTaskText, type TaskUpdate } from '../../mcp-server/core/task-render.js';
import type { CriterionEvidence, Task } from '../../mcp-server/core/task-types.js';
import { ensureWorkspace, resolveWorkspace, type Workspace } from '../../mcp-server/core/workspace.js';
import { createSecretBroker } from '../../tools/secret-broker.js';
import type { SecretBroker, Spawner } from '../../tools/types.js';
import { createJsonLog, type CrewEvent, type JsonLog } from './progress.js';
import { routeTask, type RouteResult } from './router.js';
import { createRunbookBrain, sleep, type Brain, type BrainEvent, type RunOutcome } from './runbook-brain.js';
import { checkClaudeBrainAvailable } from './claude-brain.js';
import { recordRunKnowledgeAsync, recordRunsKnowledgeAsync, runsWithoutRetro, type RecordInput, type RecordOutput, type RecordResult } from '../../mcp-server/core/retro.js';
import { createClaudeCrewBrain } from './claude-crew-brain.js';

export interface BackoffOptions {
  /** First retry delay; doubles per attempt. Default 1000 ms. */
  baseMs: number;
  /** Cap on the delay. Default 60 s. */
  maxMs: number;
}

export interface CrewOptions {
  /** Workspace folder or a resolved Workspace. */
  workspace: string | Workspace;
  /** Default: loadConfig from the workspace (a wrong config throws OpsError `config-invalid`). */
  config?: Config;
  /** Default: openStore(workspace.dbPath), closed when the crew returns. */
  store?: Store;
  /** The profiles, or the folder to load them from (one of the two is required). */
  specialists?: Specialist[];
  specialistsDir?: string;
  once?: boolean;
  /** Workers; default config.concurrency. */
  concurrency?: number;
  brain?: 'runbook' | 'claude';
  /** Write a retrospective per run (default true). */
  retrospectives?: boolean;
  /**
   * At start and at each reconcile, write the retrospectives of runs that ended without one (a
   * crew stopped between recording a run and writing its retrospective). Default true; the extra
   * threads of runCrewThreads leave it to the first.
   */
  recoverRetrospectives?: boolean;
  /** A brain to use instead of the built-in one (tests, later the Claude brain). */
  brainImpl?: Brain;
  now?: () => number;
  /** Abort = graceful stop: no new claims; running tasks get `graceMs`, then are released. */
  signal?: AbortSignal;
  onProgress?: (e: CrewEvent) => void;
  env?: NodeJS.ProcessEnv;
  broker?: SecretBroker;
  spawn?: Spawner;
  backoff?: Partial<BackoffOptions>;
  /** Lease renewal interval; default a third of the lease. */
  heartbeatMs?: number;
  leaseMs?: number;
  /** Daemon: fallback rescan interval (the watcher usually wakes it sooner). Default 1000 ms. */
  pollMs?: number;
  /**
   * Daemon: how often to re-run the reconciler, which returns tasks whose lease expired (a peer
   * daemon was killed) to the backlog. Default half the lease, between 1 s and 60 s.
   */
  reconcileMs?: number;
  approvalPollMs?: number;
  /** Time running tasks get to finish after the stop signal. Default 30 s. */
  graceMs?: number;
  holder?: string;
  /** Write JSON logs to `.opscrew/logs/` (default true). */
  jsonLog?: boolean;
  /** Called when a pass found ready tasks this crew had no free worker (or specialist slot) for. */
  onSaturated?: () => void;
}

export interface CrewRun {
  taskId: string;
  runId: string;
  specialist: string;
  attempt: number;
  outcome: RunOutcome['kind'] | 'released' | 'lost';
  reason: string;
  startedMs: number;
  endedMs: number;
}

export interface CrewSummary {
  completed: string[];
  blocked: Array<{ id: string; reason: string }>;
  /** Tasks whose last run failed and that were left in backlog for a later retry (stop or no time left). */
  failed: Array<{ id: string; reason: string }>;
  runs: CrewRun[];
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 1000, maxMs: 60_000 };
const DEFAULT_GRACE_MS = 30_000;
const DEFAULT_POLL_MS = 1000;
const DEFAULT_LEASE_MS = 5 * 60_000;

/** Delay before attempt `attempt + 1`: base·2^(attempt−1), capped. */
export function backoffDelay(attempt: number, b: BackoffOptions = DEFAULT_BACKOFF): number {
  return Math.min(b.maxMs, b.baseMs * 2 ** Math.max(0, attempt - 1));
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** The failing command's evidence in a block/retry reason, bounded. */
function withEvidence(o: RunOutcome): CriterionEvidence[] | undefined {
  return o.evidence.length > 0 ? o.evidence : undefined;
}

interface Worker {
  taskId: string;
  specialist: string;
  controller: AbortController;
  done: Promise<void>;
}

export async function runCrew(opts: CrewOptions): Promise<CrewSummary> {
  const ws = typeof opts.workspace === 'string' ? resolveWorkspace(opts.workspace) : opts.workspace;
  ensureWorkspace(ws);
  const env = opts.env ?? process.env;
  const now = opts.now ?? Date.now;
  let config = opts.config;
  if (!config) {
    const c = loadConfig({ workspaceDir: ws.root, env });
    if (!c.ok) throw new OpsError('config-invalid', c.message, { cause: c.cause });
    config = c.value;
  }
  // The brain: the option, else the config's `brain:`. Fail at start, before anything is claimed,
  // when the Claude brain cannot run.
  const wantClaude = (opts.brain ?? config.brain) === 'claude' && !opts.brainImpl;
  if (wantClaude) {
    const available = checkClaudeBrainAvailable(env);
    if (!available.ok) throw new OpsError(available.code, available.message);
  }
  let specialists = opts.specialists;
  if (!specialists) {
    if (!opts.specialistsDir) throw new OpsError('specialists-missing', 'runCrew needs specialists or specialistsDir');
    const s = loadSpecialists(opts.specialistsDir);
    if (!s.ok) throw new OpsError('specialist-invalid', s.message, { cause: s.cause });
    specialists = s.value;
  }
  const cfg = config;
  const profiles = specialists;
  const ownStore = !opts.store;
  const store = opts.store ?? openStore(ws.dbPath);
  const leaseMs = opts.leaseMs ?? DEFAULT_LEASE_MS;
  const queue: TaskQueue = createFolderQueue({ workspace: ws, store, now, leaseMs, ...(opts.holder ? { holder: opts.holder } : {}) });
  const broker = opts.broker ?? createSecretBroker();
  const brain: Brain =
    opts.brainImpl ??
    (wantClaude
      ? unwrap(
          createClaudeCrewBrain({
            workspace: ws,
            store,
            config: cfg,
            env,
            broker,
            queue,
            specialists: profiles,
            now,
            ...(opts.spawn ? { spawn: opts.spawn } : {}),
          }),
        )
      : undefined) ??
    createRunbookBrain({
      db: store.db,
      config: cfg,
      env,
      broker,
      now,
      ...(opts.spawn ? { spawn: opts.spawn } : {}),
      ...(opts.approvalPollMs !== undefined ? { approvalPollMs: opts.approvalPollMs } : {}),
    });
  const backoff: BackoffOptions = { ...DEFAULT_BACKOFF, ...opts.backoff };
  const concurrency = Math.max(1, opts.concurrency ?? cfg.concurrency);
  const heartbeatMs = opts.heartbeatMs ?? Math.max(50, Math.floor(leaseMs / 3));
  const graceMs = opts.graceMs ?? DEFAULT_GRACE_MS;
  const pollMs = opts.pollMs ?? DEFAULT_POLL_MS;
  const reconcileMs = opts.reconcileMs ?? Math.min(60_000, Math.max(1000, Math.floor(leaseMs / 2)));
  const jsonLog: JsonLog = opts.jsonLog === false ? Object.assign(() => {}, { close: () => {} }) : createJsonLog(ws.logsDir);
  const emit = (e: Omit<CrewEvent, 'ts'>): void => {
    const full: CrewEvent = { ts: now(), ...e };
    jsonLog(full);
    try {
      opts.onProgress?.(full);
    } catch {
      // a broken progress callback must not stop the crew
    }
  };

  const summary: CrewSummary = { completed: [], blocked: [], failed: [], runs: [] };
  const workers = new Map<string, Worker>();
  const notBefore = new Map<string, number>();
  const lastFailure = new Map<string, string>();
  const stopping = (): boolean => opts.signal?.aborted === true;

  // Wakes the loop early: a worker finished, the backlog changed, or the stop signal came.
  let wake: (() => void) | null = null;
  let poked = false;
  const poke = (): void => {
    const w = wake;
    wake = null;
    if (w) w();
    else poked = true; // nobody waits right now: the next wait returns at once
  };
  opts.signal?.addEventListener('abort', poke, { once: true });

  const readTask = (abs: string, rel: string, known?: string | null): { ok: true; task: Task } | { ok: false; reason: string } => {
    let text: string;
    try {
      text = known ?? readFileSync(abs, 'utf8');
    } catch (e) {
      return { ok: false, reason: `cannot read ${rel}: ${errText(e)}` };
    }
    const r = parseTask(text, rel);
    if (!r.ok) return { ok: false, reason: `${rel} no longer parses: ${r.issues.map((i) => `line ${i.line}: ${i.message}`).join('; ')}` };
    return { ok: true, task: r.task };
  };

  /** Fenced write of runner-owned state into the claimed file (e.g. awaiting-approval). */
  const setState = async (claim: Claim, update: TaskUpdate): Promise<void> => {
    await queue.settled(claim);
    const hb = await queue.heartbeat(claim);
    if (!hb.ok) throw new OpsError(hb.code, hb.message);
    const text = readFileSync(claim.file, 'utf8');
    const up = updateTaskText(text, update, claim.file);
    if (!up.ok) throw new OpsError(up.code, up.message);
    writeFileDurable(claim.file, up.value);
  };

  // The retrospective-agent role under the runbook brain: one retrospective per run, written from
  // the recorded facts (store rows + the task) after the queue has settled the task.
  const runTasks = new Map<string, Task>();
  // Under the Claude brain the retrospective also gets a narrative (the same facts section): it is
  // written after the facts-only retro, so a slow or failing model never holds up the crew.
  const narrations = new Set<Promise<void>>();
  // Retrospectives are written just after their runs are recorded, and their fsyncs finish in the
  // background while the worker slot takes the next task. Runs that end while a batch is being
  // written go into the next one (one transaction for all of them). The crew waits for them before
  // it returns; every state change of the task itself was durable before this point.
  const retros = new Set<Promise<void>>();
  const retroDeps = { db: store.db, root: ws.root, retrospectivesDir: ws.retrospectives, now, scrub: (t: string) => broker.scrub(t), env };
  // `narrate: false` for recovered runs: a facts-only retrospective, no model call per old run.
  const pendingRetros: Array<{ input: RecordInput; taskId: string; narrate: boolean }> = [];
  // Run ids pending or being written, so a reconcile never queues a run twice.
  const retroQueued = new Set<string>();
  let retroFlush: Promise<void> | null = null;
  const narrate = (input: RecordInput, out: RecordOutput): void => {
    if (!brain.narrate) return;
    const narrator = brain.narrate.bind(brain);
    const n = (async () => {
      try {
        const narrative = await narrator(out.facts, AbortSignal.timeout(NARRATION_TIMEOUT_MS));
        if (narrative) await recordRunKnowledgeAsync(retroDeps, { ...input, narrative });
      } catch (e) {
        emit({ type: 'error', taskId: out.facts.taskId, runId: input.runId, reason: `the retrospective keeps its facts only; narration failed: ${errText(e)}` });
      }
    })();
    narrations.add(n);
    void n.finally(() => narrations.delete(n));
  };
  const writeRetros = async (): Promise<void> => {
    while (pendingRetros.length > 0) {
      const batch = pendingRetros.splice(0, MAX_RETRO_BATCH);
      let results: RecordResult[];
      try {
        results = await recordRunsKnowledgeAsync(
          retroDeps,
          batch.map((b) => b.input),
        );
      } catch (e) {
        results = batch.map(() => ({ ok: false, error: e instanceof Error ? e : new Error(String(e)) }));
      }
      batch.forEach(({ input, taskId, narrate: narrated }, i) => {
        retroQueued.delete(input.runId);
        const r = results[i];
        if (r && !r.ok) emit({ type: 'error', taskId, runId: input.runId, reason: `could not write the retrospective: ${errText(r.error)}` });
        else if (r?.value && narrated) narrate(input, r.value);
      });
    }
  };
  // A batch starts once MAX_RETRO_BATCH runs wait or the oldest has waited RETRO_BATCH_WINDOW_MS:
  // per run, one transaction of many costs a fraction of its own (one commit, one search-index
  // segment, one directory sync). A crash in the window loses nothing: the next crew writes them.
  let retroTimer: NodeJS.Timeout | null = null;
  const startRetros = (now = false): void => {
    if (retroFlush || pendingRetros.length === 0) return;
    if (!now && pendingRetros.length < MAX_RETRO_BATCH) {
      retroTimer ??= setTimeout(() => {
        retroTimer = null;
        startRetros(true);
      }, RETRO_BATCH_WINDOW_MS);
      return;
    }
    if (retroTimer) clearTimeout(retroTimer);
    retroTimer = null;
    const p = writeRetros().finally(() => {
      retros.delete(p);
      retroFlush = null;
      startRetros(); // runs recorded after the loop's last look
    });
    retroFlush = p;
    retros.add(p);
  };
  // Runs that ended at least this long ago without a retrospective are this crew's to write: a
  // live crew writes its own within its batch window. Another crew recovering the same run at the
  // same moment is harmless: the write is skipped under the lock if the run has one by then.
  const recoverRetros = (): number => {
    if (opts.retrospectives === false || opts.recoverRetrospectives === false) return 0;
    const missing = runsWithoutRetro(store.db, { endedBeforeMs: now() - RETRO_RECOVERY_AGE_MS, window: RETRO_RECOVERY_WINDOW }).filter((m) => !retroQueued.has(m.runId));
    for (const m of missing) {
      const parsed = m.file ? readTask(join(ws.root, ...m.file.split('/')), m.file) : null;
      retroQueued.add(m.runId);
      pendingRetros.push({ input: { runId: m.runId, task: parsed?.ok ? parsed.task : null, onlyIfMissing: true }, taskId: m.taskId, narrate: false });
    }
    startRetros();
    return missing.length;
  };
  const record = (run: CrewRun): void => {
    summary.runs.push(run);
    if (opts.retrospectives === false) return;
    const task = runTasks.get(run.runId) ?? null;
    runTasks.delete(run.runId);
    retroQueued.add(run.runId);
    pendingRetros.push({ input: { runId: run.runId, task }, taskId: run.taskId, narrate: true });
    startRetros();
  };

  /** A block or release: the file's arrival in backlog is this crew's own move, not news. */
  const intoBacklog = async <R extends { ok: true; value: { file: string } } | { ok: false }>(claim: Claim, move: () => Promise<R>): Promise<R> => {
    noteOwnMove(claim.file);
    let r: R;
    try {
      r = await move();
    } catch (e) {
      dropOwnMove(claim.file);
      throw e;
    }
    if (!r.ok || basename(r.value.file) !== basename(claim.file)) {
      dropOwnMove(claim.file);
      if (r.ok) noteOwnMove(r.value.file);
    }
    return r;
  };

  const runTask = async (rec: TaskRecord, claim: Claim, specialist: Specialist, controller: AbortController): Promise<void> => {
    const started = now();
    const base = { taskId: claim.taskId, runId: claim.runId, specialist: specialist.name, attempt: claim.attempt };
    emit({ type: 'claimed', ...base });
    const rel = rec.file.replace('tasks/backlog/', 'tasks/active/');
    // The text the claim is writing (run fields included): no need to wait for it to land.
    const known = queue.claimedText(claim);
    if (known === null) await queue.settled(claim);
    const parsed = readTask(claim.file, rel, known);
    if (!parsed.ok) {
      await finishBlocked(claim, parsed.reason, base, started);
      return;
    }
    const task = parsed.task;
    runTasks.set(claim.runId, task);
    const timeoutMs = task.fm.timeout_ms ?? cfg.timeouts.task;
    const timer = setTimeout(() => controller.abort(new OpsError('task-timeout', `the task ran longer than its timeout (${Math.round(timeoutMs / 1000)} s)`)), timeoutMs);
    let lost: string | null = null;
    const hb = setInterval(() => {
      void queue.heartbeat(claim).then(
        (r) => {
          if (!r.ok && lost === null) {
            lost = r.message;
            emit({ type: 'heartbeat-lost', ...base, reason: r.message });
            controller.abort(new OpsError('lease-lost', r.message));
          }
        },
        (e: unknown) => emit({ type: 'error', ...base, reason: `heartbeat failed: ${errText(e)}` }),
      );
    }, heartbeatMs);
    let outcome: RunOutcome;
    try {
      outcome = await brain.run({
        task,
        specialist,
        taskId: claim.taskId,
        runId: claim.runId,
        attempt: claim.attempt,
        signal: controller.signal,
        claim,
        setState: (u) => setState(claim, u),
        onEvent: (e: BrainEvent) => emit(brainEventToCrew(e, base)),
      });
    } catch (e) {
      outcome = { kind: 'failed', reason: `the brain crashed: ${errText(e)}`, evidence: [], tickCriteria: [], steps: [], vars: {} };
    } finally {
      clearTimeout(timer);
      clearInterval(hb);
    }
    if (lost !== null) {
      record({ ...base, specialist: specialist.name, outcome: 'lost', reason: lost, startedMs: started, endedMs: now() });
      return;
    }
    if (outcome.settled) {
      // The brain moved the task itself (with this claim's token); only record what happened.
      if (outcome.kind === 'completed') summary.completed.push(claim.taskId);
      else summary.blocked.push({ id: claim.taskId, reason: outcome.reason });
      emit({ type: 'finished', ...base, outcome: outcome.kind === 'completed' ? 'completed' : 'blocked', ...(outcome.reason ? { reason: outcome.reason } : {}) });
      record({ ...base, outcome: outcome.kind, reason: outcome.reason, startedMs: started, endedMs: now() });
      return;
    }
    const shutdown = controller.signal.aborted && stopping() && (controller.signal.reason as { code?: string } | undefined)?.code === 'shutdown';
    if (shutdown && outcome.kind !== 'completed') {
      const r = await intoBacklog(claim, () => queue.release(claim, `crew stopped: ${outcome.reason}`));
      emit({ type: 'released', ...base, reason: outcome.reason });
      summary.failed.push({ id: claim.taskId, reason: `released on shutdown: ${outcome.reason}` });
      record({ ...base, outcome: 'released', reason: r.ok ? outcome.reason : r.message, startedMs: started, endedMs: now() });
      return;
    }
    switch (outcome.kind) {
      case 'completed': {
        const r = await queue.complete(claim, { tickCriteria: outcome.tickCriteria, evidence: outcome.evidence, set: { run_id: claim.runId } });
        if (!r.ok) {
          emit({ type: 'error', ...base, reason: `could not complete: ${r.message}` });
          record({ ...base, outcome: 'lost', reason: r.message, startedMs: started, endedMs: now() });
          return;
        }
        summary.completed.push(claim.taskId);
        emit({ type: 'finished', ...base, outcome: 'completed' });
        record({ ...base, outcome: 'completed', reason: '', startedMs: started, endedMs: now() });
        return;
      }
      case 'failed': {
        const max = task.fm.max_attempts ?? cfg.max_attempts;
        if (claim.attempt < max && !stopping()) {
          const delay = backoffDelay(claim.attempt, backoff);
          const r = await intoBacklog(claim, () => queue.release(claim, outcome.reason, { outcome: 'failed' }));
          if (r.ok) {
            notBefore.set(claim.taskId, now() + delay);
            lastFailure.set(claim.taskId, outcome.reason);
            emit({ type: 'retry-scheduled', ...base, reason: outcome.reason, data: { delayMs: delay, maxAttempts: max } });
          } else emit({ type: 'error', ...base, reason: `could not release: ${r.message}` });
          record({ ...base, outcome: 'failed', reason: outcome.reason, startedMs: started, endedMs: now() });
          return;
        }
        const why = claim.attempt >= max ? `failed after ${claim.attempt} of ${max} attempts: ${outcome.reason}` : `failed (crew stopping, no retry): ${outcome.reason}`;
        await finishBlocked(claim, why, base, started, outcome, 'failed');
        return;
      }
      case 'refused':
        await finishBlocked(claim, `not retried (a refusal does not change on retry): ${outcome.reason}`, base, started, outcome, 'refused');
        return;
      case 'blocked':
        await finishBlocked(claim, outcome.reason, base, started, outcome, 'blocked');
        return;
    }
  };

  const finishBlocked = async (
    claim: Claim,
    reason: string,
    base: { taskId: string; runId: string; specialist: string; attempt: number },
    started: number,
    outcome?: RunOutcome,
    kind: RunOutcome['kind'] = 'blocked',
  ): Promise<void> => {
    const ev = outcome ? withEvidence(outcome) : undefined;
    const r = await intoBacklog(claim, () => queue.block(claim, reason, { set: { run_id: claim.runId }, ...(ev ? { evidence: ev } : {}) }));
    if (!r.ok) {
      emit({ type: 'error', ...base, reason: `could not block: ${r.message}` });
      record({ ...base, outcome: 'lost', reason: r.message, startedMs: started, endedMs: now() });
      return;
    }
    notBefore.delete(claim.taskId);
    summary.blocked.push({ id: claim.taskId, reason });
    emit({ type: 'finished', ...base, outcome: 'blocked', reason });
    record({ ...base, outcome: kind, reason, startedMs: started, endedMs: now() });
  };

  const startWorker = (rec: TaskRecord, claim: Claim, specialist: Specialist): void => {
    const controller = new AbortController();
    const w: Worker = { taskId: claim.taskId, specialist: specialist.name, controller, done: Promise.resolve() };
    w.done = runTask(rec, claim, specialist, controller)
      .catch((e: unknown) => emit({ type: 'error', taskId: claim.taskId, reason: `worker failed: ${errText(e)}` }))
      .finally(() => {
        workers.delete(claim.taskId);
        poke();
      });
    workers.set(claim.taskId, w);
  };

  const runningFor = (name: string): number => {
    let n = 0;
    for (const w of workers.values()) if (w.specialist === name) n++;
    return n;
  };

  // Scanning stats every file in all three folders, so a pass scans only when something outside
  // this crew's own queue calls may have changed the folders: the backlog watcher, the poll
  // interval, a reconcile. This crew's claims and finishes update the queue's rows themselves
  // (ready() reads only rows: folder, status, leases, dependencies' folders, active resources).
  let dirty = true;
  let lastScan = Number.NEGATIVE_INFINITY;
  const scan = async (): Promise<void> => {
    dirty = false;
    lastScan = now();
    await queue.scan();
  };
  // Backlog names this crew itself just moved (claim out, block/release in): their watcher events
  // are its own and need no scan. Entries expire so a lost event cannot hide a later edit for
  // long (the poll interval's scan is the backstop either way).
  const OWN_MOVE_MS = 2000;
  const ownMoves = new Map<string, { n: number; until: number }>();
  const noteOwnMove = (file: string): void => {
    const name = basename(file);
    const e = ownMoves.get(name);
    ownMoves.set(name, { n: (e && e.until > now() ? e.n : 0) + 1, until: now() + OWN_MOVE_MS });
  };
  const dropOwnMove = (file: string): void => {
    const name = basename(file);
    const e = ownMoves.get(name);
    if (!e) return;
    if (e.n > 1) e.n--;
    else ownMoves.delete(name);
  };
  const onBacklogEvent = (name: string | null): void => {
    if (name !== null) {
      const e = ownMoves.get(name);
      if (e) {
        if (e.n > 1) e.n--;
        else ownMoves.delete(name);
        if (e.until > now()) return;
      }
    }
    dirty = true;
    poke();
  };

  // Routing reads and parses the task file: cache the result per row version so a task skipped
  // for a full specialist is not re-parsed on every pass. A scan that sees the file changed, a
  // claim, a release or a block all give the row a new `updatedMs` (and the key holds the routed
  // fields too, for clocks that do not move).
  const routeCache = new Map<string, { key: string; route: RouteResult; retryAtMs: number | null }>();
  const routeKey = (rec: TaskRecord): string =>
    JSON.stringify([rec.file, rec.updatedMs, rec.attempts, rec.status, rec.agent, rec.title, rec.tags, rec.dependsOn, rec.resources]);
  // A failed run's retry waits for its backoff, whichever crew (thread, daemon) ran it: the time
  // comes from the task's last run in the store, not from this crew's memory.
  const retryAtOf = async (rec: TaskRecord): Promise<number | null> => {
    if (rec.attempts === 0) return null;
    const last = await queue.lastRun(rec.id);
    if (!last || last.outcome !== 'failed' || last.endedMs === null) return null;
    return last.endedMs + backoffDelay(last.attempt, backoff);
  };
  const routeOf = async (rec: TaskRecord): Promise<{ route: RouteResult; retryAtMs: number | null } | null> => {
    const key = routeKey(rec);
    const c = routeCache.get(rec.id);
    if (c && c.key === key) return c;
    const parsed = readTask(join(ws.root, ...rec.file.split('/')), rec.file);
    if (!parsed.ok) {
      routeCache.delete(rec.id);
      return null; // the next scan records it as invalid
    }
    const entry = { key, route: routeTask(parsed.task, profiles, cfg, { env, now }), retryAtMs: await retryAtOf(rec) };
    routeCache.set(rec.id, entry);
    return entry;
  };

  /** One pass over the ready set: route, respect caps, claim, start. Returns how many started. */
  const fill = async (): Promise<{ started: number; waitingBackoff: number }> => {
    let started = 0;
    let waitingBackoff = 0;
    let saturated = false;
    if (workers.size >= concurrency) return { started, waitingBackoff };
    let scanned = false;
    if (dirty || now() - lastScan >= pollMs) {
      await scan();
      scanned = true;
    }
    const full = (): boolean => stopping() || workers.size >= concurrency || (profiles.length > 0 && profiles.every((p) => runningFor(p.name) >= p.maxConcurrency));
    const t = now();
    const seen = new Set<string>();
    /** Tries the records in order; returns whether it stopped because no more can start. */
    const consider = async (records: readonly TaskRecord[]): Promise<boolean> => {
      for (const rec of records) {
        if (full()) {
          // A ready task this crew has no slot for: more crews would help.
          if (!stopping() && !workers.has(rec.id) && !seen.has(rec.id)) saturated = true;
          return true;
        }
        if (seen.has(rec.id)) continue;
        seen.add(rec.id);
        if (workers.has(rec.id)) continue;
        const routed = await routeOf(rec);
        if (!routed) continue;
        const nb = Math.max(notBefore.get(rec.id) ?? 0, routed.retryAtMs ?? 0);
        if (nb > t) {
          notBefore.set(rec.id, nb);
          waitingBackoff++;
          continue;
        }
        const route = routed.route;
        if (!route.ok) {
          routeCache.delete(rec.id);
          noteOwnMove(rec.file);
          const claim = await queue.claim({ id: rec.id });
          if (!claim) {
            dropOwnMove(rec.file);
            continue;
          }
          emit({ type: 'route-failed', taskId: rec.id, runId: claim.runId, reason: route.message });
          await finishBlocked(claim, route.message, { taskId: rec.id, runId: claim.runId, specialist: '-', attempt: claim.attempt }, now());
          continue;
        }
        const s = route.specialist;
        if (runningFor(s.name) >= s.maxConcurrency) {
          if (!stopping()) saturated = true;
          continue;
        }
        noteOwnMove(rec.file);
        const claim = await queue.claim({ id: rec.id, agent: s.name });
        if (!claim) {
          dropOwnMove(rec.file);
          continue;
        }
        routeCache.delete(rec.id);
        notBefore.delete(rec.id);
        emit({ type: 'routed', taskId: rec.id, runId: claim.runId, specialist: s.name, reason: route.reason });
        startWorker(rec, claim, s);
        started++;
      }
      return full();
    };
    // The first few ready tasks usually fill the free slots; the whole list is read only when
    // they could not (backoff, full specialists) and there may be more.
    const limit = concurrency * 2 + notBefore.size + 8;
    let ready = await queue.ready({ limit });
    if (ready.length === 0 && !scanned) {
      // Nothing ready without a scan this pass: look at the folders once before saying so
      // (`--once` exits on this answer).
      await scan();
      scanned = true;
      ready = await queue.ready({ limit });
    }
    const done = await consider(ready);
    if (!done && ready.length >= limit) await consider(await queue.ready());
    if (saturated) {
      try {
        opts.onSaturated?.();
      } catch {
        // a broken callback must not stop the crew
      }
    }
    return { started, waitingBackoff };
  };

  const waitForWake = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      if (poked) {
        poked = false;
        return resolve();
      }
      const t = setTimeout(() => {
        wake = null;
        resolve();
      }, Math.max(0, ms));
      wake = () => {
        clearTimeout(t);
        resolve();
      };
    });

  let watcher: FSWatcher | null = null;
  emit({ type: 'crew-start', data: { concurrency, brain: brain.name, once: opts.once === true, workspace: ws.root } });
  try {
    const reconcile = async (): Promise<void> => {
      const rep = await queue.reconcile();
      dirty = true; // a repair may have moved files; the next pass looks at the folders
      if (rep.repairs.length > 0) emit({ type: 'reconciled', data: { repairs: rep.repairs } });
      const recovered = recoverRetros();
      if (recovered > 0) emit({ type: 'reconciled', data: { retrospectivesRecovered: recovered } });
    };
    await reconcile();
    let lastReconcile = now();
    if (!opts.once) {
      try {
        watcher = watch(ws.backlog, (_event, name) => onBacklogEvent(typeof name === 'string' ? name : null));
        watcher.on('error', () => {
          watcher?.close();
          watcher = null;
        });
      } catch {
        watcher = null; // the poll interval still finds new files
      }
    }
    for (;;) {
      if (stopping()) break;
      if (!opts.once && now() - lastReconcile >= reconcileMs) {
        // Another daemon on this workspace may have died holding leases: once they expire, its
        // tasks go back to the backlog here instead of waiting for some daemon's restart.
        lastReconcile = now();
        try {
          await reconcile();
        } catch (e) {
          emit({ type: 'error', reason: `reconcile failed: ${errText(e)}` });
        }
      }
      const { started, waitingBackoff } = await fill();
      if (opts.once && started === 0 && workers.size === 0) {
        if (waitingBackoff === 0) break;
        const t = now();
        const next = Math.min(...[...notBefore.values()].filter((v) => v > t));
        await waitForWake(Number.isFinite(next) ? next - t : pollMs);
        continue;
      }
      const t = now();
      const nextRetry = Math.min(...[...notBefore.values()].filter((v) => v > t).map((v) => v - t));
      const idle = opts.once ? (Number.isFinite(nextRetry) ? nextRetry : 60_000) : Math.min(pollMs, Number.isFinite(nextRetry) ? nextRetry : pollMs);
      await waitForWake(idle);
    }
    // Graceful stop: running tasks get the grace period, then are aborted and released.
    if (workers.size > 0) {
      const all = Promise.all([...workers.values()].map((w) => w.done));
      // The grace timer is cancelled when the workers finish first: a pending timer would keep
      // the daemon's process alive for the rest of the grace period.
      const graceTimer = new AbortController();
      const graceOver = sleep(graceMs, graceTimer.signal).then(() => 'grace' as const);
      const first = await Promise.race([all.then(() => 'done' as const), graceOver]);
      graceTimer.abort();
      if (first === 'grace') {
        for (const w of workers.values()) w.controller.abort(new OpsError('shutdown', 'the crew is stopping'));
        await all;
      }
    }
  } finally {
    watcher?.close();
    opts.signal?.removeEventListener('abort', poke);
    for (const [id, reason] of lastFailure) {
      if (!summary.completed.includes(id) && !summary.blocked.some((b) => b.id === id) && !summary.failed.some((f) => f.id === id)) {
        summary.failed.push({ id, reason });
      }
    }
    // Retrospectives still syncing, then narrations (bounded by NARRATION_TIMEOUT_MS each): wait
    // for them before the store closes.
    startRetros(true);
    while (retros.size > 0) await Promise.all([...retros]);
    await Promise.all([...narrations]);
    emit({ type: 'crew-stop', data: { completed: summary.completed.length, blocked: summary.blocked.length, failed: summary.failed.length } });
    jsonLog.close();
    if (ownStore) store.close();
  }
  return summary;
}

function brainEventToCrew(e: BrainEvent, base: { taskId: string; runId: string; specialist: string; attempt: number }): Omit<CrewEvent, 'ts'> {
  switch (e.type) {
    case 'section':
      return { type: 'section', ...base, section: e.section };
    case 'command':
      return { type: 'command', ...base, section: e.section, line: e.line, command: e.command };
    case 'command-done':
      return {
        type: 'command-done',
        ...base,
        section: e.section,
        line: e.step.line,
        command: e.step.command,
        exitCode: e.step.exitCode,
        durationMs: e.step.durationMs,
        passed: e.step.passed,
        ...(e.step.reason ? { reason: e.step.reason } : {}),
      };
    case 'awaiting-approval':
      return { type: 'awaiting-approval', ...base, approvalId: e.approvalId, command: e.command };
    case 'approval-decided':
      return { type: 'approval-decided', ...base, approvalId: e.approvalId, outcome: e.state };
  }
}

/** At most this many runs' retrospectives in one write transaction (bounds how long it holds the lock). */
const MAX_RETRO_BATCH = 32;
/** How long the first run of a batch waits for others to join it. */
const RETRO_BATCH_WINDOW_MS = 250;
/** Runs this old (ended) without a retrospective are recovered by the next crew start or reconcile. */
const RETRO_RECOVERY_AGE_MS = 5000;
/**
 * How many of the newest runs each pass looks at: such gaps sit just before a crew stopped, and
 * a crew that restarts finds its own; a peer that does not restart is covered while fewer runs
 * than this end between two reconciles.
 */
const RETRO_RECOVERY_WINDOW = 2000;
/** A retrospective narration gets this long before the retro keeps its facts section only. */
const NARRATION_TIMEOUT_MS = 60_000;

function unwrap<T>(r: { ok: true; value: T } | { ok: false; code: string; message: string }): T {
  if (!r.ok) throw new OpsError(r.code, r.message);
  return r.value;
}
