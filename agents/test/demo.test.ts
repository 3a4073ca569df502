// `opscrew demo` end to end: the real CLI process (built dist/) against its own local demo app,
// then in-process runs to prove the app is stopped when the demo returns and that the demo fails
// loudly when an example task does not end as expected.
import { describe, it, expect, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { runDemo, type DemoReport } from '../cli/demo-actions.js';
import { EXIT } from '../cli/exit-codes.js';
import { captureIO, type CapturedIO } from './capture-io.js';
import { startDemoTarget } from '../runtime/demo-target.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const BIN = join(ROOT, 'bin', 'opscrew.js');

const temps: string[] = [];
function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), `opscrew-demo-test-${prefix}-`));
  temps.push(d);
  return d;
}
afterAll(() => {
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

function io(): CapturedIO {
  return captureIO({ env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, cwd: tmpdir() });
}

/** True when something accepts TCP connections on the port. */
function listening(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      res(true);
    });
    s.once('error', () => res(false));
  });
}

interface CrewLogLine {
  type: string;
  ts: number;
  taskId?: string;
  outcome?: string;
  section?: string;
  passed?: boolean;
  attempt?: number;
}

describe('opscrew demo (the real CLI process)', () => {
  it('completes one task with evidence, refuses one, rolls one back and blocks it, runs one after its dependency — and exits 0', async () => {
    const dir = join(tempDir('cli'), 'ws');
    const t0 = Date.now();
    const r = spawnSync(process.execPath, [BIN, 'demo', '--json', '--dir', dir], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', LANG: 'C.UTF-8' },
      encoding: 'utf8',
      timeout: 60_000,
    });
    const wall = Date.now() - t0;
    expect(r.status, r.stderr).toBe(0);
    expect(wall).toBeLessThan(20_000);
    const d = JSON.parse(r.stdout) as DemoReport;
    expect(d.ok).toBe(true);
    expect(d.problems).toEqual([]);
    expect(d.workspace).toBe(dir);
    // Progress went to stderr while the crew worked.
    expect(r.stderr).toMatch(/TASK-001 .*claimed by devops-specialist/);
    expect(r.stderr).toMatch(/TASK-004 .*retry in/);

    const byId = new Map(d.tasks.map((t) => [t.id, t] as const));
    const t1 = byId.get('TASK-001');
    const t2 = byId.get('TASK-002');
    const t3 = byId.get('TASK-003');
    const t4 = byId.get('TASK-004');

    // (1) completed with evidence: the file is in completed/, criteria ticked, evidence quotes the app.
    expect(t1).toMatchObject({ outcome: 'completed', state: 'completed', attempts: 1, ok: true });
    const done = readFileSync(join(dir, 'tasks', 'completed', '01-deploy-1.1.0.md'), 'utf8');
    expect(done).toMatch(/^## Verification Evidence$/m);
    expect(done).toMatch(/- \[x\] The app reports version 1\.1\.0/);
    expect(done).toContain('{"version":"1.1.0"}');
    expect(done).toContain('"status":"healthy"');

    // (2) refused by policy, the reason names the rule, nothing ran after it, the hook never got a POST.
    expect(t2).toMatchObject({ outcome: 'refused', state: 'blocked', attempts: 1, specialist: 'devops-specialist' });
    expect(t2?.reason).toMatch(/refused by policy \(scope\.class\): devops-specialist may use http only up to read/);
    const hook = readFileSync(join(dir, 'tasks', 'backlog', '02-deploy-hook.md'), 'utf8');
    expect(hook).toMatch(/^status: blocked$/m);
    expect(hook).toMatch(/^blocked_reason: .*scope\.class/m);
    expect(d.service.requests.filter((q) => q.method === 'POST')).toEqual([]);

    // (3) failed verification twice, rolled back each time, blocked; the app serves the old release again.
    expect(t4).toMatchObject({ outcome: 'failed', state: 'blocked', attempts: 2 });
    expect(t4?.reason).toMatch(/^failed after 2 of 2 attempts: verification failed \(1 of 2 criteria met\): "The app is healthy on the new release"/);
    expect(t4?.reason).toContain('db_pool_size is 0');
    expect(t4?.reason).toMatch(/Rollback ran 2 command\(s\), all passed/);
    expect(t4?.rollback).toEqual({ ran: 4, passed: 4 });
    expect(d.service.finalVersion).toBe('1.1.0');
    const degraded = d.service.requests.filter((q) => q.path === '/health' && q.status === 503);
    expect(degraded).toHaveLength(2);
    expect(readFileSync(join(dir, 'srv', 'demo-app', 'current.json'), 'utf8')).toContain('"1.1.0"');

    // (4) waited for its dependency, then ran: from the crew's own JSON log, not from the report.
    expect(t3).toMatchObject({ outcome: 'completed', state: 'completed', waitedFor: ['TASK-001'], specialist: 'observability-specialist' });
    const logs = readdirSync(join(dir, '.opscrew', 'logs')).filter((n) => n.endsWith('.jsonl'));
    const events = logs.flatMap((n) =>
      readFileSync(join(dir, '.opscrew', 'logs', n), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as CrewLogLine),
    );
    const t1Done = events.find((e) => e.taskId === 'TASK-001' && e.type === 'finished' && e.outcome === 'completed');
    const t3Claim = events.find((e) => e.taskId === 'TASK-003' && e.type === 'claimed');
    const t3Done = events.find((e) => e.taskId === 'TASK-003' && e.type === 'finished');
    const t4Claim = events.find((e) => e.taskId === 'TASK-004' && e.type === 'claimed');
    expect(t1Done && t3Claim && t3Done && t4Claim).toBeTruthy();
    expect(events.indexOf(t3Claim!)).toBeGreaterThan(events.indexOf(t1Done!));
    expect(events.indexOf(t4Claim!)).toBeGreaterThan(events.indexOf(t3Done!));
    expect(events.filter((e) => e.taskId === 'TASK-004' && e.type === 'section' && e.section === 'rollback')).toHaveLength(2);

    // One retrospective per run (TASK-004 ran twice), and the app is gone.
    expect(d.retrospectives.files).toHaveLength(5);
    for (const f of d.retrospectives.files) expect(existsSync(join(dir, f))).toBe(true);
    const retro4 = readdirSync(join(dir, 'retrospectives')).filter((n) => n.includes('TASK-004'));
    expect(retro4).toHaveLength(2);
    for (const n of retro4) {
      const text = readFileSync(join(dir, 'retrospectives', n), 'utf8');
      // The routed specialist is on the run, and the failed check is listed as a failure.
      expect(text).toMatch(/- Run: run-\S+ \(attempt [12], agent devops-specialist\)/);
      expect(text).toMatch(/### Failures\n\n- acceptance criterion failed: The app is healthy on the new release/);
    }
    expect(d.service.stopped).toBe(true);
    expect(await listening(Number(new URL(d.url).port))).toBe(false);
    // Nothing outside the throwaway workspace changed in the checkout.
    expect(readdirSync(join(ROOT, 'examples', 'demo', 'srv', 'demo-app')).sort()).toEqual(['current.json', 'releases']);
  });
});

describe('opscrew demo (in-process)', () => {
  it('prints the summary table and where to look, and has stopped its app when it returns', async () => {
    const o = io();
    const dir = join(tempDir('inproc'), 'ws');
    expect(await runDemo(o, { dir })).toBe(EXIT.OK);
    const out = o.stdout();
    expect(out).toMatch(/TASK-003\s+medium\s+waits for TASK-001/);
    expect(out).toMatch(/TASK\s+SPECIALIST\s+OUTCOME\s+ATTEMPTS\s+AS EXPECTED\s+REASON/);
    expect(out).toMatch(/TASK-002\s+devops-specialist\s+refused → blocked\s+1\s+yes\s+refused by policy \(scope\.class\)/);
    expect(out).toMatch(/TASK-004\s+devops-specialist\s+failed ×2, rolled back \(4\/4 ok\) → blocked\s+2\s+yes\s+verification failed/);
    expect(out).toContain('all four outcomes happened as expected');
    expect(out).toContain(`retrospectives   ${join(dir, 'retrospectives')}  (5 written, one per run)`);
    const port = Number(/demo app:\s+http:\/\/127\.0\.0\.1:(\d+)/.exec(out)?.[1]);
    expect(port).toBeGreaterThan(0);
    // In this same process: the server really was closed, not just dropped with a dead process.
    expect(await listening(port)).toBe(false);
  });

  it('exits 1 and names the check when an example task does not end as expected', async () => {
    // A demo set whose "refused" task no longer does anything the policy refuses.
    const demo = join(tempDir('broken'), 'demo');
    cpSync(join(ROOT, 'examples', 'demo'), demo, { recursive: true });
    const hook = join(demo, 'tasks', '02-deploy-hook.md');
    writeFileSync(hook, readFileSync(hook, 'utf8').replace(/^curl -fsS -X POST .*\n/m, ''));
    const o = io();
    const code = await runDemo(o, { dir: join(tempDir('broken-ws'), 'ws'), json: true, demoDir: demo });
    expect(code).toBe(EXIT.FAILED);
    const d = JSON.parse(o.stdout()) as DemoReport;
    expect(d.ok).toBe(false);
    expect(d.tasks.find((t) => t.id === 'TASK-002')).toMatchObject({ outcome: 'completed', ok: false });
    expect(d.tasks.filter((t) => t.id !== 'TASK-002').every((t) => t.ok)).toBe(true);
    expect(o.stderr()).toMatch(/opscrew demo: FAILED — \d+ check\(s\) did not hold:\n {2}- TASK-002 should be blocked/);
    expect(await listening(Number(new URL(d.url).port))).toBe(false);
  });

  it('refuses a --dir that exists, before starting anything', async () => {
    const o = io();
    await expect(runDemo(o, { dir: tempDir('exists') })).rejects.toThrow(/exists already/);
  });
});

describe('the demo app', () => {
  it('serves the release in current.json, reports a broken one as degraded, and deploys through its hook', async () => {
    const app = join(tempDir('app'), 'demo-app');
    cpSync(join(ROOT, 'examples', 'demo', 'srv', 'demo-app'), app, { recursive: true });
    const t = await startDemoTarget({ appDir: app });
    try {
      expect(await (await fetch(`${t.url}/version`)).json()).toEqual({ version: '1.0.0' });
      const bad = await fetch(`${t.url}/deploy`, { method: 'POST', body: '{"version":"../x"}' });
      expect(bad.status).toBe(400);
      const ok = await fetch(`${t.url}/deploy`, { method: 'POST', body: '{"version":"2.0.0"}' });
      expect(ok.status).toBe(200);
      const h = await fetch(`${t.url}/health`);
      expect(h.status).toBe(503);
      expect(await h.json()).toMatchObject({ status: 'degraded', version: '2.0.0' });
      expect((await fetch(`${t.url}/deploy`)).status).toBe(405);
      expect((await fetch(`${t.url}/nope`)).status).toBe(404);
      writeFileSync(join(app, 'current.json'), 'not json');
      expect((await fetch(`${t.url}/health`)).status).toBe(503);
      expect(t.currentVersion()).toBeNull();
      expect(t.requests().map((q) => `${q.method} ${q.path} ${q.status}`)).toEqual([
        'GET /version 200',
        'POST /deploy 400',
        'POST /deploy 200',
        'GET /health 503',
        'GET /deploy 405',
        'GET /nope 404',
        'GET /health 503',
      ]);
    } finally {
      await t.close();
    }
    expect(await listening(t.port)).toBe(false);
    await t.close(); // idempotent
  });
});
