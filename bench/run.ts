// `npm run bench`: runs every bench it knows, prints one table, writes JSON to bench/results/.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { benchQueue } from './queue.js';
import { benchTasksList } from './tasks-list.js';
import { benchKnowledge } from './knowledge.js';
import { benchGate } from './gate.js';
import { benchMcp } from './mcp.js';
import { benchCrew } from './crew.js';
import { fmtValue, table, type BenchReport } from './stats.js';
import { baseEnv, runProcess } from '../tools/exec.js';

const BENCHES: ReadonlyArray<{ name: string; run: () => Promise<BenchReport> }> = [
  { name: 'queue', run: () => benchQueue() },
  { name: 'tasks-list', run: () => benchTasksList() },
  { name: 'knowledge', run: () => benchKnowledge() },
  { name: 'gate', run: () => benchGate() },
  { name: 'mcp', run: () => benchMcp() },
  { name: 'crew', run: () => benchCrew() },
];

/**
 * Lets the disk settle before a bench: the one before may leave megabytes of dirty pages (the
 * queue bench writes and deletes 10,000 files) whose writeback would slow the next bench's fsyncs.
 */
async function settleDisk(): Promise<void> {
  await runProcess({ file: 'sync', args: [], env: baseEnv(), timeoutMs: 120_000, outputCap: 1 << 16 });
  await new Promise((r) => setTimeout(r, 2000));
}

export async function runBenches(only?: readonly string[]): Promise<BenchReport[]> {
  const reports: BenchReport[] = [];
  for (const b of BENCHES) {
    if (only && only.length > 0 && !only.includes(b.name)) continue;
    await settleDisk();
    process.stderr.write(`bench ${b.name}...\n`);
    reports.push(await b.run());
  }
  return reports;
}

export function renderReports(reports: readonly BenchReport[]): string {
  const rows: string[][] = [['bench', 'metric', 'value', 'detail']];
  for (const r of reports) for (const m of r.metrics) rows.push([r.bench, m.name, fmtValue(m), m.detail ?? '']);
  const goals: string[][] = [['bench', 'goal', 'target', 'actual', 'met']];
  for (const r of reports) for (const g of r.goals) goals.push([r.bench, g.name, g.target, g.actual, g.met ? 'yes' : 'NO']);
  const notes = reports.flatMap((r) => (r.notes ?? []).map((n) => `${r.bench}: ${n}`));
  return `${table(rows)}\n\n${table(goals)}${notes.length ? `\n\n${notes.join('\n')}` : ''}\n`;
}

async function main(): Promise<void> {
  // `--quick`: the crew bench's short mode (same as BENCH_QUICK=1); other args name benches.
  const args = process.argv.slice(2);
  if (args.includes('--quick')) process.env['BENCH_QUICK'] = '1';
  const reports = await runBenches(args.filter((a) => !a.startsWith('--')));
  process.stdout.write(renderReports(reports));
  const dir = resolve(import.meta.dirname, '..', '..', 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify({ node: process.version, platform: process.platform, at: new Date().toISOString(), reports }, null, 2)}\n`);
  process.stdout.write(`results: ${file}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`bench: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exitCode = 1;
});
