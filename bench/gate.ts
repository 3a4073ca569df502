// Gate benchmark: the per-call cost of the full gate (`runLine`: parse + policy + approvals +
// audit row (synchronous=FULL) + execa + scrub) versus bare `runProcess` (the one execa wrapper)
// of the SAME program, argv and env, measured in the same run in interleaved rounds so load from
// other processes hits both alike. Sequential and 8 in flight. Also the gate with a spawner that
// returns at once, and its parts, to show where any overhead goes.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { loadavg as osLoadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { recordCall } from '../mcp-server/core/audit.js';
import { parseConfigText, toToolEnv, type Config } from '../mcp-server/core/config.js';
import { runLine, type GateDeps } from '../mcp-server/core/gate.js';
import { decide } from '../mcp-server/core/policy.js';
import { openStore, type Store } from '../mcp-server/core/store.js';
import { runProcess } from '../tools/exec.js';
import { parseCommandLine } from '../tools/parse-command.js';
import { createSecretBroker } from '../tools/secret-broker.js';
import type { SpawnRequest, Spawner } from '../tools/types.js';
import { median, since, summarize, type BenchGoal, type BenchMetric, type BenchReport } from './stats.js';

export interface GateBenchOptions {
  /** Where the temp workspace goes: on the disk the audit log would use (not tmpfs). */
  dir?: string;
  rounds?: number;
  perRound?: number;
  /** Calls per side for the 8-in-flight runs, per round. */
  parallelPerRound?: number;
  /** Set false to skip the kubectl case (slow: ~70 ms a call). */
  kubectl?: boolean;
}

/** A vetted line that spawns a cheap real process (exit 0, no systemd or journal needed). */
const CHEAP_LINE = 'journalctl -n 1 --no-pager';
const KUBECTL_LINE = 'kubectl --context bench version --client';
const GOAL = 1.3;
const IN_FLIGHT = 8;

function configFor(dir: string): Config {
  const yaml = ['mode: standard', 'kubernetes:', '  contexts:', '    bench: { namespaces: [default] }', ''].join('\n');
  const r = parseConfigText(yaml, { file: join(dir, 'opscrew.config.yaml'), workspaceDir: dir, env: {} });
  if (!r.ok) throw new Error(`bench gate: config: ${r.message}`);
  return r.value;
}

/** Runs `fn` `n` times with at most `k` in flight; returns the wall time in ms. */
async function inFlight(n: number, k: number, fn: () => Promise<unknown>): Promise<number> {
  let next = 0;
  const s = process.hrtime.bigint();
  const worker = async (): Promise<void> => {
    while (next < n) {
      next++;
      await fn();
    }
  };
  await Promise.all(Array.from({ length: k }, worker));
  return since(s);
}

interface CaseResult {
  metrics: BenchMetric[];
  goals: BenchGoal[];
}

async function benchLine(
  label: string,
  line: string,
  deps: GateDeps,
  o: { rounds: number; perRound: number; parallel: number; store?: Store },
): Promise<CaseResult> {
  // The exact request the gate makes, captured once, is the baseline's request.
  let captured: SpawnRequest | undefined;
  const capture: Spawner = (req) => {
    captured = req;
    return runProcess(req);
  };
  const first = await runLine({ ...deps, spawn: capture }, { line, agent: 'bench', scope: 'person' });
  if (!first.ok || !captured) {
    throw new Error(`bench gate: \`${line}\` did not run: ${first.decision.rule} ${first.decision.reason} ${first.execError?.message ?? ''} ${first.outcome?.stderr ?? ''}`);
  }
  const req: SpawnRequest = { ...captured };
  const bare = async (): Promise<void> => {
    const r = await runProcess(req);
    if (r.exitCode !== 0) throw new Error(`bench gate: bare ${req.file} exited ${r.exitCode}: ${r.stderr}`);
  };
  const gated = async (): Promise<void> => {
    const r = await runLine(deps, { line, agent: 'bench', scope: 'person' });
    if (!r.ok) throw new Error(`bench gate: \`${line}\` failed: ${r.decision.reason} ${r.outcome?.stderr ?? ''}`);
  };
  // Diagnostic only (with `store`): the same gate with the audit commit not synced, to show how
  // much of the difference is the one durable commit. The product never runs like this.
  const unsynced = async (): Promise<void> => {
    o.store?.db.exec('PRAGMA synchronous = OFF');
    try {
      await gated();
    } finally {
      o.store?.db.exec('PRAGMA synchronous = FULL');
    }
  };
  const seqSides = o.store ? [bare, gated, unsynced] : [bare, gated];
  // Warm both paths (JIT, page cache, the prepared INSERT).
  for (let i = 0; i < 3; i++) for (const fn of seqSides) await fn();

  const bareMs: number[] = [];
  const gateMs: number[] = [];
  const roundRatio: number[] = [];
  const parRatio: number[] = [];
  const unsyncedMs: number[] = [];
  const bareParMs: number[] = [];
  const gateParMs: number[] = [];
  for (let r = 0; r < o.rounds; r++) {
    const rb: number[] = [];
    const rg: number[] = [];
    // Round-robin call by call (rotating who goes first), so every side sees the same load.
    for (let i = 0; i < o.perRound; i++) {
      for (let k = 0; k < seqSides.length; k++) {
        const fn = seqSides[(i + r + k) % seqSides.length]!;
        const s = process.hrtime.bigint();
        await fn();
        (fn === bare ? rb : fn === gated ? rg : unsyncedMs).push(since(s));
      }
    }
    bareMs.push(...rb);
    gateMs.push(...rg);
    roundRatio.push(median(rg) / median(rb));
    // 8 in flight: wall time per call of each side, run back to back.
    const sides = r % 2 === 0 ? ([bare, gated] as const) : ([gated, bare] as const);
    const wall = new Map<unknown, number>();
    for (const fn of sides) wall.set(fn, (await inFlight(o.parallel, IN_FLIGHT, fn)) / o.parallel);
    bareParMs.push(wall.get(bare)!);
    gateParMs.push(wall.get(gated)!);
    parRatio.push(wall.get(gated)! / wall.get(bare)!);
  }
  const b = summarize(bareMs);
  const g = summarize(gateMs);
  const seqRatio = g.median / b.median;
  const seqRoundRatio = median(roundRatio);
  const parallelRatio = median(parRatio);
  const cmd = `${req.file} ${req.args.join(' ')}`;
  return {
    metrics: [
      { name: `${label}: gate / bare, sequential (medians)`, value: seqRatio, unit: 'x', detail: `median of per-round ratios ${seqRoundRatio.toFixed(2)}×` },
      { name: `${label}: gate / bare, ${IN_FLIGHT} in flight`, value: parallelRatio, unit: 'x', detail: 'median of per-round ratios of wall time per call' },
      { name: `${label}: bare runProcess median`, value: b.median, unit: 'ms', detail: `${cmd}; p95 ${b.p95.toFixed(2)} ms, n=${b.n}` },
      { name: `${label}: gate runLine median`, value: g.median, unit: 'ms', detail: `p95 ${g.p95.toFixed(2)} ms, n=${g.n}` },
      { name: `${label}: gate − bare (medians)`, value: g.median - b.median, unit: 'ms' },
      ...(unsyncedMs.length
        ? [{ name: `${label}: diagnostic: gate without the fsync / bare`, value: median(unsyncedMs) / b.median, unit: 'x', detail: 'audit commit with synchronous=OFF (never in the product): what is left without the one durable commit' }]
        : []),
      { name: `${label}: bare, ${IN_FLIGHT} in flight`, value: 1000 / median(bareParMs), unit: '/s' },
      { name: `${label}: gate, ${IN_FLIGHT} in flight`, value: 1000 / median(gateParMs), unit: '/s' },
    ],
    goals: [
      { name: `${label}: gate ≤ ${GOAL}× bare spawn, sequential`, target: `≤ ${GOAL.toFixed(2)}×`, actual: `${seqRatio.toFixed(2)}×`, met: seqRatio <= GOAL },
      { name: `${label}: gate ≤ ${GOAL}× bare spawn, ${IN_FLIGHT} in flight`, target: `≤ ${GOAL.toFixed(2)}×`, actual: `${parallelRatio.toFixed(2)}×`, met: parallelRatio <= GOAL },
    ],
  };
}

/** µs per call of fn, median of 5 batches. */
function perCallUs(n: number, fn: () => unknown): number {
  for (let i = 0; i < Math.min(50, n); i++) fn();
  const runs: number[] = [];
  for (let k = 0; k < 5; k++) {
    const s = process.hrtime.bigint();
    for (let i = 0; i < n; i++) fn();
    runs.push((since(s) * 1000) / n);
  }
  return median(runs);
}

/** The gate's own work per call, with a spawner that answers at once, and its parts. */
async function overheadParts(deps: GateDeps, store: Store): Promise<BenchMetric[]> {
  const instant: Spawner = async () => ({ exitCode: 0, signal: null, stdout: 'ok\n', stderr: '', durationMs: 0, timedOut: false, truncated: false });
  const fast = { ...deps, spawn: instant };
  const n = 400;
  for (let i = 0; i < 50; i++) await runLine(fast, { line: CHEAP_LINE, agent: 'bench', scope: 'person' });
  const runs: number[] = [];
  for (let k = 0; k < 5; k++) {
    const s = process.hrtime.bigint();
    for (let i = 0; i < n; i++) await runLine(fast, { line: CHEAP_LINE, agent: 'bench', scope: 'person' });
    runs.push((since(s) * 1000) / n);
  }
  const toolEnv = toToolEnv(deps.config, deps.env);
  const parsed = parseCommandLine(CHEAP_LINE, { vars: {}, env: toolEnv });
  if (!parsed.ok) throw new Error(`bench gate: ${parsed.message}`);
  const call = parsed.value;
  const parseUs = perCallUs(2000, () => parseCommandLine(CHEAP_LINE, { vars: {}, env: toolEnv }));
  const envUs = perCallUs(2000, () => toToolEnv(deps.config, deps.env));
  const decideUs = perCallUs(2000, () => decide({ call, config: deps.config, scope: 'person', approvals: [], taskId: null, now: Date.now() }));
  const auditUs = perCallUs(300, () =>
    recordCall(store.db, { tsMs: Date.now(), agent: 'bench', tool: call.tool, verb: call.verb, canonical: call.canonical, class: 'read', decision: 'allow', rule: 'class.read', exitCode: 0, durationMs: 1, stdout: 'ok\n', stderr: '' }),
  );
  return [
    { name: 'gate work per call (instant spawner)', value: median(runs) / 1000, unit: 'ms', detail: 'parse + policy + approvals lookup + audit row + scrub' },
    { name: 'part: parse line', value: parseUs / 1000, unit: 'ms' },
    { name: 'part: toToolEnv', value: envUs / 1000, unit: 'ms' },
    { name: 'part: policy decide', value: decideUs / 1000, unit: 'ms' },
    { name: 'part: audit row (synchronous=FULL commit)', value: auditUs / 1000, unit: 'ms' },
  ];
}

export async function benchGate(opts: GateBenchOptions = {}): Promise<BenchReport> {
  const root = opts.dir ?? resolve(import.meta.dirname, '..', '..', 'bench', 'results', 'tmp');
  mkdirSync(root, { recursive: true });
  const work = mkdtempSync(join(root, 'gate-'));
  const store = openStore(join(work, '.opscrew', 'state.db'));
  try {
    const deps: GateDeps = { db: store.db, config: configFor(work), env: {}, broker: createSecretBroker(), now: Date.now };
    const metrics: BenchMetric[] = [];
    const goals: BenchGoal[] = [];
    const notes: string[] = [];
    const rounds = opts.rounds ?? 5;
    const perRound = opts.perRound ?? 40;
    const parallel = opts.parallelPerRound ?? 48;
    const cheap = await benchLine('journalctl', CHEAP_LINE, deps, { rounds, perRound, parallel, store });
    metrics.push(...cheap.metrics);
    goals.push(...cheap.goals);
    if (opts.kubectl !== false) {
      const k = await benchLine('kubectl', KUBECTL_LINE, deps, { rounds: Math.max(2, Math.ceil(rounds / 2)), perRound: Math.max(4, Math.ceil(perRound / 4)), parallel: Math.max(8, Math.ceil(parallel / 3)) });
      metrics.push(...k.metrics);
      goals.push(...k.goals);
    }
    metrics.push(...(await overheadParts(deps, store)));
    notes.push(
      `cheap process: \`${CHEAP_LINE}\` (a vetted read that spawns a real program and exits 0 without a journal; systemd is not running here). Baseline: runProcess (tools/exec.ts, the execa wrapper) with the argv and env the gate passes.`,
      `${rounds} interleaved rounds × ${perRound} calls per side (sequential) and ${parallel} per side with ${IN_FLIGHT} in flight; audit rows on ${root} with synchronous=FULL. loadavg at end: ${loadavg()}`,
    );
    return { bench: 'gate', metrics, goals, notes };
  } finally {
    store.close();
    rmSync(work, { recursive: true, force: true });
  }
}

/** The 1, 5 and 15 minute load, so absolute numbers can be read against the machine's state. */
export function loadavg(): string {
  return osLoadavg().map((x) => x.toFixed(2)).join(' ');
}
