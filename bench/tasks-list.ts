// Benchmark: `opscrew tasks list --json` over 10,000 tasks, whole process, warm store.
// Goal (issue 2): ≤ 0.4 s wall and ≤ 100 MiB peak RSS. The first run fills the store (every
// file parsed once); the timed runs find nothing changed and list from SQLite.
// Baseline, timed in alternation with the list runs so load drift hits both: a bare Node
// process that only stats every task file, the floor of any listing that notices edits.
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { baseEnv, runProcess } from '../tools/exec.js';
import { fmtMs, median, type BenchReport } from './stats.js';

const GOAL_WALL_MS = 400;
const GOAL_RSS_MIB = 100;
const cpus = availableParallelism();

const PRIORITIES = ['critical', 'high', 'medium', 'low'] as const;

/** A realistic ~0.8 KB task file. */
export function generatedTask(n: number): string {
  const id = `TASK-${String(n).padStart(5, '0')}`;
  const prio = PRIORITIES[n % PRIORITIES.length] ?? 'medium';
  const dep = n > 10 && n % 7 === 0 ? `depends_on: [TASK-${String(n - 5).padStart(5, '0')}]\n` : '';
  return `---
id: ${id}
title: Restart web service ${n} and prove it answers
priority: ${prio}
tags: [compose, web, batch-${n % 20}]
${dep}resources: [compose:shop-${n % 50}]
---
# Restart web service ${n} and prove it answers

## Context
Generated for the tasks-list benchmark. The service answers 502 after a config change.

## Preflight
\`\`\`sh
docker compose -p shop-${n % 50} ps
\`\`\`

## Steps
\`\`\`sh
docker compose -p shop-${n % 50} logs --tail 50 web
docker compose -p shop-${n % 50} restart web
\`\`\`

## Acceptance Criteria
- [ ] The web container is running
  \`\`\`sh
  docker compose -p shop-${n % 50} ps --services --filter status=running
  # expect: web
  \`\`\`
- [ ] The home page answers 200
  \`\`\`sh
  curl -fsS -o /dev/null -w "%{http_code}" http://127.0.0.1:18080/
  # expect: 200
  \`\`\`
- [ ] N/A - TLS is terminated elsewhere
`;
}

function repoRoot(): string {
  // dist/bench/tasks-list.js or bench/tasks-list.ts → the folder holding bin/opscrew.js
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    if (existsSync(join(dir, 'bin', 'opscrew.js'))) return dir;
    dir = dirname(dir);
  }
  throw new Error('cannot find bin/opscrew.js above the benchmark');
}

export function makeWorkspace(root: string, count: number): void {
  for (const f of ['backlog', 'active', 'completed']) mkdirSync(join(root, 'tasks', f), { recursive: true });
  mkdirSync(join(root, 'retrospectives'), { recursive: true });
  for (let n = 1; n <= count; n++) {
    // A quarter completed, the rest in the backlog: what a queue in use looks like.
    const folder = n % 4 === 0 ? 'completed' : 'backlog';
    writeFileSync(join(root, 'tasks', folder, `task-${n}.md`), generatedTask(n));
  }
}


export async function benchTasksList(options: { tasks?: number; runs?: number } = {}): Promise<BenchReport> {
  const count = options.tasks ?? 10_000;
  const runs = options.runs ?? 7;
  const root = repoRoot();
  const bin = resolve(root, 'bin', 'opscrew.js');
  const ws = mkdtempSync(join(tmpdir(), 'opscrew-bench-list-'));
  const env = baseEnv({ OPSCREW_WORKSPACE: ws });
  const run: Runner = async (file, args) => {
    const t0 = performance.now();
    const r = await runProcess({ file, args, env, cwd: ws, timeoutMs: 300_000, outputCap: 64 * 1024 * 1024 });
    const ms = performance.now() - t0;
    if (r.exitCode !== 0) throw new Error(`${file} ${args.join(' ')} exited ${r.exitCode}: ${r.stderr.slice(0, 2000)}`);
    return { ms, r };
  };
  const list = [bin, 'tasks', 'list', '--json'];
  try {
    makeWorkspace(ws, count);
    const first = await run(process.execPath, list);
    const listed = (JSON.parse(first.r.stdout) as { tasks: unknown[] }).tasks.length;
    if (listed !== count) throw new Error(`tasks list returned ${listed} tasks, expected ${count}`);
    await run(process.execPath, list); // warm-up: page cache, nothing left to parse
    const times: number[] = [];
    const floors: number[] = [];
    let outputBytes = 0;
    for (let i = 0; i < runs; i++) {
      const { ms, r } = await run(process.execPath, list);
      times.push(ms);
      outputBytes = Buffer.byteLength(r.stdout);
      const floor = await run(process.execPath, ['-e', STAT_ONLY, ws]);
      if (Number(floor.r.stdout) !== count) throw new Error(`the stat-only baseline saw ${floor.r.stdout.trim()} files, expected ${count}`);
      floors.push(floor.ms);
    }
    const floorMed = median(floors);
    const rss = await peakRss(run, bin, ws);
    const med = median(times);
    const load = loadavg()[0] ?? 0;
    return {
      bench: 'tasks-list',
      metrics: [
        { name: `tasks list --json, ${count} tasks, wall median of ${runs}`, value: med, unit: 'ms', detail: `min ${fmtMs(Math.min(...times))}, max ${fmtMs(Math.max(...times))}` },
        { name: 'baseline: bare node, stat every task file, wall median', value: floorMed, unit: 'ms', detail: `min ${fmtMs(Math.min(...floors))}` },
        { name: 'tasks list / baseline', value: med / floorMed, unit: '×', detail: `list − baseline: ${fmtMs(med - floorMed)}` },
        { name: 'first run (parses every file, fills the store)', value: first.ms, unit: 'ms' },
        ...(rss.cpuMs !== undefined ? [{ name: 'CPU time of one warm run (user+sys)', value: rss.cpuMs, unit: 'ms', detail: 'less sensitive to machine load than wall time' }] : []),
        { name: 'peak RSS of one warm run', value: rss.mib, unit: 'MiB', detail: rss.method },
        { name: 'output size', value: outputBytes / 1024, unit: 'KiB' },
      ],
      goals: [
        { name: 'tasks list wall (10k tasks, warm)', target: `<= ${GOAL_WALL_MS} ms`, actual: fmtMs(med), met: med <= GOAL_WALL_MS },
        { name: 'tasks list peak RSS', target: `<= ${GOAL_RSS_MIB} MiB`, actual: `${rss.mib.toFixed(1)} MiB`, met: rss.mib <= GOAL_RSS_MIB },
      ],
      notes: [`1-minute load average during the run: ${load.toFixed(2)} on ${cpus} CPU(s); wall times on a loaded machine overstate the cost`],
    };
  } finally {
    rmSync(ws, { recursive: true, force: true });
  }
}

/** The baseline's script (argv[1]: the workspace): readdir + stat of every task file, as the scan does. */
const STAT_ONLY = `const { readdirSync, statSync } = require('node:fs');
let n = 0;
for (const f of ['active', 'completed', 'backlog']) {
  const dir = process.argv[1] + '/tasks/' + f + '/';
  for (const name of readdirSync(dir)) if (name.endsWith('.md') && statSync(dir + name).isFile()) n++;
}
process.stdout.write(String(n));`;

type Runner = (file: string, args: string[]) => Promise<{ ms: number; r: { stdout: string; stderr: string } }>;


async function peakRss(run: Runner, bin: string, ws: string): Promise<{ mib: number; method: string; cpuMs?: number }> {
  if (existsSync('/usr/bin/time')) {
    const { r } = await run('/usr/bin/time', ['-v', process.execPath, bin, 'tasks', 'list', '--json']);
    const m = /Maximum resident set size \(kbytes\):\s*(\d+)/.exec(r.stderr);
    const user = /User time \(seconds\):\s*([\d.]+)/.exec(r.stderr);
    const sys = /System time \(seconds\):\s*([\d.]+)/.exec(r.stderr);
    const cpuMs = user && sys ? (Number(user[1]) + Number(sys[1])) * 1000 : undefined;
    if (m) return { mib: Number(m[1]) / 1024, method: '/usr/bin/time -v', ...(cpuMs !== undefined ? { cpuMs } : {}) };
  }
  // Fallback: a preload that reports the child's own peak RSS when it exits.
  const preload = join(ws, 'report-rss.mjs');
  writeFileSync(preload, "process.on('exit', () => process.stderr.write(`maxrss-kib=${process.resourceUsage().maxRSS}\\n`));\n");
  const { r } = await run(process.execPath, ['--import', preload, bin, 'tasks', 'list', '--json']);
  const m = /maxrss-kib=(\d+)/.exec(r.stderr);
  if (!m) throw new Error('the child did not report its peak RSS');
  return { mib: Number(m[1]) / 1024, method: 'process.resourceUsage' };
}
