import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createSecretBroker, type SecretBrokerImpl } from '../../tools/secret-broker.js';
import type { SpawnRequest, SpawnResult, Spawner } from '../../tools/types.js';
import { decideApproval, listApprovals, seedTaskApprovals } from '../core/approvals.js';
import { listAudit } from '../core/audit.js';
import { parseConfigText, type Config } from '../core/config.js';
import { checkLine, runLine, type GateDeps } from '../core/gate.js';
import type { AgentScope } from '../core/scope.js';
import { openStore, type Store } from '../core/store.js';
import type { Task } from '../core/task-types.js';

const NOW = 1_700_000_000_000;
const CANARY = 'CANARY-7f3a9c1e5b2d4f60-do-not-leak';

interface Spy {
  spawn: Spawner;
  calls: SpawnRequest[];
}

/** A spawner that records every request and answers with fixed output (no process runs). */
function spy(answer: (req: SpawnRequest) => Partial<SpawnResult> = () => ({})): Spy {
  const calls: SpawnRequest[] = [];
  return {
    calls,
    spawn: async (req) => {
      calls.push(req);
      return { exitCode: 0, signal: null, stdout: '', stderr: '', durationMs: 1, timedOut: false, truncated: false, ...answer(req) };
    },
  };
}

const k8s: AgentScope = { name: 'k8s-specialist', tools: { kubectl: { mode: 'destructive', contexts: ['staging'], namespaces: ['orders'] } } };

let dir: string;
let store: Store;
let config: Config;
let broker: SecretBrokerImpl;
let clock: number;

function deps(s: Spy, over: Partial<GateDeps> = {}): GateDeps {
  return { db: store.db, config, env: { VAULT_TOKEN: 'hvs.VAULTTOKEN-abcdef123456' }, broker, now: () => clock, spawn: s.spawn, ...over };
}

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'opscrew-gate-'));
  store = openStore(path.join(dir, '.opscrew', 'state.db'));
  const yaml = [
    'mode: standard',
    'audit_excerpt: 500',
    'kubernetes:',
    '  kubeconfig: /nonexistent/kubeconfig',
    '  contexts:',
    '    staging: { namespaces: [orders] }',
    'files:',
    `  roots: [${JSON.stringify(dir)}]`,
    '',
  ].join('\n');
  const r = parseConfigText(yaml, { file: path.join(dir, 'opscrew.config.yaml'), workspaceDir: dir, env: { HOME: dir } });
  if (!r.ok) throw new Error(r.message);
  config = r.value;
  broker = createSecretBroker();
  clock = NOW;
});
afterEach(() => {
  store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('runLine: refused calls spawn nothing and are audited', () => {
  it.each([
    ['a namespace outside the config', 'kubectl --context staging -n kube-system get pods', 'deny', 'scope.namespace'],
    ['an unknown context', 'kubectl --context prod -n orders get pods', 'deny', 'scope.context'],
    ['a command list', 'kubectl --context staging -n orders get pods; rm -rf /', 'deny', 'parse.refused'],
    ['an unknown program', 'bash -c id', 'deny', 'parse.unparseable'],
    ['a credential flag', 'kubectl --context staging -n orders --server=https://evil get pods', 'deny', 'parse.refused'],
    ['a destructive call without approval', 'kubectl --context staging -n orders delete deploy/old', 'needs-approval', 'approval.required'],
  ])('%s', async (_n, line, verdict, rule) => {
    const s = spy();
    const r = await runLine(deps(s), { line, agent: 'k8s-specialist', scope: k8s, taskId: 'TASK-001', runId: 'run-1' });
    expect(s.calls).toEqual([]);
    expect(r.executed).toBe(false);
    expect(r.ok).toBe(false);
    expect({ verdict: r.decision.verdict, rule: r.decision.rule }).toEqual({ verdict, rule });
    const rows = listAudit(store.db);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ decision: verdict, rule, agent: 'k8s-specialist', taskId: 'TASK-001', runId: 'run-1', exitCode: null });
    expect(rows[0]?.seq).toBe(r.auditSeq);
  });

  it('read-only mode refuses a mutate call before anything runs', async () => {
    const s = spy();
    const r = await runLine(deps(s), { line: 'kubectl --context staging -n orders scale deploy/web --replicas=2', agent: 'p', scope: 'person', mode: 'read-only' });
    expect(r.decision.rule).toBe('mode.read-only');
    expect(s.calls).toHaveLength(0);
  });
});

describe('runLine: kubectl -k through the gate (the core passes its YAML parser down)', () => {
  it('follows a YAML kustomization: a base inside the roots runs, one outside is refused before anything spawns', async () => {
    const overlay = path.join(dir, 'deploy', 'overlays', 'prod');
    fs.mkdirSync(overlay, { recursive: true });
    fs.mkdirSync(path.join(dir, 'deploy', 'base'));
    fs.writeFileSync(path.join(dir, 'deploy', 'base', 'kustomization.yaml'), 'resources:\n  - cm.yaml\n');
    fs.writeFileSync(path.join(dir, 'deploy', 'base', 'cm.yaml'), 'kind: ConfigMap\n');
    fs.writeFileSync(path.join(overlay, 'kustomization.yaml'), '# prod\nresources:\n  - ../../base\npatches:\n  - path: replicas.yaml\n');
    fs.writeFileSync(path.join(overlay, 'replicas.yaml'), 'spec: {replicas: 2}\n');
    const line = `kubectl --context staging -n orders apply -k ${overlay}`;
    const s = spy();
    const ok = await runLine(deps(s), { line, agent: 'k8s-specialist', scope: k8s, taskId: 'TASK-001', runId: 'run-1' });
    expect(ok.executed).toBe(true);
    expect(s.calls.length).toBeGreaterThan(0);
    const outside = fs.mkdtempSync(path.join(os.tmpdir(), 'opscrew-gate-outside-'));
    try {
      fs.writeFileSync(path.join(outside, 'kustomization.yaml'), 'resources: []\n');
      fs.writeFileSync(path.join(overlay, 'kustomization.yaml'), `resources:\n  - ../../base\n  - ${outside}\n`);
      const s2 = spy();
      const refused = await runLine(deps(s2), { line, agent: 'k8s-specialist', scope: k8s, taskId: 'TASK-001', runId: 'run-1' });
      expect(s2.calls).toEqual([]);
      expect(refused.execError?.code).toBe('kubectl-outside-roots');
    } finally {
      fs.rmSync(outside, { recursive: true, force: true });
    }
  });
});

describe('runLine: allowed calls', () => {
  it('spawn once, with the config kubeconfig, and are audited with exit code and excerpts', async () => {
    const s = spy(() => ({ stdout: 'NAME READY\nweb  1/1\n', durationMs: 5 }));
    const r = await runLine(deps(s), { line: 'kubectl -n orders --context staging get pods', agent: 'k8s-specialist', scope: k8s, taskId: 'TASK-001', runId: 'run-1' });
    expect(s.calls).toHaveLength(1);
    expect(s.calls[0]?.file).toBe('kubectl');
    expect(s.calls[0]?.env.KUBECONFIG).toBe('/nonexistent/kubeconfig');
    expect(r).toMatchObject({ ok: true, executed: true, decision: { verdict: 'allow', rule: 'class.read' } });
    expect(r.outcome?.stdout).toContain('web  1/1');
    const [row] = listAudit(store.db);
    expect(row).toMatchObject({ decision: 'allow', rule: 'class.read', exitCode: 0, tool: 'kubectl', verb: 'get', class: 'read', canonical: 'kubectl --context staging -n orders get pods' });
    expect(row?.stdout).toContain('web  1/1');
  });

  it('a failing command is data: ok false, exit code recorded', async () => {
    const s = spy(() => ({ exitCode: 1, stderr: 'Error from server (NotFound)' }));
    const r = await runLine(deps(s), { line: 'kubectl --context staging -n orders get deploy/nope', agent: 'p', scope: 'person' });
    expect(r).toMatchObject({ ok: false, executed: true });
    expect(r.outcome?.exitCode).toBe(1);
    expect(listAudit(store.db)[0]).toMatchObject({ exitCode: 1, stderr: 'Error from server (NotFound)' });
  });

  it('apply records its server-side dry run as its own audit row', async () => {
    fs.writeFileSync(path.join(dir, 'x.yaml'), 'kind: ConfigMap\n');
    const s = spy();
    const r = await runLine(deps(s), { line: `kubectl --context staging -n orders apply -f ${path.join(dir, 'x.yaml')}`, agent: 'p', scope: 'person' });
    expect(r.ok).toBe(true);
    expect(s.calls).toHaveLength(2);
    expect(s.calls[0]?.args.join(' ')).toContain('--dry-run=server');
    const rows = listAudit(store.db);
    expect(rows.map((x) => x.rule)).toEqual(['pre-step', 'class.mutate']);
  });

  it('dryRun decides without running, approving or auditing', async () => {
    const s = spy();
    const r = await runLine(deps(s), { line: 'kubectl --context staging -n orders delete deploy/old', agent: 'k8s-specialist', scope: k8s, dryRun: true });
    expect(r.decision.verdict).toBe('needs-approval');
    expect(s.calls).toHaveLength(0);
    expect(listAudit(store.db)).toHaveLength(0);
    expect(listApprovals(store.db)).toHaveLength(0);
  });
});

describe('runLine: approvals', () => {
  const line = 'kubectl --context staging -n orders delete deploy/old';

  it('needs-approval files a pending request; a person approves; the approval is used once', async () => {
    const s = spy();
    const first = await runLine(deps(s), { line, agent: 'k8s-specialist', scope: k8s, taskId: 'TASK-001', runId: 'run-1' });
    expect(first.decision.verdict).toBe('needs-approval');
    expect(first.approvalId).toMatch(/^apr-/);
    expect(first.decision.reason).toContain(first.approvalId!);
    expect(listAudit(store.db)[0]?.approvalId).toBe(first.approvalId);

    // The agent cannot approve its own request.
    const self = decideApproval(store.db, first.approvalId!, { by: 'k8s-specialist', approve: true, now: clock });
    expect(self).toMatchObject({ ok: false, code: 'self-approval' });
    const still = await runLine(deps(s), { line, agent: 'k8s-specialist', scope: k8s, taskId: 'TASK-001', runId: 'run-1' });
    expect(still.decision.verdict).toBe('needs-approval');
    expect(still.approvalId).toBe(first.approvalId);
    expect(s.calls).toHaveLength(0);

    expect(decideApproval(store.db, first.approvalId!, { by: 'alice', approve: true, now: clock }).ok).toBe(true);
    const second = await runLine(deps(s), { line, agent: 'k8s-specialist', scope: k8s, taskId: 'TASK-001', runId: 'run-1' });
    expect(second).toMatchObject({ ok: true, executed: true, approvalId: first.approvalId, decision: { rule: 'approval.granted' } });
    expect(s.calls).toHaveLength(1);

    const third = await runLine(deps(s), { line, agent: 'k8s-specialist', scope: k8s, taskId: 'TASK-001', runId: 'run-1' });
    expect(third.decision.verdict).toBe('needs-approval');
    expect(third.approvalId).not.toBe(first.approvalId);
    expect(s.calls).toHaveLength(1);
    expect(listAudit(store.db).map((r) => r.decision)).toEqual(['needs-approval', 'needs-approval', 'allow', 'needs-approval']);
  });

  it('a task-file approval allows the call once, only for that task', async () => {
    const task: Task = {
      file: path.join(dir, 'tasks/active/TASK-002.md'),
      fm: { id: 'TASK-002', priority: 'high', tags: [], depends_on: [], resources: [], approve: [line], extra: {} },
      title: 't', context: '', preflight: [], steps: [], criteria: [], rollback: [], outOfScope: [], sections: [],
    };
    seedTaskApprovals(store.db, task, 'run-2', { now: clock, defaultTimeoutMs: config.timeouts.task });
    const s = spy();
    const other = await runLine(deps(s), { line, agent: 'k8s-specialist', scope: k8s, taskId: 'TASK-999', runId: 'run-9' });
    expect(other.decision.verdict).toBe('needs-approval');
    const r = await runLine(deps(s), { line, agent: 'k8s-specialist', scope: k8s, taskId: 'TASK-002', runId: 'run-2' });
    expect(r.decision).toMatchObject({ verdict: 'allow', rule: 'approval.granted' });
    expect(s.calls).toHaveLength(1);
    const again = await runLine(deps(s), { line, agent: 'k8s-specialist', scope: k8s, taskId: 'TASK-002', runId: 'run-2' });
    expect(again.decision.verdict).toBe('needs-approval');
    expect(s.calls).toHaveLength(1);
  });

  it('an expired approval does not count', async () => {
    const task: Task = {
      file: 'x.md',
      fm: { id: 'TASK-003', priority: 'high', tags: [], depends_on: [], resources: [], approve: [line], extra: {}, timeout_ms: 1000 },
      title: 't', context: '', preflight: [], steps: [], criteria: [], rollback: [], outOfScope: [], sections: [],
    };
    seedTaskApprovals(store.db, task, 'run-3', { now: clock });
    clock += 1000;
    const s = spy();
    const r = await runLine(deps(s), { line, agent: 'k8s-specialist', scope: k8s, taskId: 'TASK-003', runId: 'run-3' });
    expect(r.decision.verdict).toBe('needs-approval');
    expect(s.calls).toHaveLength(0);
  });
});

describe('checkLine', () => {
  it('parses and decides without touching anything', () => {
    const r = checkLine({ config, now: () => clock }, { line: 'kubectl --context staging -n orders delete deploy/old', agent: 'p', scope: 'person' });
    expect(r.call?.class).toBe('destructive');
    expect(r.decision.verdict).toBe('needs-approval');
    const bad = checkLine({ config, now: () => clock }, { line: 'kubectl get pods && reboot', agent: 'p', scope: 'person' });
    expect(bad.parseError?.code).toBe('refused');
    expect(bad.decision.rule).toBe('parse.refused');
  });
});

describe('secret canary', () => {
  it('never appears in the outcome, the audit, or any row or byte of the database', async () => {
    const handle = broker.register('test:canary', CANARY);
    const b64 = Buffer.from(CANARY).toString('base64');
    const url = encodeURIComponent(CANARY + ' /&');
    broker.register('test:canary-url', CANARY + ' /&');
    const leaky = spy((req) => ({
      stdout: `value=${CANARY}\nb64=${b64}\nargs=${req.args.join(' ')}\n`,
      stderr: `url=${url} json="${CANARY}"`,
    }));
    const allowed = await runLine(deps(leaky), { line: `kubectl --context staging -n orders create secret generic web --from-literal=note=${handle}`, agent: 'k8s-specialist', scope: k8s, taskId: 'TASK-001', runId: 'run-1' });
    expect(allowed.executed).toBe(true);
    // The executor did substitute the value: the canary reached the process...
    expect(leaky.calls[0]?.args.join(' ')).toContain(CANARY);
    // ...and nothing that came back carries it.
    const denied = await runLine(deps(leaky), { line: `kubectl --context staging -n kube-system create secret generic web --from-literal=note=${handle}`, agent: 'k8s-specialist', scope: k8s, taskId: 'TASK-001', runId: 'run-1' });
    expect(denied.decision.verdict).toBe('deny');
    const failing = spy(() => ({ exitCode: 2, stderr: `boom ${CANARY} ${b64}` }));
    await runLine(deps(failing), { line: 'kubectl --context staging -n orders get pods', agent: 'k8s-specialist', scope: k8s, taskId: 'TASK-001', runId: 'run-1' });
    // The vault token from the environment is never in any output either.
    const tokenSpy = spy(() => ({ stdout: 'token hvs.VAULTTOKEN-abcdef123456' }));
    const tok = await runLine(deps(tokenSpy), { line: 'kubectl --context staging -n orders get pods', agent: 'k8s-specialist', scope: k8s });

    const forms = [CANARY, b64, encodeURIComponent(CANARY), Buffer.from(CANARY).toString('hex'), 'hvs.VAULTTOKEN-abcdef123456'];
    for (const r of [allowed, denied, tok]) {
      const text = JSON.stringify(r);
      for (const f of forms) expect(text, f).not.toContain(f);
    }
    expect(JSON.stringify(allowed.outcome)).toContain(handle);

    // Every table, every row.
    const tables = store.db.all<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table'").map((t) => t.name);
    expect(tables).toEqual(expect.arrayContaining(['tool_calls', 'approvals']));
    let rowsSeen = 0;
    for (const t of tables) {
      const rows = store.db.all(`SELECT * FROM "${t}"`);
      rowsSeen += rows.length;
      const text = JSON.stringify(rows);
      for (const f of forms) expect(text, `${t} holds ${f}`).not.toContain(f);
    }
    expect(rowsSeen).toBeGreaterThanOrEqual(4);
    expect(listAudit(store.db).some((r) => (r.stdout ?? '').includes(handle))).toBe(true);

    // The database files as bytes (main file, WAL and shared memory).
    const dbDir = path.join(dir, '.opscrew');
    store.close();
    store = openStore(path.join(dbDir, 'state.db')); // reopen so afterEach can close; also checkpoints
    let handleOnDisk = false;
    for (const f of fs.readdirSync(dbDir)) {
      const bytes = fs.readFileSync(path.join(dbDir, f));
      for (const form of forms) expect(bytes.includes(Buffer.from(form)), `${f} holds ${form}`).toBe(false);
      handleOnDisk ||= bytes.includes(Buffer.from(handle));
    }
    // The scan saw the real rows: the handle that replaced the value is on disk.
    expect(handleOnDisk).toBe(true);
  });
});
