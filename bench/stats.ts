// Small statistics and formatting helpers shared by every bench.

export interface BenchMetric {
  name: string;
  value: number;
  unit: string;
  detail?: string;
}

export interface BenchGoal {
  name: string;
  target: string;
  actual: string;
  met: boolean;
}

export interface BenchReport {
  bench: string;
  metrics: BenchMetric[];
  goals: BenchGoal[];
  notes?: string[];
}

export function sorted(xs: readonly number[]): number[] {
  return [...xs].sort((a, b) => a - b);
}

/** Nearest-rank percentile, p in [0, 100]. NaN for an empty sample. */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = sorted(xs);
  const rank = Math.ceil((p / 100) * s.length);
  return s[Math.min(s.length, Math.max(1, rank)) - 1]!;
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = sorted(xs);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function mean(xs: readonly number[]): number {
  return xs.length === 0 ? Number.NaN : xs.reduce((a, b) => a + b, 0) / xs.length;
}

export interface Summary {
  n: number;
  median: number;
  p95: number;
  p99: number;
  min: number;
  max: number;
}

export function summarize(xs: readonly number[]): Summary {
  const s = sorted(xs);
  return { n: s.length, median: median(s), p95: percentile(s, 95), p99: percentile(s, 99), min: s[0] ?? NaN, max: s[s.length - 1] ?? NaN };
}

/** Milliseconds from a high-resolution start mark. */
export function since(startNs: bigint): number {
  return Number(process.hrtime.bigint() - startNs) / 1e6;
}

export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return '-';
  if (ms < 1) return `${(ms * 1000).toFixed(0)} µs`;
  if (ms < 100) return `${ms.toFixed(2)} ms`;
  return `${ms.toFixed(0)} ms`;
}

export function fmtRate(perSec: number, unit = '/s'): string {
  if (!Number.isFinite(perSec)) return '-';
  if (perSec >= 10_000) return `${(perSec / 1000).toFixed(1)}k${unit}`;
  return `${perSec.toFixed(perSec < 10 ? 2 : 0)}${unit}`;
}

export function fmtValue(m: BenchMetric): string {
  switch (m.unit) {
    case 'ms':
      return fmtMs(m.value);
    case '/s':
      return fmtRate(m.value);
    case 'MB/s':
      return `${m.value.toFixed(1)} MB/s`;
    case 'MiB':
      return `${m.value.toFixed(1)} MiB`;
    case 'x':
      return `${m.value.toFixed(2)}×`;
    default:
      return `${Number.isInteger(m.value) ? m.value : m.value.toFixed(2)} ${m.unit}`.trim();
  }
}

/** A plain-text table with left-aligned columns. */
export function table(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd()).join('\n');
}
