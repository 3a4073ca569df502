// MCP benchmark: one tool call (a read-only `http` GET to a local server started here) through
// the SDK's in-memory transport, `opscrew mcp` over stdio and Streamable HTTP, versus calling the
// same core function (`runLine`, the gate) directly — all in the same run, in interleaved rounds
// so load from other processes hits every mode alike. Every call is a full gated call (policy,
// audit row with synchronous=FULL, in-process HTTP). Plus the stdio cold start: spawn of
// `node bin/opscrew.js mcp --workspace DIR` to the first `tools/list` answer.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttp, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { loadConfig } from '../mcp-server/core/config.js';
import { runLine, type GateDeps } from '../mcp-server/core/gate.js';
import { createFolderQueue } from '../mcp-server/core/queue.js';
import { loadSpecialists } from '../mcp-server/core/specialists.js';
import { openStore } from '../mcp-server/core/store.js';
import { ensureWorkspace, resolveWorkspace } from '../mcp-server/core/workspace.js';
import { startHttpServer, type RunningHttpServer } from '../mcp-server/http.js';
import { createServer, identityFor, type ServerDeps } from '../mcp-server/server.js';
import { createToken, verifyToken } from '../mcp-server/tokens.js';
import { baseEnv, runProcess } from '../tools/exec.js';
import { createSecretBroker } from '../tools/secret-broker.js';
import { loadavg } from './gate.js';
import { median, since, summarize, type BenchMetric, type BenchReport } from './stats.js';

export interface McpBenchOptions {
  /** Where the temp workspace goes: on the disk the audit log would use (not tmpfs). */
  dir?: string;
  rounds?: number;
  perRound?: number;
  /** stdio cold starts measured (median reported). */
  coldStarts?: number;
}

/** A specialist whose scope has `http` (read). */
const AGENT = 'k8s-specialist';
const IN_MEMORY_GOAL = 1.2;
const COLD_START_GOAL_MS = 250;

const ROOT = resolve(import.meta.dirname, '..', '..');
const BIN = join(ROOT, 'bin', 'opscrew.js');

type Mode = 'direct' | 'in-memory' | 'stdio' | 'http';
const MODES: readonly Mode[] = ['direct', 'in-memory', 'stdio', 'http'];

function textOf(r: unknown): string {
  const c = ((r as { content?: unknown }).content as Array<{ text?: string }> | undefined)?.[0];
  return c?.text ?? '';
}

/** CPU time (user + system, all threads) a live process has used, from /proc; NaN elsewhere. */
function cpuMs(pid: number | null | undefined): number {
  if (!pid) return Number.NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start after the last ')'.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(f[11]) + Number(f[12]);
    return (ticks * 1000) / 100; // USER_HZ is 100 on Linux
  } catch {
    return Number.NaN;
  }
}

interface StdioSession {
  client: Client;
  transport: StdioClientTransport;
  /** The server's last stderr output (bounded), for error messages. */
  stderrTail: () => string;
}

async function stdioClient(workspace: string, agent?: string, env: Record<string, string> = {}): Promise<StdioSession> {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [BIN, 'mcp', '--workspace', workspace, ...(agent ? ['--agent', agent] : [])],
    stderr: 'pipe',
    env: baseEnv(env),
  });
  let tail = '';
  transport.stderr?.on('data', (d: Buffer) => {
    tail = (tail + d.toString()).slice(-4000);
  });
  const client = new Client({ name: 'bench-stdio', version: '0' });
  try {
    await client.connect(transport);
  } catch (e) {
    throw new Error(`bench mcp: stdio server did not start: ${e instanceof Error ? e.message : String(e)}\n${tail}`);
  }
  return { client, transport, stderrTail: () => tail };
}

/**
 * Spawn to the first tools/list answer, and the child's CPU time at that moment. `noCache`: the
 * server compiles its bundle from source, as on the first start after a build.
 */
async function coldStart(workspace: string, noCache = false): Promise<{ wallMs: number; cpuMs: number; tools: number }> {
  const s = process.hrtime.bigint();
  const { client, transport } = await stdioClient(workspace, undefined, noCache ? { NODE_DISABLE_COMPILE_CACHE: '1' } : {});
  try {
    const list = await client.listTools();
    const wallMs = since(s);
    return { wallMs, cpuMs: cpuMs(transport.pid), tools: list.tools.length };
  } finally {
    await client.close();
  }
}

export async function benchMcp(opts: McpBenchOptions = {}): Promise<BenchReport> {
  const base = opts.dir ?? resolve(ROOT, 'bench', 'results', 'tmp');
  mkdirSync(base, { recursive: true });
  const root = mkdtempSync(join(base, 'mcp-'));
  const rounds = opts.rounds ?? 5;
  const perRound = opts.perRound ?? 30;
  const colds = opts.coldStarts ?? 7;

  let hits = 0;
  const svc: Server = createHttp((req, res) => {
    hits++;
    res.setHeader('Content-Type', 'application/json');
    res.end('{"status":"healthy"}');
  });
  await new Promise<void>((r) => svc.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(svc.address() as AddressInfo).port}/health`;

  const ws = resolveWorkspace(root);
  ensureWorkspace(ws);
  writeFileSync(ws.configPath, 'mode: standard\nhttp:\n  allow: [127.0.0.1]\n');
  const cfg = loadConfig({ workspaceDir: root, env: {} });
  if (!cfg.ok) throw new Error(`bench mcp: config: ${cfg.message}`);
  const store = openStore(ws.dbPath);
  const sp = loadSpecialists(join(ROOT, 'agents', 'specialists'));
  if (!sp.ok) throw new Error(`bench mcp: specialists: ${sp.message}`);
  const identity = identityFor(sp.value, AGENT);
  if (!identity) throw new Error(`bench mcp: no specialist ${AGENT}`);
  const queue = createFolderQueue({ workspace: ws, store });
  const broker = createSecretBroker();
  const deps = (agent: string): ServerDeps | null => {
    const id = identityFor(sp.value, agent);
    return id ? { workspace: ws, store, config: cfg.value, env: {}, broker, queue, specialists: sp.value, identity: id, now: Date.now, version: '0.0.0-bench' } : null;
  };
  const gateDeps: GateDeps = { db: store.db, config: cfg.value, env: {}, broker, now: Date.now };

  const closers: Array<() => Promise<unknown>> = [];
  let http: RunningHttpServer | undefined;
  try {
    // What the `http` tool's handler runs: the structured args become this line.
    const args = ['-fsS', url];
    const line = `curl -fsS ${url}`;
    const direct = async (): Promise<void> => {
      const r = await runLine(gateDeps, { line, vars: {}, agent: AGENT, scope: identity.scope });
      if (!r.ok || !r.outcome?.stdout.includes('healthy')) throw new Error(`bench mcp: direct call failed: ${r.decision.reason} ${r.outcome?.stderr ?? ''}`);
    };

    const mem = createServer(deps(AGENT)!);
    const [a, b] = InMemoryTransport.createLinkedPair();
    const memClient = new Client({ name: 'bench-mem', version: '0' });
    await Promise.all([mem.connect(b), memClient.connect(a)]);
    closers.push(() => memClient.close());

    const stdio = await stdioClient(root, AGENT);
    closers.push(() => stdio.client.close());

    http = await startHttpServer({
      host: '127.0.0.1',
      port: 0,
      authenticate: (t) => verifyToken(store.db, t),
      makeServer: (agent) => {
        const d = deps(agent);
        return d ? createServer(d) : null;
      },
      rateLimit: { max: 1_000_000, windowMs: 60_000 },
      log: () => undefined,
    });
    const tok = createToken(store.db, AGENT);
    if (!tok.ok) throw new Error(`bench mcp: token: ${tok.message}`);
    const httpClient = new Client({ name: 'bench-http', version: '0' });
    await httpClient.connect(new StreamableHTTPClientTransport(new URL(http.url), { requestInit: { headers: { Authorization: `Bearer ${tok.value.token}` } } }));
    closers.push(() => httpClient.close());

    const viaClient = (c: Client, mode: Mode) => async (): Promise<void> => {
      const r = await c.callTool({ name: 'http', arguments: { args } }).catch((e: unknown) => {
        const why = mode === 'stdio' ? `; server stderr: ${stdio.stderrTail()}` : '';
        throw new Error(`bench mcp: ${mode} call failed: ${e instanceof Error ? e.message : String(e)}${why}`);
      });
      if (r.isError || !textOf(r).includes('healthy')) throw new Error(`bench mcp: ${mode} call failed: ${textOf(r)}`);
    };
    const call: Record<Mode, () => Promise<void>> = {
      direct,
      'in-memory': viaClient(memClient, 'in-memory'),
      stdio: viaClient(stdio.client, 'stdio'),
      http: viaClient(httpClient, 'http'),
    };
    for (const m of MODES) for (let i = 0; i < 5; i++) await call[m]();

    const ms: Record<Mode, number[]> = { direct: [], 'in-memory': [], stdio: [], http: [] };
    const roundRatio: Record<Mode, number[]> = { direct: [], 'in-memory': [], stdio: [], http: [] };
    for (let r = 0; r < rounds; r++) {
      const per: Record<Mode, number[]> = { direct: [], 'in-memory': [], stdio: [], http: [] };
      // Round-robin call by call, rotating who goes first, so every mode sees the same load.
      for (let i = 0; i < perRound; i++) {
        for (let k = 0; k < MODES.length; k++) {
          const m = MODES[(i + r + k) % MODES.length]!;
          const s = process.hrtime.bigint();
          await call[m]();
          per[m].push(since(s));
        }
      }
      for (const m of MODES) {
        ms[m].push(...per[m]);
        roundRatio[m].push(median(per[m]) / median(per.direct));
      }
    }
    const expectedHits = (rounds * perRound + 5) * MODES.length;
    if (hits < expectedHits) throw new Error(`bench mcp: the local service saw ${hits} requests, expected ≥ ${expectedHits}`);

    // Cold start, next to a bare `node -e 0` start in the same run (the floor on this machine now).
    // Also a start without the server's code cache (the first one after a build), interleaved.
    const coldWall: number[] = [];
    const coldCpu: number[] = [];
    const uncachedWall: number[] = [];
    const uncachedCpu: number[] = [];
    const nodeWall: number[] = [];
    let tools = 0;
    await coldStart(root); // page cache warm; writes the code cache if there was none
    for (let i = 0; i < colds; i++) {
      const c = await coldStart(root);
      coldWall.push(c.wallMs);
      coldCpu.push(c.cpuMs);
      tools = c.tools;
      const u = await coldStart(root, true);
      uncachedWall.push(u.wallMs);
      uncachedCpu.push(u.cpuMs);
      const n = await runProcess({ file: process.execPath, args: ['-e', '0'], env: baseEnv(), timeoutMs: 30_000, outputCap: 1024 });
      if (n.exitCode !== 0) throw new Error(`bench mcp: node -e 0 exited ${n.exitCode}`);
      nodeWall.push(n.durationMs);
    }

    const sm = Object.fromEntries(MODES.map((m) => [m, summarize(ms[m])])) as Record<Mode, ReturnType<typeof summarize>>;
    const ratio = (m: Mode): number => sm[m].median / sm.direct.median;
    const metrics: BenchMetric[] = [];
    for (const m of MODES) {
      if (m !== 'direct') {
        metrics.push({ name: `${m} / direct (medians)`, value: ratio(m), unit: 'x', detail: `median of per-round ratios ${median(roundRatio[m]).toFixed(2)}×` });
      }
    }
    for (const m of MODES) {
      metrics.push({ name: `${m}: calls/s`, value: 1000 / sm[m].median, unit: '/s', detail: `median ${sm[m].median.toFixed(2)} ms, p95 ${sm[m].p95.toFixed(2)} ms, n=${sm[m].n}` });
    }
    const cw = summarize(coldWall);
    const cc = median(coldCpu);
    const nw = median(nodeWall);
    metrics.push(
      { name: 'stdio cold start (spawn → first tools/list)', value: cw.median, unit: 'ms', detail: `min ${cw.min.toFixed(0)} ms, p95 ${cw.p95.toFixed(0)} ms, n=${cw.n}, ${tools} tools listed` },
      { name: 'stdio cold start, server CPU time', value: cc, unit: 'ms', detail: 'user+sys of the server process at the answer (load-independent proxy)' },
      { name: 'stdio cold start without the code cache', value: median(uncachedWall), unit: 'ms', detail: `server CPU ${median(uncachedCpu).toFixed(0)} ms; NODE_DISABLE_COMPILE_CACHE=1, as on the first start after a build` },
      { name: 'bare `node -e 0` start, same run', value: nw, unit: 'ms' },
      { name: 'cold start / bare node start', value: cw.median / nw, unit: 'x' },
    );
    const inMem = ratio('in-memory');
    return {
      bench: 'mcp',
      metrics,
      goals: [
        { name: `in-memory ≤ ${IN_MEMORY_GOAL}× direct runLine`, target: `≤ ${IN_MEMORY_GOAL.toFixed(2)}×`, actual: `${inMem.toFixed(2)}×`, met: inMem <= IN_MEMORY_GOAL },
        { name: 'stdio cold start (wall)', target: `≤ ${COLD_START_GOAL_MS} ms`, actual: `${cw.median.toFixed(0)} ms`, met: cw.median <= COLD_START_GOAL_MS },
      ],
      notes: [
        `tool call: \`http\` tool, args ${JSON.stringify(['-fsS', '<local>/health'])} as ${AGENT} (the direct mode runs the same line through runLine); ${rounds} rounds × ${perRound} calls per mode, round-robin.`,
        `every mode writes one audit row per call with synchronous=FULL on ${base}; the stdio server is a separate process on the same database.`,
        `cold start: \`node bin/opscrew.js mcp --workspace DIR\` (the bundled fast path, with its code cache unless said) through the SDK's StdioClientTransport (initialize + tools/list); wall time depends on load, CPU time much less. loadavg at end: ${loadavg()}`,
      ],
    };
  } finally {
    for (const c of closers.reverse()) await c().catch(() => undefined);
    await http?.close().catch(() => undefined);
    await new Promise<void>((r) => svc.close(() => r()));
    store.close();
    rmSync(root, { recursive: true, force: true });
  }
}
