// Progress output for people (TTY and plain) and the JSON log lines for machines.
import { describe, it, expect, afterAll } from 'vitest';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createJsonLog, createProgressPrinter, logFileName, type CrewEvent } from '../runtime/progress.js';

const temps: string[] = [];
afterAll(() => {
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

const T0 = Date.parse('2026-03-01T23:59:59Z');
const events: CrewEvent[] = [
  { type: 'claimed', ts: T0, taskId: 'TASK-001', runId: 'run-1', specialist: 'devops-specialist', attempt: 1 },
  { type: 'command', ts: T0 + 1500, taskId: 'TASK-001', section: 'steps', command: 'curl -fsS http://127.0.0.1/health' },
  { type: 'command-done', ts: T0 + 1600, taskId: 'TASK-001', exitCode: 7, durationMs: 100, passed: false, reason: 'exit code 7, expected 0' },
  { type: 'awaiting-approval', ts: T0 + 2000, taskId: 'TASK-001', approvalId: 'apr-12345678', command: 'rm -f /srv/x' },
];

describe('progress', () => {
  it('prints task, step and elapsed time; plain lines carry an ISO timestamp, TTY lines do not', () => {
    let tty = '';
    let plain = '';
    const a = createProgressPrinter({ write: (t) => void (tty += t), isTTY: true });
    const b = createProgressPrinter({ write: (t) => void (plain += t), isTTY: false });
    for (const e of events) {
      a(e);
      b(e);
    }
    const ttyLines = tty.trimEnd().split('\n');
    expect(ttyLines[0]).toBe('TASK-001 +0.0s claimed by devops-specialist (attempt 1, run-1)');
    expect(ttyLines[1]).toBe('TASK-001 +1.5s   $ curl -fsS http://127.0.0.1/health');
    expect(ttyLines[2]).toBe('TASK-001 +1.6s   FAILED (exit 7, 100 ms) exit code 7, expected 0');
    expect(ttyLines[3]).toContain('opscrew approve apr-12345678');
    expect(plain.split('\n')[0]).toBe('2026-03-01T23:59:59.000Z TASK-001 +0.0s claimed by devops-specialist (attempt 1, run-1)');
  });

  it('appends one JSON object per line to crew-YYYYMMDD.jsonl (UTC day of the event)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'opscrew-progress-'));
    temps.push(dir);
    const logs = join(dir, 'logs');
    const log = createJsonLog(logs);
    for (const e of events) log(e);
    expect(logFileName(T0)).toBe('crew-20260301.jsonl');
    expect(readdirSync(logs).sort()).toEqual(['crew-20260301.jsonl', 'crew-20260302.jsonl']);
    const day1 = readFileSync(join(logs, 'crew-20260301.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as CrewEvent);
    expect(day1.map((e) => e.type)).toEqual(['claimed']);
    const day2 = readFileSync(join(logs, 'crew-20260302.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as CrewEvent);
    expect(day2.map((e) => e.type)).toEqual(['command', 'command-done', 'awaiting-approval']);
    expect(day2[1]).toEqual(events[2]);
  });
});
