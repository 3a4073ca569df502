// Observing a crew from outside, for the crew bench: its JSON log (`.opscrew/logs/crew-*.jsonl`),
// its memory from /proc, and the pid of a process started through runProcess (which does not
// hand the pid out) found by its command line.
import { closeSync, existsSync, fstatSync, openSync, readdirSync, readFileSync, readSync } from 'node:fs';
import { join } from 'node:path';
import type { CrewEvent } from '../agents/runtime/progress.js';
import { median } from './stats.js';

/** The pid of the live process whose argv contains every one of `parts`, or null. */
export function findPid(parts: readonly string[]): number | null {
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return null;
  }
  for (const name of names) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
    } catch {
      continue; // gone meanwhile
    }
    if (parts.every((p) => argv.includes(p))) return Number(name);
  }
  return null;
}

/** VmRSS and VmHWM (peak RSS) of a live process in MiB; null when it is gone or not Linux. */
export function memOf(pid: number): { rssMiB: number; hwmMiB: number } | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return null;
  }
  const kib = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? Number.NaN);
  return { rssMiB: kib('VmRSS') / 1024, hwmMiB: kib('VmHWM') / 1024 };
}

/** Reads new complete lines from every `crew-*.jsonl` in a logs folder, from where it left off. */
export class LogTail {
  private readonly offsets = new Map<string, number>();
  private readonly rest = new Map<string, string>();
  readonly events: CrewEvent[] = [];
  constructor(private readonly logsDir: string) {}

  /** Appends whatever was written since the last call to `events`; returns the new ones. */
  poll(): CrewEvent[] {
    if (!existsSync(this.logsDir)) return [];
    const fresh: CrewEvent[] = [];
    for (const name of readdirSync(this.logsDir).filter((f) => /^crew-\d{8}\.jsonl$/.test(f)).sort()) {
      const file = join(this.logsDir, name);
      const fd = openSync(file, 'r');
      try {
        const size = fstatSync(fd).size;
        let off = this.offsets.get(file) ?? 0;
        if (size <= off) continue;
        const buf = Buffer.alloc(size - off);
        let got = 0;
        while (got < buf.length) {
          const n = readSync(fd, buf, got, buf.length - got, off + got);
          if (n === 0) break;
          got += n;
        }
        off += got;
        this.offsets.set(file, off);
        const text = (this.rest.get(file) ?? '') + buf.subarray(0, got).toString('utf8');
        const lines = text.split('\n');
        this.rest.set(file, lines.pop() ?? '');
        for (const l of lines) {
          if (l.trim() === '') continue;
          fresh.push(JSON.parse(l) as CrewEvent);
        }
      } finally {
        closeSync(fd);
      }
    }
    this.events.push(...fresh);
    return fresh;
  }
}

/** Every event in a logs folder (a finished run). */
export function readLog(logsDir: string): CrewEvent[] {
  const t = new LogTail(logsDir);
  t.poll();
  return t.events;
}

export interface RunShape {
  /** Most tasks between `claimed` and `finished` at the same moment. */
  maxParallel: number;
  /** Median durationMs of the `command-done` events (the GET through the gate). */
  commandMs: number;
  /** Median claimed → finished per task. */
  claimToFinishMs: number;
  /** Median finished → next claimed (only meaningful at concurrency 1). */
  finishToClaimMs: number;
  /** crew-start → first claimed. */
  startupMs: number;
  /** crew-start → crew-stop. */
  crewMs: number;
}

/** How a finished `--once` run spent its time, from its log (ms resolution per event). */
export function shapeOf(events: readonly CrewEvent[]): RunShape {
  const claimed = new Map<string, number>();
  const spans: Array<[number, number]> = [];
  const cmd: number[] = [];
  let start = Number.NaN;
  let stop = Number.NaN;
  let firstClaim = Number.NaN;
  for (const e of events) {
    // Several crew threads log their own start and stop: the run spans the first start to the last stop.
    if (e.type === 'crew-start') start = Number.isNaN(start) ? e.ts : Math.min(start, e.ts);
    else if (e.type === 'crew-stop') stop = Number.isNaN(stop) ? e.ts : Math.max(stop, e.ts);
    else if (e.type === 'claimed' && e.taskId) {
      claimed.set(e.taskId, e.ts);
      firstClaim = Number.isNaN(firstClaim) ? e.ts : Math.min(firstClaim, e.ts);
    } else if (e.type === 'command-done' && typeof e.durationMs === 'number') cmd.push(e.durationMs);
    else if (e.type === 'finished' && e.taskId) {
      const c = claimed.get(e.taskId);
      if (c !== undefined) spans.push([c, e.ts]);
    }
  }
  const marks = spans.flatMap(([a, b]) => [
    [a, 1],
    [b, -1],
  ]) as Array<[number, number]>;
  marks.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
  let cur = 0;
  let maxParallel = 0;
  for (const [, d] of marks) {
    cur += d;
    maxParallel = Math.max(maxParallel, cur);
  }
  const bySt = [...spans].sort((x, y) => x[0] - y[0]);
  const gaps: number[] = [];
  for (let i = 1; i < bySt.length; i++) gaps.push((bySt[i]?.[0] ?? 0) - (bySt[i - 1]?.[1] ?? 0));
  return {
    maxParallel,
    commandMs: median(cmd),
    claimToFinishMs: median(spans.map(([a, b]) => b - a)),
    finishToClaimMs: median(gaps),
    startupMs: firstClaim - start,
    crewMs: stop - start,
  };
}
