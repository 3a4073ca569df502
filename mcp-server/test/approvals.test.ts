import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseCommandLine } from '../../tools/parse-command.js';
import type { ToolEnv } from '../../tools/types.js';
import {
  consumeApproval,
  decideApproval,
  expireApprovals,
  listApprovals,
  requestApproval,
  seedTaskApprovals,
} from '../core/approvals.js';
import { parseConfigText } from '../core/config.js';
import { openStore, type Store } from '../core/store.js';
import type { Task } from '../core/task-types.js';

const ENV: ToolEnv = { kubernetes: { contexts: { staging: { namespaces: ['orders'] } }, defaultContext: 'staging' } };
const NOW = 1_700_000_000_000;

function task(approve: string[], timeoutMs?: number): Task {
  return {
    file: '/ws/tasks/active/TASK-007.md',
    fm: { id: 'TASK-007', priority: 'high', tags: [], depends_on: [], resources: [], approve, extra: {}, ...(timeoutMs ? { timeout_ms: timeoutMs } : {}) },
    title: 't',
    context: '',
    preflight: [],
    steps: [],
    criteria: [],
    rollback: [],
    outOfScope: [],
    sections: [],
  };
}

function canonical(line: string): string {
  const r = parseCommandLine(line, { vars: {}, env: ENV });
  if (!r.ok) throw new Error(r.message);
  return r.value.canonical;
}

let dir: string;
let store: Store;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'opscrew-approvals-'));
  store = openStore(path.join(dir, 'state.db'));
});
afterEach(() => {
  store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('task-file approvals', () => {
  it('are seeded approved, bound to the canonical command, expiring with the task timeout', () => {
    const { seeded, problems } = seedTaskApprovals(store.db, task(['kubectl delete -n orders deploy/old'], 600_000), 'run-1', { env: ENV, now: NOW });
    expect(problems).toEqual([]);
    expect(seeded).toHaveLength(1);
    expect(seeded[0]).toMatchObject({
      state: 'approved',
      source: 'task-file',
      taskId: 'TASK-007',
      runId: 'run-1',
      canonical: 'kubectl --context staging -n orders delete deploy/old',
      expiresMs: NOW + 600_000,
    });
    expect(seeded[0]?.id).toMatch(/^apr-[0-9a-f]{8}$/);
  });

  it('use the default timeout when the task has none, and are idempotent per run', () => {
    const t = task(['kubectl --context staging -n orders delete deploy/old']);
    const a = seedTaskApprovals(store.db, t, 'run-1', { env: ENV, now: NOW, defaultTimeoutMs: 1000 });
    const b = seedTaskApprovals(store.db, t, 'run-1', { env: ENV, now: NOW, defaultTimeoutMs: 1000 });
    expect(a.seeded[0]?.expiresMs).toBe(NOW + 1000);
    expect(b.seeded.map((x) => x.id)).toEqual(a.seeded.map((x) => x.id));
    expect(listApprovals(store.db, { taskId: 'TASK-007' })).toHaveLength(1);
  });

  it('a new run expires the unused approvals of the previous run', () => {
    const t = task(['kubectl --context staging -n orders delete deploy/old']);
    const first = seedTaskApprovals(store.db, t, 'run-1', { env: ENV, now: NOW }).seeded[0]!;
    const second = seedTaskApprovals(store.db, t, 'run-2', { env: ENV, now: NOW + 10 }).seeded[0]!;
    expect(second.id).not.toBe(first.id);
    const byId = new Map(listApprovals(store.db, { taskId: 'TASK-007' }).map((a) => [a.id, a.state]));
    expect(byId.get(first.id)).toBe('expired');
    expect(byId.get(second.id)).toBe('approved');
  });

  it('canonicalize with the workspace config and expire by its task timeout', () => {
    const cfg = parseConfigText('timeouts: { task: 5m }\nkubernetes:\n  default_context: staging\n  contexts:\n    staging: { namespaces: [orders] }\n', { file: 'c.yaml', workspaceDir: dir, env: {} });
    if (!cfg.ok) throw new Error(cfg.message);
    const { seeded } = seedTaskApprovals(store.db, task(['kubectl -n orders delete deploy/old']), 'run-1', { config: cfg.value, now: NOW });
    expect(seeded[0]).toMatchObject({ canonical: 'kubectl --context staging -n orders delete deploy/old', expiresMs: NOW + 300_000 });
  });

  it('lines that are no vetted command approve nothing and are reported', () => {
    const { seeded, problems } = seedTaskApprovals(store.db, task(['rm -rf / ; echo', 'kubectl --context staging -n orders delete deploy/old']), 'run-1', { env: ENV, now: NOW });
    expect(seeded).toHaveLength(1);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ field: 'approve[0]', file: '/ws/tasks/active/TASK-007.md' });
  });

  it('bind to the canonical form: a respelling with the same meaning matches, a different one does not', () => {
    seedTaskApprovals(store.db, task(['kubectl --context staging -n orders delete deploy/old']), 'run-1', { env: ENV, now: NOW });
    const same = canonical('kubectl -n orders delete deploy/old'); // default context, flags reordered
    const other = canonical('kubectl --context staging -n orders delete deploy old');
    expect(listApprovals(store.db, { state: 'approved', canonical: same })).toHaveLength(1);
    expect(listApprovals(store.db, { state: 'approved', canonical: other })).toHaveLength(0);
    const id = listApprovals(store.db, { state: 'approved' })[0]!.id;
    const mismatch = consumeApproval(store.db, id, { now: NOW, canonical: other });
    expect(mismatch).toMatchObject({ ok: false, code: 'approval-mismatch' });
    expect(consumeApproval(store.db, id, { now: NOW, canonical: same }).ok).toBe(true);
  });
});

describe('consumeApproval', () => {
  it('is single use', () => {
    const id = seedTaskApprovals(store.db, task(['kubectl --context staging -n orders delete deploy/old']), 'run-1', { env: ENV, now: NOW }).seeded[0]!.id;
    const first = consumeApproval(store.db, id, { now: NOW + 1 });
    expect(first.ok && first.value).toMatchObject({ state: 'used', usedMs: NOW + 1 });
    expect(consumeApproval(store.db, id, { now: NOW + 2 })).toMatchObject({ ok: false, code: 'approval-used' });
  });

  it('refuses an expired approval and records the expiry', () => {
    const id = seedTaskApprovals(store.db, task(['kubectl --context staging -n orders delete deploy/old'], 1000), 'run-1', { env: ENV, now: NOW }).seeded[0]!.id;
    expect(consumeApproval(store.db, id, { now: NOW + 1000 })).toMatchObject({ ok: false, code: 'approval-expired' });
    expect(listApprovals(store.db, { state: 'expired' }).map((a) => a.id)).toEqual([id]);
    expect(consumeApproval(store.db, id, { now: NOW })).toMatchObject({ ok: false, code: 'approval-expired' });
  });

  it('refuses pending, denied and unknown approvals', () => {
    const id = requestApproval(store.db, { task: 'TASK-007', run: 'run-1', agent: 'k8s-specialist', canonical: 'x' }, { now: NOW });
    expect(consumeApproval(store.db, id, { now: NOW })).toMatchObject({ ok: false, code: 'approval-not-approved' });
    expect(decideApproval(store.db, id, { by: 'alice', approve: false, now: NOW }).ok).toBe(true);
    expect(consumeApproval(store.db, id, { now: NOW })).toMatchObject({ ok: false, code: 'approval-denied' });
    expect(consumeApproval(store.db, 'apr-nope', { now: NOW })).toMatchObject({ ok: false, code: 'approval-not-found' });
  });
});

describe('requests decided by a person', () => {
  it('a pending request is approved by a person and then usable once', () => {
    const id = requestApproval(store.db, { task: 'TASK-007', run: 'run-1', agent: 'k8s-specialist', canonical: 'kubectl x' }, { now: NOW, ttlMs: 60_000 });
    expect(id).toMatch(/^apr-[0-9a-f]{8}$/);
    // Asking again while pending returns the same request.
    expect(requestApproval(store.db, { task: 'TASK-007', run: 'run-1', agent: 'k8s-specialist', canonical: 'kubectl x' }, { now: NOW + 5 })).toBe(id);
    const d = decideApproval(store.db, id, { by: 'alice', approve: true, now: NOW + 10 });
    expect(d.ok && d.value).toMatchObject({ state: 'approved', decidedBy: 'alice', decidedMs: NOW + 10, requestedBy: 'k8s-specialist', source: 'person' });
    expect(decideApproval(store.db, id, { by: 'bob', approve: false, now: NOW + 11 })).toMatchObject({ ok: false, code: 'approval-not-pending' });
    expect(consumeApproval(store.db, id, { now: NOW + 20 }).ok).toBe(true);
    expect(consumeApproval(store.db, id, { now: NOW + 21 })).toMatchObject({ ok: false, code: 'approval-used' });
  });

  it('an agent can never approve its own request', () => {
    const id = requestApproval(store.db, { task: 'TASK-007', run: 'run-1', agent: 'k8s-specialist', canonical: 'kubectl x' }, { now: NOW });
    const r = decideApproval(store.db, id, { by: 'k8s-specialist', approve: true, now: NOW });
    expect(r).toMatchObject({ ok: false, code: 'self-approval' });
    expect(listApprovals(store.db, { state: 'pending' }).map((a) => a.id)).toEqual([id]);
    expect(decideApproval(store.db, id, { by: '  ', approve: true, now: NOW })).toMatchObject({ ok: false, code: 'approval-by-missing' });
  });

  it('a request past its expiry cannot be approved', () => {
    const id = requestApproval(store.db, { task: null, run: null, agent: 'ops', canonical: 'kubectl x' }, { now: NOW, ttlMs: 100 });
    expect(decideApproval(store.db, id, { by: 'alice', approve: true, now: NOW + 100 })).toMatchObject({ ok: false, code: 'approval-expired' });
    expect(listApprovals(store.db, { taskId: null }).map((a) => a.state)).toEqual(['expired']);
  });

  it('expireApprovals marks stale pending and approved rows', () => {
    requestApproval(store.db, { task: 'T', run: 'r', agent: 'a', canonical: 'c1' }, { now: NOW, ttlMs: 10 });
    requestApproval(store.db, { task: 'T', run: 'r', agent: 'a', canonical: 'c2' }, { now: NOW, ttlMs: 1000 });
    expect(expireApprovals(store.db, NOW + 10)).toBe(1);
    expect(listApprovals(store.db, { state: ['pending'] }).map((a) => a.canonical)).toEqual(['c2']);
  });
});
