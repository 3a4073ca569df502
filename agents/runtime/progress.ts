// What the crew tells people and machines while it works: one structured JSON line per event
// appended to `.opscrew/logs/crew-YYYYMMDD.jsonl` (always), and short progress lines on stderr
// (task, step, elapsed) — compact on a TTY, timestamped plain lines otherwise.
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export type CrewEventType =
  | 'crew-start'
  | 'crew-stop'
  | 'reconciled'
  | 'routed'
  | 'route-failed'
  | 'claimed'
  | 'section'
  | 'command'
  | 'command-done'
  | 'awaiting-approval'
  | 'approval-decided'
  | 'heartbeat-lost'
  | 'finished'
  | 'retry-scheduled'
  | 'released'
  | 'error';

export interface CrewEvent {
  type: CrewEventType;
  /** Epoch ms; filled in by the crew's clock. */
  ts: number;
  taskId?: string;
  runId?: string;
  specialist?: string;
  attempt?: number;
  section?: string;
  line?: number;
  command?: string;
  exitCode?: number | null;
  durationMs?: number;
  passed?: boolean;
  approvalId?: string;
  outcome?: string;
  reason?: string;
  /** Anything else worth logging (counts, retry delay...). */
  data?: Record<string, unknown>;
}

/** `crew-YYYYMMDD.jsonl` for the UTC day of `ms`. */
export function logFileName(ms: number): string {
  const d = new Date(ms);
  const p = (n: number): string => String(n).padStart(2, '0');
  return `crew-${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}.jsonl`;
}

/** A JSON-lines event log; `close` releases its file. */
export type JsonLog = ((e: CrewEvent) => void) & { close(): void };

/**
 * Appends events as JSON lines, one file per UTC day, through one open descriptor (O_APPEND: lines
 * from several crews on the workspace never interleave mid-line). Logging never stops the crew: a
 * failed write is reported once.
 */
export function createJsonLog(logsDir: string, onError: (e: unknown) => void = () => {}): JsonLog {
  let made = false;
  let warned = false;
  let fd: number | null = null;
  let name = '';
  const close = (): void => {
    if (fd !== null) closeSync(fd);
    fd = null;
  };
  const log = (e: CrewEvent): void => {
    try {
      if (!made) {
        mkdirSync(logsDir, { recursive: true });
        made = true;
      }
      const want = logFileName(e.ts);
      if (fd === null || want !== name) {
        close();
        fd = openSync(join(logsDir, want), 'a');
        name = want;
      }
      writeSync(fd, `${JSON.stringify(e)}\n`);
    } catch (err) {
      if (!warned) onError(err);
      warned = true;
    }
  };
  return Object.assign(log, { close });
}

export interface ProgressOptions {
  write: (text: string) => void;
  isTTY: boolean;
}

function elapsed(ms: number): string {
  return ms < 60_000 ? `${(ms / 1000).toFixed(1)}s` : `${Math.floor(ms / 60_000)}m${String(Math.floor((ms % 60_000) / 1000)).padStart(2, '0')}s`;
}

function clip(s: string, n: number): string {
  const t = s.replace(/\s+/g, ' ').trim();
  return t.length > n ? `${t.slice(0, n - 1)}…` : t;
}

/** A progress printer for people: which task, which step, how long it has run. */
export function createProgressPrinter(opts: ProgressOptions): (e: CrewEvent) => void {
  const started = new Map<string, number>();
  return (e) => {
    const id = e.taskId ?? '';
    if (e.type === 'claimed' && id) started.set(id, e.ts);
    const t0 = started.get(id);
    const since = t0 !== undefined ? ` +${elapsed(e.ts - t0)}` : '';
    const head = opts.isTTY ? `${id || 'crew'}${since}` : `${new Date(e.ts).toISOString()} ${id || 'crew'}${since}`;
    let text: string | null = null;
    switch (e.type) {
      case 'crew-start':
        text = `started (${String(e.data?.['concurrency'] ?? '?')} workers, ${String(e.data?.['brain'] ?? 'runbook')} brain)`;
        break;
      case 'claimed':
        text = `claimed by ${e.specialist ?? '?'} (attempt ${e.attempt ?? 1}, ${e.runId ?? ''})`;
        break;
      case 'route-failed':
        text = `not routed: ${clip(e.reason ?? '', 200)}`;
        break;
      case 'section':
        text = `▸ ${e.section ?? ''}`;
        break;
      case 'command':
        text = `  $ ${clip(e.command ?? '', 120)}`;
        break;
      case 'command-done':
        text = `  ${e.passed ? 'ok' : 'FAILED'} (${e.exitCode === null || e.exitCode === undefined ? 'no exit' : `exit ${e.exitCode}`}, ${Math.round(e.durationMs ?? 0)} ms)${e.passed ? '' : ` ${clip(e.reason ?? '', 160)}`}`;
        break;
      case 'awaiting-approval':
        text = `waiting for approval ${e.approvalId ?? ''}: ${clip(e.command ?? '', 120)}  (opscrew approve ${e.approvalId ?? 'ID'} | opscrew deny ${e.approvalId ?? 'ID'})`;
        break;
      case 'approval-decided':
        text = `approval ${e.approvalId ?? ''}: ${e.outcome ?? ''}`;
        break;
      case 'finished':
        text = `${(e.outcome ?? '').toUpperCase()}${e.reason ? `: ${clip(e.reason, 240)}` : ''}`;
        break;
      case 'retry-scheduled':
        text = `retry in ${elapsed(Number(e.data?.['delayMs'] ?? 0))}: ${clip(e.reason ?? '', 200)}`;
        break;
      case 'released':
        text = `released to backlog: ${clip(e.reason ?? '', 200)}`;
        break;
      case 'heartbeat-lost':
        text = `lease lost, stopping: ${clip(e.reason ?? '', 200)}`;
        break;
      case 'error':
        text = `error: ${clip(e.reason ?? '', 240)}`;
        break;
      case 'crew-stop':
        text = `stopped: ${String(e.data?.['completed'] ?? 0)} completed, ${String(e.data?.['blocked'] ?? 0)} blocked, ${String(e.data?.['failed'] ?? 0)} failed`;
        break;
      default:
        text = null;
    }
    if (text !== null) opts.write(`${head} ${text}\n`);
  };
}
