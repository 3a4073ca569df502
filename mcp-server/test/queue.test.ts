import { describe, it, expect, afterEach } from 'vitest';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore, type Store } from '../core/store.js';
import { createFolderQueue, type TaskQueue } from '../core/queue.js';
import { ensureWorkspace, resolveWorkspace, type Workspace } from '../core/workspace.js';
import { parseTask } from '../core/task-parse.js';
import { bodyOf } from '../core/queue-reconcile.js';
import { taskText, type TaskSpec } from '../../test/fixtures/task-files.js';

interface Env {
  ws: Workspace;
  store: Store;
  clock: { t: number };
  q: TaskQueue;
  queue: (holder?: string) => TaskQueue;
  put: (folder: 'backlog' | 'active' | 'completed', name: string, spec: TaskSpec | string) => string;
}

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

const T0 = Date.parse('2026-03-01T10:00:00.000Z');
const LEASE = 60_000;

function env(): Env {
  const dir = mkdtempSync(join(tmpdir(), 'opscrew-queue-'));
  const ws = resolveWorkspace(dir);
  ensureWorkspace(ws);
  const store = openStore(ws.dbPath);
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  cleanups.push(() => store.close());
  const clock = { t: T0 };
  const queue = (holder = 'h1'): TaskQueue => createFolderQueue({ workspace: ws, store, now: () => clock.t, holder, leaseMs: LEASE });
  const put = (folder: 'backlog' | 'active' | 'completed', name: string, spec: TaskSpec | string): string => {
    const p = join(ws[folder], `${name}.md`);
    writeFileSync(p, typeof spec === 'string' ? spec : taskText(spec));
    return p;
  };
  return { ws, store, clock, q: queue(), queue, put };
}

const sha = (p: string): string => createHash('sha256').update(readFileSync(p)).digest('hex');
const at = (minute: number): string => new Date(T0 - 86_400_000 + minute * 60_000).toISOString();
const fmOf = (p: string) => {
  const r = parseTask(readFileSync(p, 'utf8'), p);
  if (!r.ok) throw new Error(`unparsable ${p}: ${JSON.stringify(r.issues)}`);
  return r.task.fm;
};

describe('ready set', () => {
  it('orders by priority, then age', async () => {
    const e = env();
    e.put('backlog', 'a', { id: 'TASK-001', title: 'low old', priority: 'low', created_at: at(1) });
    e.put('backlog', 'b', { id: 'TASK-002', title: 'high new', priority: 'high', created_at: at(9) });
    e.put('backlog', 'c', { id: 'TASK-003', title: 'high old', priority: 'high', created_at: at(2) });
    e.put('backlog', 'd', { id: 'TASK-004', title: 'critical', priority: 'critical', created_at: at(8) });
    e.put('backlog', 'e', { id: 'TASK-005', title: 'medium default', created_at: at(0) });
    await e.q.scan();
    expect((await e.q.ready()).map((t) => t.id)).toEqual(['TASK-004', 'TASK-003', 'TASK-002', 'TASK-005', 'TASK-001']);
    const c = await e.q.claim();
    expect(c?.taskId).toBe('TASK-004');
  });

  it('waits for dependencies to be completed', async () => {
    const e = env();
    e.put('backlog', 'a', { id: 'TASK-001', title: 'base', created_at: at(1) });
    e.put('backlog', 'b', { id: 'TASK-002', title: 'needs base', priority: 'critical', depends_on: ['TASK-001'], created_at: at(0) });
    await e.q.scan();
    expect((await e.q.ready()).map((t) => t.id)).toEqual(['TASK-001']);
    expect(await e.q.claim({ id: 'TASK-002' })).toBeNull();
    const c = await e.q.claim();
    expect(c?.taskId).toBe('TASK-001');
    expect((await e.q.ready()).map((t) => t.id)).toEqual([]); // active is not completed
    expect((await e.q.complete(c!, {})).ok).toBe(true);
    expect((await e.q.ready()).map((t) => t.id)).toEqual(['TASK-002']);
  });

  it('keeps a task whose resource an active task holds out of the ready set', async () => {
    const e = env();
    e.put('backlog', 'a', { id: 'TASK-001', title: 'one', resources: ['k8s:minikube/shop'], created_at: at(1) });
    e.put('backlog', 'b', { id: 'TASK-002', title: 'two', resources: ['k8s:minikube/shop', 'x'], created_at: at(2) });
    e.put('backlog', 'c', { id: 'TASK-003', title: 'three', resources: ['k8s:minikube/other'], created_at: at(3) });
    await e.q.scan();
    const c = await e.q.claim();
    expect(c?.taskId).toBe('TASK-001');
    expect((await e.q.ready()).map((t) => t.id)).toEqual(['TASK-003']);
    expect(await e.q.claim({ id: 'TASK-002' })).toBeNull();
    await e.q.release(c!, 'test');
    expect((await e.q.ready()).map((t) => t.id)).toEqual(['TASK-001', 'TASK-002', 'TASK-003']);
  });

  it('skips blocked and awaiting-approval tasks until a person edits them', async () => {
    const e = env();
    const a = e.put('backlog', 'a', { id: 'TASK-001', title: 'blocked', status: 'blocked', created_at: at(1) });
    e.put('backlog', 'b', { id: 'TASK-002', title: 'waiting', status: 'awaiting-approval', created_at: at(2) });
    e.put('backlog', 'c', { id: 'TASK-003', title: 'free', created_at: at(3) });
    await e.q.scan();
    expect((await e.q.ready()).map((t) => t.id)).toEqual(['TASK-003']);
    expect((await e.q.list({ status: 'blocked' })).map((t) => t.id)).toEqual(['TASK-001']);
    writeFileSync(a, taskText({ id: 'TASK-001', title: 'blocked', created_at: at(1) }) + '\nunblocked by a person\n');
    const s = await e.q.scan();
    expect(s.updated).toEqual(['tasks/backlog/a.md']);
    expect((await e.q.ready()).map((t) => t.id)).toEqual(['TASK-001', 'TASK-003']);
  });
});

describe('scan', () => {
  it('assigns the next free id across all folders and writes it back durably', async () => {
    const e = env();
    e.put('completed', 'done', { id: 'TASK-041', title: 'done' });
    e.put('backlog', 'old', { id: 'TASK-007', title: 'old' });
    const p1 = e.put('backlog', 'new-one', { title: 'new one' });
    const p2 = e.put('backlog', 'new-two', { title: 'new two' });
    const before1 = readFileSync(p1, 'utf8');
    const s = await e.q.scan();
    expect(s.assigned).toEqual([
      { file: 'tasks/backlog/new-one.md', id: 'TASK-042' },
      { file: 'tasks/backlog/new-two.md', id: 'TASK-043' },
    ]);
    expect(fmOf(p1).id).toBe('TASK-042');
    expect(fmOf(p2).id).toBe('TASK-043');
    expect(bodyOf(readFileSync(p1, 'utf8'))).toBe(bodyOf(before1));
    expect((await e.q.get('TASK-042'))?.file).toBe('tasks/backlog/new-one.md');
    // Nothing changed: the second scan parses nothing and assigns nothing.
    const again = await e.q.scan();
    expect(again).toMatchObject({ files: 4, parsed: 0, assigned: [], added: [], updated: [] });
    // A second queue over the same store and files agrees (no double assignment).
    expect((await e.queue('h2').scan()).assigned).toEqual([]);
  });

  it('never moves or modifies an invalid file and reports it with file and line', async () => {
    const e = env();
    const bad = e.put('backlog', 'bad', '---\ntitle: x\npriority: urgent\n---\n# x\n');
    e.put('backlog', 'good', { title: 'good' });
    const h = sha(bad);
    await e.q.reconcile();
    const inv = await e.q.invalid();
    expect(inv).toHaveLength(1);
    expect(inv[0]).toMatchObject({ file: 'tasks/backlog/bad.md', reason: 'invalid' });
    expect(inv[0]!.problems[0]).toMatchObject({ file: 'tasks/backlog/bad.md', line: 3, field: 'priority' });
    const c = await e.q.claim();
    expect(c?.taskId).toBe('TASK-001'); // the good one got an id; the bad one did not
    expect(await e.q.claim()).toBeNull();
    await e.q.complete(c!, {});
    e.clock.t += 10 * LEASE;
    await e.q.reconcile();
    expect(existsSync(bad)).toBe(true);
    expect(sha(bad)).toBe(h);
  });

  it('drops rows of vanished files and picks up moved ones', async () => {
    const e = env();
    const a = e.put('backlog', 'a', { id: 'TASK-001', title: 'a' });
    const b = e.put('backlog', 'b', { id: 'TASK-002', title: 'b' });
    await e.q.scan();
    unlinkSync(a);
    writeFileSync(join(e.ws.completed, 'b.md'), readFileSync(b));
    unlinkSync(b);
    const s = await e.q.scan();
    expect(s.removed).toContain('tasks/backlog/a.md');
    expect(await e.q.get('TASK-001')).toBeNull();
    expect((await e.q.get('TASK-002'))?.folder).toBe('completed');
  });
});

describe('claim, complete, block, release', () => {
  it('claim moves the file to active with run state in front matter, lease and run rows', async () => {
    const e = env();
    const p = e.put('backlog', 'fix-dns', { id: 'TASK-001', title: 'fix dns' });
    const body = bodyOf(readFileSync(p, 'utf8'));
    await e.q.scan();
    const c = await e.q.claim({ runId: 'run-test-1' });
    expect(c).toMatchObject({ taskId: 'TASK-001', runId: 'run-test-1', token: 1, holder: 'h1', attempt: 1, leaseExpiresMs: T0 + LEASE });
    expect(c!.file).toBe(join(e.ws.active, 'fix-dns.md'));
    expect(existsSync(p)).toBe(false);
    // The claim returns once the move and the lease are durable; its front matter follows.
    await e.q.settled(c!);
    const fm = fmOf(c!.file);
    expect(fm).toMatchObject({ status: 'active', run_id: 'run-test-1', attempts: 1, started_at: new Date(T0).toISOString() });
    expect(bodyOf(readFileSync(c!.file, 'utf8'))).toBe(body);
    const rec = await e.q.get('TASK-001');
    expect(rec).toMatchObject({ folder: 'active', file: 'tasks/active/fix-dns.md', status: 'active', attempts: 1 });
    expect(rec?.lease).toEqual({ holder: 'h1', token: 1, runId: 'run-test-1', expiresMs: T0 + LEASE });
    // The claim left the row matching the file: a scan has nothing to re-read.
    expect((await e.q.scan()).parsed).toBe(0);
  });

  it('complete writes the update durably and moves to completed', async () => {
    const e = env();
    e.put('backlog', 'a', { id: 'TASK-001', title: 'a' });
    await e.q.scan();
    const c = await e.q.claim();
    e.clock.t += 1000;
    const r = await e.q.complete(c!, { set: { note_from_test: 'yes' } });
    expect(r).toEqual({ ok: true, value: { file: join(e.ws.completed, 'a.md') } });
    const fm = fmOf(join(e.ws.completed, 'a.md'));
    expect(fm.status).toBe('completed');
    expect(fm.completed_at).toBe(new Date(T0 + 1000).toISOString());
    expect(fm.extra['note_from_test']).toBe('yes');
    expect(readdirSync(e.ws.active)).toEqual([]);
    const rec = await e.q.get('TASK-001');
    expect(rec).toMatchObject({ folder: 'completed', status: 'completed', lease: null });
    expect(e.store.db.get<{ outcome: string }>('SELECT outcome FROM runs WHERE id = ?', [c!.runId])?.outcome).toBe('completed');
    expect((await e.q.complete(c!, {})).ok).toBe(false); // a second completion is fenced
  });

  it('block returns to backlog with a reason and keeps it out of the ready set; release does not block', async () => {
    const e = env();
    e.put('backlog', 'a', { id: 'TASK-001', title: 'a', created_at: at(1) });
    e.put('backlog', 'b', { id: 'TASK-002', title: 'b', created_at: at(2) });
    await e.q.scan();
    const ca = await e.q.claim();
    const cb = await e.q.claim();
    expect([ca?.taskId, cb?.taskId]).toEqual(['TASK-001', 'TASK-002']);
    expect((await e.q.block(ca!, 'preflight failed: no context minikube')).ok).toBe(true);
    expect((await e.q.release(cb!, 'shutting down')).ok).toBe(true);
    const fa = fmOf(join(e.ws.backlog, 'a.md'));
    expect(fa).toMatchObject({ status: 'blocked', blocked_reason: 'preflight failed: no context minikube', attempts: 1 });
    const fb = fmOf(join(e.ws.backlog, 'b.md'));
    expect(fb.status).toBeUndefined();
    expect(fb.attempts).toBe(1);
    expect((await e.q.ready()).map((t) => t.id)).toEqual(['TASK-002']);
    const again = await e.q.claim();
    expect(again).toMatchObject({ taskId: 'TASK-002', attempt: 2, token: 2 });
  });

  it('a lost race (file gone before the rename) is null, not an error', async () => {
    const e = env();
    const p = e.put('backlog', 'a', { id: 'TASK-001', title: 'a' });
    await e.q.scan();
    unlinkSync(p);
    expect(await e.q.claim({ id: 'TASK-001' })).toBeNull();
    expect(await e.q.claim()).toBeNull();
  });

  it('heartbeat extends the lease of the current holder only', async () => {
    const e = env();
    e.put('backlog', 'a', { id: 'TASK-001', title: 'a' });
    await e.q.scan();
    const c = await e.q.claim();
    e.clock.t += 30_000;
    const hb = await e.q.heartbeat(c!);
    expect(hb).toEqual({ ok: true, value: { leaseExpiresMs: T0 + 30_000 + LEASE } });
    e.clock.t += LEASE - 1; // still alive thanks to the heartbeat
    expect((await e.q.reconcile()).repairs.filter((r) => r.id === 'TASK-001')).toEqual([]);
    expect((await e.q.heartbeat({ ...c!, token: 99 })).ok).toBe(false);
  });
});

describe('fencing', () => {
  it('a holder whose lease expired and was taken over cannot complete or block, and nothing changes', async () => {
    const e = env();
    e.put('backlog', 'a', { id: 'TASK-001', title: 'a' });
    await e.q.scan();
    const zombie = await e.q.claim({ holder: 'zombie' });
    expect(zombie?.token).toBe(1);
    e.clock.t += LEASE + 1; // the zombie stalls past its lease
    const rep = await e.queue('reaper').reconcile();
    expect(rep.repairs.map((r) => r.kind)).toContain('lease-lost');
    const h2 = e.queue('h2');
    const fresh = await h2.claim({ holder: 'h2' });
    await h2.settled(fresh!);
    expect(fresh).toMatchObject({ taskId: 'TASK-001', token: 2, attempt: 2 });

    const file = fresh!.file;
    const before = sha(file);
    const rowBefore = e.store.db.get('SELECT * FROM tasks WHERE id = ?', ['TASK-001']);
    const leaseBefore = e.store.db.get('SELECT * FROM leases WHERE task_id = ?', ['TASK-001']);

    const done = await e.q.complete(zombie!, { set: { zombie: true } });
    expect(done).toMatchObject({ ok: false, code: 'fenced' });
    const blocked = await e.q.block(zombie!, 'zombie says no');
    expect(blocked).toMatchObject({ ok: false, code: 'fenced' });
    expect(await e.q.release(zombie!, 'zombie')).toMatchObject({ ok: false, code: 'fenced' });
    expect(await e.q.heartbeat(zombie!)).toMatchObject({ ok: false, code: 'fenced' });

    expect(sha(file)).toBe(before);
    expect(readdirSync(e.ws.active)).toEqual(['a.md']);
    expect(readdirSync(e.ws.completed)).toEqual([]);
    expect(e.store.db.get('SELECT * FROM tasks WHERE id = ?', ['TASK-001'])).toEqual(rowBefore);
    expect(e.store.db.get('SELECT * FROM leases WHERE task_id = ?', ['TASK-001'])).toEqual(leaseBefore);
    // The zombie's finish temp (made at its claim) is gone; only the live claim's is left.
    expect(readdirSync(e.ws.tmpDir)).toHaveLength(1);
    // The live holder still can, through the temp made at its claim, leaving none behind.
    expect((await h2.complete(fresh!, {})).ok).toBe(true);
    expect(readdirSync(e.ws.tmpDir)).toEqual([]);
    expect(fmOf(join(e.ws.completed, 'a.md')).status).toBe('completed');
  });

  it('a finish whose temp made at the claim was swept away still completes, writing one beside the file', async () => {
    const e = env();
    e.put('backlog', 'a', { id: 'TASK-001', title: 'a' });
    await e.q.scan();
    const c = await e.q.claim({ holder: 'long-run' });
    await e.q.settled(c!);
    await new Promise((r) => setTimeout(r, 20)); // the temp is made in the thread pool
    const made = readdirSync(e.ws.tmpDir);
    expect(made).toHaveLength(1);
    unlinkSync(join(e.ws.tmpDir, made[0] ?? ''));
    const done = await e.q.complete(c!, { set: { note: 'after a sweep' } });
    expect(done.ok).toBe(true);
    expect(fmOf(join(e.ws.completed, 'a.md')).status).toBe('completed');
    expect(readFileSync(join(e.ws.completed, 'a.md'), 'utf8')).toMatch(/^note: after a sweep$/m);
    expect(readdirSync(e.ws.active)).toEqual([]);
    expect(readdirSync(e.ws.tmpDir)).toEqual([]);
  });

  it("a claim's late front-matter write never lands once its lease is gone", async () => {
    const e = env();
    const p = e.put('backlog', 'a', { id: 'TASK-001', title: 'a' });
    await e.q.scan();
    const c = await e.q.claim({ holder: 'slow' });
    // Before the write lands: the lease expires and another process returns the task to backlog.
    e.clock.t += LEASE + 1;
    const rep = await e.queue('reaper').reconcile();
    expect(rep.repairs.map((r) => r.kind)).toContain('lease-lost');
    await e.q.settled(c!);
    expect(readdirSync(e.ws.active)).toEqual([]);
    expect(readdirSync(e.ws.backlog)).toEqual(['a.md']);
    expect(fmOf(p).status).toBeUndefined();
    expect(fmOf(p).run_id).toBeUndefined();
  });

  it("a run that finishes before the claim's fields are due writes the file once, with both", async () => {
    const e = env();
    const p = e.put('backlog', 'quick', { id: 'TASK-001', title: 'quick' });
    const body = bodyOf(readFileSync(p, 'utf8'));
    await e.q.scan();
    const c = await e.q.claim({ runId: 'run-quick' });
    const dest = join(e.ws.active, 'quick.md');
    // Not written yet (the run fields are due 1 s after the claim), but rendered on request.
    expect(fmOf(dest).status).toBeUndefined();
    expect(e.q.claimedText(c!)).toMatch(/^status: active$/m);
    expect(readdirSync(e.ws.active)).toEqual(['quick.md']);
    expect((await e.q.complete(c!, { set: { run_id: 'run-quick' } })).ok).toBe(true);
    const done = join(e.ws.completed, 'quick.md');
    expect(fmOf(done)).toMatchObject({ status: 'completed', run_id: 'run-quick', attempts: 1, started_at: new Date(T0).toISOString() });
    expect(bodyOf(readFileSync(done, 'utf8'))).toBe(body);
    expect(readdirSync(e.ws.active)).toEqual([]);
  });

  it("a run still going when the claim's fields are due gets them written into the file", async () => {
    const e = env();
    e.put('backlog', 'slow', { id: 'TASK-001', title: 'slow' });
    const q = createFolderQueue({ workspace: e.ws, store: e.store, now: () => e.clock.t, holder: 'h1', leaseMs: LEASE, frontMatterDelayMs: 20 });
    await q.scan();
    const c = await q.claim({ runId: 'run-slow' });
    const dest = join(e.ws.active, 'slow.md');
    const deadline = Date.now() + 5000;
    while (fmOf(dest).status !== 'active' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(fmOf(dest)).toMatchObject({ status: 'active', run_id: 'run-slow', attempts: 1 });
    // A release afterwards keeps the run fields and drops the status, as before.
    expect((await q.release(c!, 'again')).ok).toBe(true);
    const back = join(e.ws.backlog, 'slow.md');
    expect(fmOf(back).status).toBeUndefined();
    expect(fmOf(back)).toMatchObject({ run_id: 'run-slow', attempts: 1 });
  });

  it('tokens keep increasing across release and re-claim', async () => {
    const e = env();
    e.put('backlog', 'a', { id: 'TASK-001', title: 'a' });
    await e.q.scan();
    const tokens: number[] = [];
    for (let i = 0; i < 4; i++) {
      const c = await e.q.claim();
      tokens.push(c!.token);
      await e.q.release(c!, 'again');
    }
    expect(tokens).toEqual([1, 2, 3, 4]);
  });
});

describe('reconcile', () => {
  it('returns expired tasks to backlog and blocks after max_attempts worker losses', async () => {
    const e = env();
    const p = e.put('backlog', 'a', { id: 'TASK-001', title: 'a', max_attempts: 2 });
    const body = bodyOf(readFileSync(p, 'utf8'));
    await e.q.scan();
    await e.q.claim();
    e.clock.t += LEASE + 1;
    const r1 = await e.q.reconcile();
    expect(r1.repairs).toContainEqual(expect.objectContaining({ kind: 'lease-lost', id: 'TASK-001', file: 'tasks/backlog/a.md' }));
    expect(fmOf(p)).toMatchObject({ attempts: 1 });
    expect(fmOf(p).status).toBeUndefined();
    const c2 = await e.q.claim();
    expect(c2?.attempt).toBe(2);
    e.clock.t += LEASE + 1;
    const r2 = await e.q.reconcile();
    expect(r2.repairs.map((r) => r.kind)).toContain('blocked-after-losses');
    expect(fmOf(p)).toMatchObject({ status: 'blocked', attempts: 2 });
    expect(fmOf(p).blocked_reason).toMatch(/worker lost 2 time/);
    expect(bodyOf(readFileSync(p, 'utf8'))).toBe(body);
    expect(await e.q.ready()).toEqual([]);
    const runs = e.store.db.all<{ outcome: string }>('SELECT outcome FROM runs ORDER BY started_ms');
    expect(runs.map((r) => r.outcome)).toEqual(['lost', 'lost']);
  });

  it('rolls forward a completion that crashed between writing and moving', async () => {
    const e = env();
    e.put('backlog', 'a', { id: 'TASK-001', title: 'a' });
    await e.q.scan();
    const c = await e.q.claim();
    await e.q.settled(c!);
    // Simulate the crash window: front matter already says completed, file still in active/.
    const text = readFileSync(c!.file, 'utf8').replace('status: active', 'status: completed');
    writeFileSync(c!.file, text);
    e.clock.t += LEASE + 1;
    const r = await e.q.reconcile();
    expect(r.repairs).toContainEqual(expect.objectContaining({ kind: 'rolled-forward', id: 'TASK-001' }));
    expect(readFileSync(join(e.ws.completed, 'a.md'), 'utf8')).toBe(text);
    expect((await e.q.get('TASK-001'))?.folder).toBe('completed');
  });

  it('fixes the store from the folders and removes stale temp files and crash copies', async () => {
    const e = env();
    const a = e.put('backlog', 'a', { id: 'TASK-001', title: 'a' });
    e.put('backlog', 'b', { id: 'TASK-002', title: 'b' });
    await e.q.scan();
    // A file moved by hand into active without any lease, a dead writer's temp file, a crash copy.
    writeFileSync(join(e.ws.active, 'a.md'), readFileSync(a));
    unlinkSync(a);
    writeFileSync(join(e.ws.active, '.a.md.999999.deadbeef.opscrew-tmp'), 'partial');
    // A retrospective whose writer died before naming it, and a finish's temp made ahead.
    writeFileSync(join(e.ws.retrospectives, '.retro.md.999999.cafef00d.opscrew-tmp'), 'half a retro');
    writeFileSync(join(e.ws.tmpDir, '.a.md.999999.0badf00d.opscrew-tmp'), '');
    writeFileSync(join(e.ws.completed, 'b.md'), readFileSync(join(e.ws.backlog, 'b.md')));
    const r = await e.q.reconcile();
    const kinds = r.repairs.map((x) => x.kind);
    expect(kinds).toEqual(expect.arrayContaining(['temp-removed', 'duplicate-removed', 'lease-lost']));
    expect(r.repairs.filter((x) => x.kind === 'temp-removed').map((x) => x.file).sort()).toEqual([
      '.opscrew/tmp/.a.md.999999.0badf00d.opscrew-tmp',
      'retrospectives/.retro.md.999999.cafef00d.opscrew-tmp',
      'tasks/active/.a.md.999999.deadbeef.opscrew-tmp',
    ]);
    expect(readdirSync(e.ws.retrospectives)).toEqual([]);
    expect(readdirSync(e.ws.tmpDir)).toEqual([]);
    expect(readdirSync(e.ws.active)).toEqual([]);
    // The byte-identical copy the store does not point at goes; the store's copy stays.
    expect(readdirSync(e.ws.backlog).sort()).toEqual(['a.md', 'b.md']);
    expect(readdirSync(e.ws.completed)).toEqual([]);
    expect((await e.q.get('TASK-001'))).toMatchObject({ folder: 'backlog', attempts: 1 });
    expect((await e.q.get('TASK-002'))?.folder).toBe('backlog');
  });

  it('leaves copies that differ in any byte for a person, reported as duplicate ids', async () => {
    const e = env();
    const a = e.put('completed', 'deploy', { id: 'TASK-001', title: 'deploy', status: 'completed' });
    await e.q.scan();
    const copy = e.put('backlog', 'deploy', { id: 'TASK-001', title: 'deploy' }); // re-run attempt by hand
    const r = await e.q.reconcile();
    expect(r.repairs.filter((x) => x.kind === 'duplicate-removed')).toEqual([]);
    expect(existsSync(a) && existsSync(copy)).toBe(true);
    expect(await e.q.invalid()).toEqual([
      expect.objectContaining({ file: 'tasks/backlog/deploy.md', reason: 'duplicate', taskId: 'TASK-001' }),
    ]);
    const g = await e.q.graphIssues();
    expect(g.map((i) => [i.file, i.line, i.field])).toEqual([
      ['tasks/completed/deploy.md', 2, 'id'],
      ['tasks/backlog/deploy.md', 2, 'id'],
    ]);
    expect(await e.q.ready()).toEqual([]);
  });
});

describe('listJson', () => {
  it('is JSON.stringify(list()) byte for byte, for every filter, over awkward text and leases', async () => {
    const empty = env();
    expect((await empty.q.listJson()).toString()).toBe('[]');
    expect((await empty.q.listJson({ status: 'active' })).toString()).toBe('[]');
    const e = env();
    // JSON is YAML's double-quoted form; the control characters reach the title unescaped.
    const awkward = JSON.stringify('quote " back \\ tab\t bell\u0007 nl\n é 😀 \u2028 </script> \u001f');
    e.put('backlog', 'a', `---\nid: TASK-001\ntitle: ${awkward}\npriority: high\nagent: k8s-specialist\ntags: [dns, "a\\"b"]\nresources: [db]\ndepnds_on: [TASK-002]\n---\n# x\n`);
    e.put('backlog', 'b', { id: 'TASK-002', title: 'plain', depends_on: ['TASK-001'], created_at: at(3) });
    e.put('backlog', 'c', { id: 'TASK-003', title: 'blocked one', status: 'blocked' });
    e.put('completed', 'd', { id: 'TASK-004', title: 'done', priority: 'low' });
    e.put('backlog', 'e', { id: 'TASK-005', title: 'to claim', priority: 'critical' });
    await e.q.scan();
    expect(await e.q.claim()).not.toBeNull(); // a lease row for the join
    const recs = await e.q.list();
    expect(recs.some((r) => r.lease !== null)).toBe(true);
    expect(recs.some((r) => r.warnings.length > 0)).toBe(true);
    expect(recs.find((r) => r.id === 'TASK-001')?.title).toContain('😀');
    for (const status of [undefined, 'backlog', 'active', 'completed', 'blocked', 'ready'] as const) {
      const f = status === undefined ? {} : { status };
      expect((await e.q.listJson(f)).toString('utf8'), String(status)).toBe(JSON.stringify(await e.q.list(f)));
    }
  });
});
