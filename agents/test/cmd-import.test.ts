// `opscrew import` through the real CLI entry, in-process: dry run, JSON, exit codes, and the
// imported tasks showing up in the queue.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { main } from '../cli/main.js';
import { captureIO, type CapturedIO } from './capture-io.js';
import { EXIT } from '../cli/exit-codes.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const EXAMPLE = join(ROOT, 'examples', 'plans', 'observability-rollout.md');

const temps: string[] = [];
afterAll(() => {
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

function io(env: Record<string, string>, cwd: string): CapturedIO {
  return captureIO({ env, cwd, now: () => Date.parse('2026-03-01T12:00:00Z') });
}

async function workspace(): Promise<{ ws: string; env: Record<string, string> }> {
  const ws = mkdtempSync(join(tmpdir(), 'opscrew-import-'));
  temps.push(ws);
  const env = { OPSCREW_WORKSPACE: ws };
  expect(await main(['init'], io(env, ws))).toBe(EXIT.OK);
  return { ws, env };
}

interface JsonResult {
  ok: boolean;
  dryRun: boolean;
  plan: { file: string; title: string };
  created: Array<{ id: string; file: string; priority: string; dependsOn: string[]; criteria: { verify: number; manual: number } }>;
  warnings: Array<{ line: number; message: string }>;
}

describe('opscrew import', () => {
  it('--dry-run prints ids, priorities, counts and warnings, and writes nothing', async () => {
    const { ws, env } = await workspace();
    const before = readdirSync(join(ws, 'tasks', 'backlog')).sort();
    const o = io(env, ROOT);
    expect(await main(['import', 'examples/plans/observability-rollout.md', '--dry-run'], o)).toBe(EXIT.OK);
    const out = o.stdout();
    expect(out).toContain('would create 3 task(s); dry run, nothing written');
    expect(out).toMatch(/TASK-\d{3}\s+critical\s+1h\s+1\s+2 \(1 verify, 1 manual\)\s+0\s+-\s+Alert rules in Prometheus/);
    expect(out).toMatch(/high\s+2h\s+0\s+1 \(1 verify\)/);
    expect(out).toMatch(/warning: examples\/plans\/observability-rollout\.md:\d+: Acceptance Criteria: manual criterion "Prometheus is healthy"/);
    expect(readdirSync(join(ws, 'tasks', 'backlog')).sort()).toEqual(before);
  });

  it('--json creates the tasks, and the queue lists them', async () => {
    const { ws, env } = await workspace();
    const o = io(env, ws);
    expect(await main(['import', EXAMPLE, '--json'], o)).toBe(EXIT.OK);
    const r = JSON.parse(o.stdout()) as JsonResult;
    expect(r.ok).toBe(true);
    expect(r.dryRun).toBe(false);
    expect(r.created.map((t) => t.priority)).toEqual(['critical', 'high', 'medium']);
    const backlog = readdirSync(join(ws, 'tasks', 'backlog'));
    for (const t of r.created) expect(backlog).toContain(t.file.replace('tasks/backlog/', ''));
    expect(r.warnings.length).toBeGreaterThanOrEqual(3);

    const l = io(env, ws);
    expect(await main(['tasks', 'list', '--json'], l)).toBe(EXIT.OK);
    const listed = (JSON.parse(l.stdout()) as { tasks: Array<{ id: string; priority: string }>; invalid: unknown[] }).tasks;
    for (const t of r.created) expect(listed).toContainEqual(expect.objectContaining({ id: t.id, priority: t.priority }));
    expect((JSON.parse(l.stdout()) as { invalid: unknown[] }).invalid).toEqual([]);

    // A second import gets fresh ids after the first one's.
    const again = io(env, ws);
    expect(await main(['import', EXAMPLE, '--json'], again)).toBe(EXIT.OK);
    const ids2 = (JSON.parse(again.stdout()) as JsonResult).created.map((t) => t.id);
    const max1 = Math.max(...r.created.map((t) => Number(t.id.slice(5))));
    expect(ids2.every((id) => Number(id.slice(5)) > max1)).toBe(true);
  });

  it('exits 1 when the plan has no task sections, naming the headings it looked for', async () => {
    const { ws, env } = await workspace();
    const notes = join(ws, 'notes.md');
    writeFileSync(notes, '# Notes\n\nSome thoughts, no work.\n');
    const o = io(env, ws);
    expect(await main(['import', notes], o)).toBe(EXIT.FAILED);
    expect(o.stderr()).toContain('found no task sections');
    expect(o.stderr()).toContain('Milestone 1');
  });

  it('exits 1 for a missing plan and 2 without an argument', async () => {
    const { ws, env } = await workspace();
    const o = io(env, ws);
    expect(await main(['import', 'missing.md'], o)).toBe(EXIT.FAILED);
    expect(o.stderr()).toContain('missing.md: no such file');
    expect(await main(['import'], io(env, ws))).toBe(EXIT.USAGE);
  });

  it('refuses a real import outside a workspace (exit 6) but allows a dry run there', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'opscrew-import-nows-'));
    temps.push(dir);
    const env = { OPSCREW_WORKSPACE: dir };
    expect(await main(['import', EXAMPLE], io(env, dir))).toBe(EXIT.CONFIG);
    const o = io(env, dir);
    expect(await main(['import', EXAMPLE, '--dry-run'], o)).toBe(EXIT.OK);
    expect(o.stdout()).toContain('TASK-001');
    expect(readdirSync(dir)).toEqual([]);
  });
});
