// The CLI called in-process through `main(argv, io)`: fast checks of wiring, parsing helpers
// and exit-code mapping. The real-process suite is cli.test.ts.
import { describe, it, expect, afterAll } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../cli/main.js';
import { captureIO, type CapturedIO } from './capture-io.js';
import { renderTable } from '../cli/output.js';
import { parseSince } from '../cli/audit-actions.js';
import { titleSlug as slugify } from '../../mcp-server/core/queue-rows.js';
import { EXIT } from '../cli/exit-codes.js';

const temps: string[] = [];
afterAll(() => {
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

function io(env: Record<string, string> = {}, cwd = tmpdir()): CapturedIO {
  return captureIO({ env, cwd, now: () => Date.parse('2026-03-01T12:00:00Z') });
}

describe('main in-process', () => {
  it('prints help with exit codes and returns 0 without exiting the process', async () => {
    const o = io();
    expect(await main(['--help'], o)).toBe(0);
    expect(o.stdout()).toContain('Exit codes:');
    expect(o.stdout()).toContain('check-command');
  });

  it('maps usage errors to 2 and a missing argument too', async () => {
    const a = io();
    expect(await main(['no-such-command'], a)).toBe(EXIT.USAGE);
    expect(a.stderr()).toContain("unknown command 'no-such-command'");
    expect(await main(['check-command'], io())).toBe(EXIT.USAGE);
    expect(await main(['tasks', 'new'], io())).toBe(EXIT.USAGE); // --title is required
  });

  it('tasks lint checks file blocks against the files roots like any command line', async () => {
    const ws = mkdtempSync(join(tmpdir(), 'opscrew-inproc-'));
    temps.push(ws);
    expect(await main(['init', ws], io())).toBe(0);
    const body = ['---', 'id: TASK-900', '---', '# Write a unit', '', '## Steps', '```ini file=/etc/opscrew-evil.ini', '[x]', '```', '', '```ini file=/srv/app/ok.ini', '[y]', '```', '', '## Acceptance Criteria', '- [ ] N/A - example', ''].join('\n');
    const file = join(ws, 'tasks', 'backlog', 'fb.md');
    writeFileSync(file, body);
    const o = io();
    expect(await main(['tasks', 'lint', '-w', ws], o)).toBe(1);
    expect(o.stdout()).toMatch(/fb\.md:7: steps: the policy refuses `write \/etc\/opscrew-evil\.ini sha256=[0-9a-f]{64}` \(scope\.path\)/);
    expect(o.stdout()).not.toContain('ok.ini');
    expect(readFileSync(file, 'utf8')).toBe(body);
  });

  it('init then tasks new/list work against OPSCREW_WORKSPACE', async () => {
    const ws = mkdtempSync(join(tmpdir(), 'opscrew-inproc-'));
    temps.push(ws);
    const env = { OPSCREW_WORKSPACE: ws };
    expect(await main(['init'], io(env))).toBe(0);
    expect(existsSync(join(ws, 'tasks', 'backlog'))).toBe(true);
    const n = io(env);
    expect(await main(['tasks', 'new', '--title', 'Rotate the webhook secret!', '--json'], n)).toBe(0);
    const { id, file } = JSON.parse(n.stdout()) as { id: string; file: string };
    expect(file).toBe(`tasks/backlog/${id}-rotate-the-webhook-secret.md`);
    expect(readFileSync(join(ws, file), 'utf8')).toContain(`id: ${id}`);
    const l = io(env);
    expect(await main(['tasks', 'list', '--json'], l)).toBe(0);
    expect((JSON.parse(l.stdout()) as { tasks: Array<{ id: string }> }).tasks.map((t) => t.id)).toEqual([id]);
  });

  it('a broken config is exit 6 with the located problem', async () => {
    const ws = mkdtempSync(join(tmpdir(), 'opscrew-inproc-'));
    temps.push(ws);
    expect(await main(['init', ws], io())).toBe(0);
    writeFileSync(join(ws, 'opscrew.config.yaml'), 'mode: yolo\n');
    const o = io();
    expect(await main(['--workspace', ws, 'check-command', 'curl -fsS http://127.0.0.1:1/'], o)).toBe(EXIT.CONFIG);
    expect(o.stderr()).toMatch(/opscrew\.config\.yaml:1:/);
  });
});

describe('helpers', () => {
  it('parseSince takes durations back from now and ISO dates, and refuses the rest', () => {
    const now = Date.parse('2026-03-01T12:00:00Z');
    expect(parseSince('2h', now)).toBe(now - 2 * 3_600_000);
    expect(parseSince('7d', now)).toBe(now - 7 * 86_400_000);
    expect(parseSince('2026-02-01', now)).toBe(Date.parse('2026-02-01T00:00:00Z'));
    expect(parseSince('2026-02-01T08:30:00Z', now)).toBe(Date.parse('2026-02-01T08:30:00Z'));
    expect(() => parseSince('last tuesday', now)).toThrow(/neither a duration/);
    expect(() => parseSince('12', now)).toThrow();
  });

  it('slugify makes short, safe file names', () => {
    expect(slugify('Scale the orders API to 3 replicas')).toBe('scale-the-orders-api-to-3-replicas');
    expect(slugify('../../etc/passwd')).toBe('etc-passwd');
    expect(slugify('!!!')).toBe('task');
    expect(slugify('x'.repeat(200)).length).toBeLessThanOrEqual(48);
  });

  it('renderTable aligns columns, flattens newlines and cuts long cells', () => {
    const rows = renderTable(
      [
        { a: 'TASK-1', b: 'line one\nline two' },
        { a: 'TASK-10000', b: 'y'.repeat(30) },
      ],
      [
        { header: 'ID', get: (r) => r.a },
        { header: 'TITLE', get: (r) => r.b, max: 10 },
      ],
    );
    expect(rows[0]).toBe('ID          TITLE');
    expect(rows[1]).toBe('TASK-1      line one …');
    expect(rows[2]).toBe(`TASK-10000  ${'y'.repeat(9)}…`);
  });
});
