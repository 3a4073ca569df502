// The crew end to end with real parts: a real local HTTP server as the target, real files in a
// temp files root, a real SQLite store, the real gate and queue. Each case gets its own workspace.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decideApproval, listApprovals } from '../mcp-server/core/approvals.js';
import { parseConfigText, type Config } from '../mcp-server/core/config.js';
import { loadSpecialists, type Specialist } from '../mcp-server/core/specialists.js';
import { openStore, type Store } from '../mcp-server/core/store.js';
import { resolveWorkspace, ensureWorkspace, type Workspace } from '../mcp-server/core/workspace.js';
import { createFolderQueue, type Claim } from '../mcp-server/core/queue.js';
import { runCrew, type CrewSummary } from '../agents/runtime/crew.js';
import type { CrewEvent } from '../agents/runtime/progress.js';
import { startHttpTargets, type HttpTargets } from './harness/http-targets.js';

const ROOT = join(import.meta.dirname, '..');
let http: HttpTargets;
const temps: string[] = [];
const stores: Store[] = [];

beforeAll(async () => {
  http = await startHttpTargets();
});
afterAll(async () => {
  await http.close();
  for (const s of stores) s.close();
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

interface Env {
  ws: Workspace;
  files: string;
  config: Config;
  store: Store;
  specialists: Specialist[];
  events: CrewEvent[];
  run(extra?: { concurrency?: number; signal?: AbortSignal }): Promise<CrewSummary>;
}

/** A throwaway workspace: config allowing 127.0.0.1 and a files root inside the temp dir. */
function setup(opts: { approval?: string; maxAttempts?: number } = {}): Env {
  const dir = mkdtempSync(join(tmpdir(), 'opscrew-crew-'));
  temps.push(dir);
  const files = join(dir, 'files');
  mkdirSync(files, { recursive: true });
  const ws = resolveWorkspace(join(dir, 'ws'));
  ensureWorkspace(ws);
  const yaml = [
    'mode: standard',
    'concurrency: 2',
    `max_attempts: ${opts.maxAttempts ?? 2}`,
    `timeouts: { command: 10s, task: 20s, approval: ${opts.approval ?? '20s'} }`,
    'files:',
    `  roots: [${files}]`,
    'http:',
    '  allow: [127.0.0.1]',
    '',
  ].join('\n');
  writeFileSync(ws.configPath, yaml);
  const c = parseConfigText(yaml, { file: ws.configPath, workspaceDir: ws.root, env: {} });
  if (!c.ok) throw new Error(c.message);
  const loaded = loadSpecialists(join(ROOT, 'agents', 'specialists'));
  if (!loaded.ok) throw new Error(loaded.message);
  // The shipped devops profile stops at mutate for files; these tests need a destructive step
  // that still goes through the approval path, so this crew's devops may ask for one.
  const specialists = loaded.value.map((s) =>
    s.name === 'devops-specialist' ? { ...s, tools: { ...s.tools, files: { mode: 'destructive' as const } } } : s,
  );
  const store = openStore(ws.dbPath);
  stores.push(store);
  const events: CrewEvent[] = [];
  const env: Env = {
    ws,
    files,
    config: c.value,
    store,
    specialists,
    events,
    run: (extra = {}) =>
      runCrew({
        workspace: ws,
        config: c.value,
        store,
        specialists,
        once: true,
        concurrency: extra.concurrency ?? 2,
        env: {},
        backoff: { baseMs: 50, maxMs: 200 },
        approvalPollMs: 25,
        heartbeatMs: 200,
        onProgress: (e) => events.push(e),
        ...(extra.signal ? { signal: extra.signal } : {}),
      }),
  };
  return env;
}

function drop(env: Env, name: string, text: string): void {
  writeFileSync(join(env.ws.backlog, name), text.replaceAll('BASE', http.base).replaceAll('ROOT', env.files));
}

function fileIn(env: Env, folder: 'backlog' | 'active' | 'completed', name: string): string {
  return readFileSync(join(env.ws[folder], name), 'utf8');
}

const hits = (prefix: string): number => http.requests.filter((r) => r.url.startsWith(prefix)).length;

function auditRows(env: Env, taskId: string): Array<{ seq: number; canonical: string; decision: string; rule: string }> {
  return env.store.db.all('SELECT seq, canonical, decision, rule FROM tool_calls WHERE task_id = ? ORDER BY seq', [taskId]);
}

describe('crew run --once (runbook brain)', () => {
  it('completes a task that curls the server and writes/reads files, with ticked criteria and evidence', async () => {
    const env = setup();
    writeFileSync(join(env.files, 'seed.txt'), 'hello from seed\n');
    drop(
      env,
      'deploy-config.md',
      `---
id: TASK-101
title: Deploy the app config
---
# Deploy the app config

## Preflight
\`\`\`sh
curl -fsS BASE/health
# expect: ok
\`\`\`

## Steps
\`\`\`sh
export DIR=ROOT/app
mkdir -p $DIR
cp ROOT/seed.txt $DIR/config.txt
curl -fsS BASE/echo/deployed
# expect: "method":"GET"
\`\`\`

## Acceptance Criteria
- [ ] The config is in place
  \`\`\`sh
  cat ROOT/app/config.txt
  # expect: hello from seed
  \`\`\`
- [ ] The service is healthy
  \`\`\`sh
  curl -fsS BASE/health
  # expect: /^ok$/m
  \`\`\`
- [ ] N/A - multi-arch builds are out of scope
`,
    );
    const t0 = performance.now();
    const summary = await env.run();
    const ms = performance.now() - t0;
    expect(summary.completed).toEqual(['TASK-101']);
    expect(summary.blocked).toEqual([]);
    expect(readFileSync(join(env.files, 'app', 'config.txt'), 'utf8')).toBe('hello from seed\n');
    expect(hits('/echo/deployed')).toBe(1);
    const done = fileIn(env, 'completed', 'deploy-config.md');
    expect(done).toMatch(/^status: completed$/m);
    expect(done).toContain('- [x] The config is in place');
    expect(done).toContain('- [x] The service is healthy');
    expect(done).toContain('- [x] N/A - multi-arch builds are out of scope');
    expect(done).toContain('## Verification Evidence');
    expect(done).toContain(`cat ${env.files}/app/config.txt`);
    expect(readdirSync(env.ws.active).filter((n) => n.endsWith('.md'))).toEqual([]);
    // Every command ran as the routed specialist and was audited.
    const rows = auditRows(env, 'TASK-101');
    expect(rows.length).toBe(6);
    expect(rows.every((r) => r.decision === 'allow')).toBe(true);
    const agents = env.store.db.all<{ agent: string }>('SELECT DISTINCT agent FROM tool_calls WHERE task_id = ?', ['TASK-101']);
    expect(agents).toEqual([{ agent: 'devops-specialist' }]);
    // Structured log lines were written.
    const logs = readdirSync(env.ws.logsDir).filter((n) => /^crew-\d{8}\.jsonl$/.test(n));
    expect(logs.length).toBe(1);
    const lines = readFileSync(join(env.ws.logsDir, logs[0]!), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as CrewEvent);
    expect(lines.some((l) => l.type === 'finished' && l.taskId === 'TASK-101' && l.outcome === 'completed')).toBe(true);
    console.log(`[timing] one-task completed run: ${ms.toFixed(0)} ms`);
  });

  it('blocks a policy refusal at once: nothing runs after the refused line, no retry', async () => {
    const env = setup({ maxAttempts: 3 });
    drop(
      env,
      'wipe.md',
      `---
id: TASK-102
agent: devops-specialist
---
# Clean up

## Steps
\`\`\`sh
curl -fsS BASE/echo/refusal-before
rm -f /etc/opscrew-never-here.conf
curl -fsS BASE/echo/refusal-after
\`\`\`

## Acceptance Criteria
- [ ] Healthy
  \`\`\`sh
  curl -fsS BASE/echo/refusal-check
  \`\`\`

## Rollback
\`\`\`sh
curl -fsS BASE/echo/refusal-rollback
\`\`\`
`,
    );
    const summary = await env.run();
    expect(summary.completed).toEqual([]);
    expect(summary.blocked.map((b) => b.id)).toEqual(['TASK-102']);
    expect(summary.blocked[0]?.reason).toMatch(/refused by policy/);
    expect(summary.blocked[0]?.reason).toContain('rm -f /etc/opscrew-never-here.conf');
    expect(summary.runs.filter((r) => r.taskId === 'TASK-102').length).toBe(1);
    expect(hits('/echo/refusal-before')).toBe(1);
    expect(hits('/echo/refusal-after')).toBe(0);
    expect(hits('/echo/refusal-check')).toBe(0);
    expect(hits('/echo/refusal-rollback')).toBe(0);
    const rows = auditRows(env, 'TASK-102');
    expect(rows.map((r) => r.decision)).toEqual(['allow', 'deny']);
    expect(rows[1]?.rule).toMatch(/^scope\./);
    const back = fileIn(env, 'backlog', 'wipe.md');
    expect(back).toMatch(/^status: blocked$/m);
    expect(back).toMatch(/^blocked_reason: .*refused by policy/m);
  });

  it('rolls back a verification failure, retries with backoff, then blocks after max_attempts', async () => {
    const env = setup({ maxAttempts: 2 });
    drop(
      env,
      'greeting.md',
      `---
id: TASK-103
title: Make the greeting say goodbye
---
# Make the greeting say goodbye

## Steps
\`\`\`sh
curl -fsS BASE/echo/verify-step
\`\`\`

## Acceptance Criteria
- [ ] The greeting says goodbye
  \`\`\`sh
  curl -fsS 'BASE/text?body=hello'
  # expect: goodbye
  \`\`\`

## Rollback
\`\`\`sh
curl -fsS BASE/echo/verify-rollback
\`\`\`
`,
    );
    const summary = await env.run();
    expect(summary.completed).toEqual([]);
    expect(summary.blocked.map((b) => b.id)).toEqual(['TASK-103']);
    const reason = summary.blocked[0]?.reason ?? '';
    expect(reason).toContain('failed after 2 of 2 attempts');
    expect(reason).toContain('goodbye');
    expect(hits('/echo/verify-step')).toBe(2);
    expect(hits('/echo/verify-rollback')).toBe(2);
    const runs = summary.runs.filter((r) => r.taskId === 'TASK-103');
    expect(runs.map((r) => [r.attempt, r.outcome])).toEqual([
      [1, 'failed'],
      [2, 'failed'],
    ]);
    // The retry waited for the backoff (50 ms after attempt 1).
    expect(runs[1]!.startedMs - runs[0]!.endedMs).toBeGreaterThanOrEqual(45);
    expect(env.events.filter((e) => e.type === 'retry-scheduled' && e.taskId === 'TASK-103').length).toBe(1);
    const back = fileIn(env, 'backlog', 'greeting.md');
    expect(back).toMatch(/^status: blocked$/m);
    expect(back).toMatch(/^attempts: 2$/m);
    expect(back).toContain('## Verification Evidence');
    expect(back).toContain('- [ ] The greeting says goodbye');
    const dbRuns = env.store.db.all<{ outcome: string }>('SELECT outcome FROM runs WHERE task_id = ? ORDER BY started_ms', ['TASK-103']);
    expect(dbRuns.map((r) => r.outcome)).toEqual(['failed', 'blocked']);
  });

  it('runs a dependent task only after its dependency completed', async () => {
    const env = setup();
    const mk = (id: string, slug: string, dep?: string): string => `---
id: ${id}
priority: ${dep ? 'critical' : 'low'}
${dep ? `depends_on: [${dep}]\n` : ''}---
# ${slug}

## Steps
\`\`\`sh
curl -fsS 'BASE/slow?ms=150'
curl -fsS BASE/echo/${slug}
\`\`\`

## Acceptance Criteria
- [ ] Done
  \`\`\`sh
  curl -fsS BASE/health
  \`\`\`
`;
    // The dependent has the higher priority: only the dependency rule can hold it back.
    drop(env, 'second.md', mk('TASK-202', 'dep-second', 'TASK-201'));
    drop(env, 'first.md', mk('TASK-201', 'dep-first'));
    const summary = await env.run({ concurrency: 2 });
    expect(summary.completed).toEqual(['TASK-201', 'TASK-202']);
    const first = summary.runs.find((r) => r.taskId === 'TASK-201')!;
    const second = summary.runs.find((r) => r.taskId === 'TASK-202')!;
    expect(second.startedMs).toBeGreaterThanOrEqual(first.endedMs);
    const order = http.requests.map((r) => r.url).filter((u) => u.startsWith('/echo/dep-'));
    expect(order).toEqual(['/echo/dep-first', '/echo/dep-second']);
  });

  it('runs a destructive step pre-approved in the task file', async () => {
    const env = setup();
    writeFileSync(join(env.files, 'stale.lock'), 'x');
    drop(
      env,
      'unlock.md',
      `---
id: TASK-301
approve:
  - rm -f ROOT/stale.lock
---
# Remove the stale lock

## Steps
\`\`\`sh
rm -f ROOT/stale.lock
\`\`\`

## Acceptance Criteria
- [ ] The lock is gone
  \`\`\`sh
  test -e ROOT/stale.lock
  # expect exit: 1
  \`\`\`
`,
    );
    const summary = await env.run();
    expect(summary.completed).toEqual(['TASK-301']);
    expect(existsSync(join(env.files, 'stale.lock'))).toBe(false);
    const used = listApprovals(env.store.db, { taskId: 'TASK-301' });
    expect(used.map((a) => [a.source, a.state])).toEqual([['task-file', 'used']]);
    expect(env.events.some((e) => e.type === 'awaiting-approval')).toBe(false);
  });

  it('waits for a person on a destructive step (awaiting-approval), then continues once approved', async () => {
    const env = setup();
    writeFileSync(join(env.files, 'stale.lock'), 'x');
    drop(
      env,
      'unlock.md',
      `---
id: TASK-302
---
# Remove the stale lock

## Steps
\`\`\`sh
rm -f ROOT/stale.lock
curl -fsS BASE/echo/after-approval
\`\`\`

## Acceptance Criteria
- [ ] The lock is gone
  \`\`\`sh
  test -e ROOT/stale.lock
  # expect exit: 1
  \`\`\`
`,
    );
    const running = env.run();
    const pending = await waitFor(() => listApprovals(env.store.db, { taskId: 'TASK-302', state: 'pending' })[0]);
    // The file tells a person what is going on (written just after the request is filed), and
    // nothing after the gated line has run.
    const active = await waitFor(() => {
      const text = fileIn(env, 'active', 'unlock.md');
      return /^status: awaiting-approval$/m.test(text) ? text : undefined;
    });
    expect(active).toContain(`approval_request: ${pending.id}`);
    expect(existsSync(join(env.files, 'stale.lock'))).toBe(true);
    expect(hits('/echo/after-approval')).toBe(0);
    // The agent cannot approve its own request; a person can.
    expect(decideApproval(env.store.db, pending.id, { by: 'devops-specialist', approve: true }).ok).toBe(false);
    const d = decideApproval(env.store.db, pending.id, { by: 'person:tester', approve: true });
    expect(d.ok).toBe(true);
    const summary = await running;
    expect(summary.completed).toEqual(['TASK-302']);
    expect(existsSync(join(env.files, 'stale.lock'))).toBe(false);
    expect(hits('/echo/after-approval')).toBe(1);
    const done = fileIn(env, 'completed', 'unlock.md');
    expect(done).not.toContain('approval_request:');
    expect(listApprovals(env.store.db, { taskId: 'TASK-302' }).map((a) => a.state)).toEqual(['used']);
  });

  it('blocks when a person denies the request, and when nobody decides in time', async () => {
    const env = setup({ approval: '600ms' });
    const mk = (id: string, lock: string): string => `---
id: ${id}
---
# Remove ${lock}

## Steps
\`\`\`sh
rm -f ROOT/${lock}
\`\`\`

## Acceptance Criteria
- [ ] Gone
  \`\`\`sh
  test -e ROOT/${lock}
  # expect exit: 1
  \`\`\`
`;
    writeFileSync(join(env.files, 'a.lock'), 'x');
    writeFileSync(join(env.files, 'b.lock'), 'x');
    drop(env, 'deny.md', mk('TASK-303', 'a.lock'));
    drop(env, 'timeout.md', mk('TASK-304', 'b.lock'));
    const running = env.run({ concurrency: 1 });
    const first = await waitFor(() => listApprovals(env.store.db, { taskId: 'TASK-303', state: 'pending' })[0]);
    expect(decideApproval(env.store.db, first.id, { by: 'person:tester', approve: false }).ok).toBe(true);
    const summary = await running;
    expect(summary.completed).toEqual([]);
    const byId = Object.fromEntries(summary.blocked.map((b) => [b.id, b.reason]));
    expect(byId['TASK-303']).toMatch(/denied by a person/);
    expect(byId['TASK-304']).toMatch(/not decided within timeouts.approval/);
    expect(existsSync(join(env.files, 'a.lock'))).toBe(true);
    expect(existsSync(join(env.files, 'b.lock'))).toBe(true);
    expect(fileIn(env, 'backlog', 'timeout.md')).toMatch(/^status: blocked$/m);
  });

  it('blocks an unroutable task without running anything', async () => {
    const env = setup();
    drop(
      env,
      'nobody.md',
      `---
id: TASK-401
---
# Reach into the cluster

## Steps
\`\`\`sh
curl -fsS BASE/echo/unroutable
kubectl --context prod -n kube-system delete pod x
\`\`\`

## Acceptance Criteria
- [ ] ok
  \`\`\`sh
  curl -fsS BASE/health
  \`\`\`
`,
    );
    const summary = await env.run();
    expect(summary.blocked.map((b) => b.id)).toEqual(['TASK-401']);
    expect(summary.blocked[0]?.reason).toContain('kubectl --context prod -n kube-system delete pod x');
    expect(hits('/echo/unroutable')).toBe(0);
    expect(auditRows(env, 'TASK-401')).toEqual([]);
  });
});

async function waitFor<T>(fn: () => T | undefined, timeoutMs = 10_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error('waitFor timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('crew daemon (watching the backlog)', () => {
  const task = (id: string, step: string, extra = ''): string => `---
id: ${id}
${extra}---
# Daemon task ${id}

## Steps
\`\`\`sh
${step}
\`\`\`

## Acceptance Criteria
- [ ] Healthy
  \`\`\`sh
  curl -fsS BASE/health
  \`\`\`
`;

  it('picks up a dropped file, and an edit that unblocks a blocked task; stops on the signal', async () => {
    const env = setup();
    const stop = new AbortController();
    const claimedAt = new Map<string, number>();
    const crew = runCrew({
      workspace: env.ws,
      config: env.config,
      store: env.store,
      specialists: env.specialists,
      once: false,
      pollMs: 2000, // long: the watcher, not the poll, should wake the crew
      env: {},
      signal: stop.signal,
      onProgress: (e) => {
        if (e.type === 'claimed' && e.taskId) claimedAt.set(e.taskId, Date.now());
      },
    });
    await new Promise((r) => setTimeout(r, 150));
    const dropped = Date.now();
    drop(env, 'dropped.md', task('TASK-501', 'curl -fsS BASE/echo/daemon-dropped'));
    await waitFor(() => (existsSync(join(env.ws.completed, 'dropped.md')) ? true : undefined));
    const reaction = (claimedAt.get('TASK-501') ?? Infinity) - dropped;
    console.log(`[timing] daemon drop-to-claim: ${reaction} ms`);
    expect(reaction).toBeLessThan(1500);

    // A blocked task is not picked up until a person edits the block away.
    drop(env, 'held.md', task('TASK-502', 'curl -fsS BASE/echo/daemon-unblocked', 'status: blocked\nblocked_reason: waiting for a person\n'));
    await new Promise((r) => setTimeout(r, 300));
    expect(hits('/echo/daemon-unblocked')).toBe(0);
    const held = join(env.ws.backlog, 'held.md');
    writeFileSync(held, readFileSync(held, 'utf8').replace('status: blocked\nblocked_reason: waiting for a person\n', ''));
    await waitFor(() => (existsSync(join(env.ws.completed, 'held.md')) ? true : undefined));
    expect(hits('/echo/daemon-unblocked')).toBe(1);

    stop.abort();
    const summary = await crew;
    expect(summary.completed.sort()).toEqual(['TASK-501', 'TASK-502']);
  });

  it('on stop, releases a task that does not finish within the grace period; nothing is left in active', async () => {
    const env = setup();
    const stop = new AbortController();
    drop(env, 'slow.md', task('TASK-503', "curl -fsS 'BASE/slow?ms=5000'"));
    const t0 = Date.now();
    const crew = runCrew({
      workspace: env.ws,
      config: env.config,
      store: env.store,
      specialists: env.specialists,
      once: false,
      pollMs: 100,
      graceMs: 200,
      env: {},
      signal: stop.signal,
    });
    await waitFor(() => (existsSync(join(env.ws.active, 'slow.md')) ? true : undefined));
    await new Promise((r) => setTimeout(r, 100));
    stop.abort();
    const summary = await crew;
    const took = Date.now() - t0;
    console.log(`[timing] graceful stop with a 5 s command in flight: ${took} ms`);
    expect(took).toBeLessThan(3000);
    expect(summary.completed).toEqual([]);
    expect(summary.failed.map((f) => f.id)).toEqual(['TASK-503']);
    expect(readdirSync(env.ws.active).filter((n) => n.endsWith('.md'))).toEqual([]);
    const back = fileIn(env, 'backlog', 'slow.md');
    expect(back).not.toMatch(/^status:/m);
    expect(back).toMatch(/^attempts: 1$/m);
    const runs = env.store.db.all<{ outcome: string }>('SELECT outcome FROM runs WHERE task_id = ?', ['TASK-503']);
    expect(runs.map((r) => r.outcome)).toEqual(['released']);
  });
});

describe('crew scheduling and limits', () => {
  const slowTask = (id: string, extra = '', ms = 200): string => `---
id: ${id}
${extra}---
# Slow ${id}

## Steps
\`\`\`sh
curl -fsS 'BASE/slow?ms=${ms}'
\`\`\`

## Acceptance Criteria
- [ ] Healthy
  \`\`\`sh
  curl -fsS BASE/health
  \`\`\`
`;
  const overlaps = (s: CrewSummary, a: string, b: string): boolean => {
    const x = s.runs.find((r) => r.taskId === a)!;
    const y = s.runs.find((r) => r.taskId === b)!;
    return x.startedMs < y.endedMs && y.startedMs < x.endedMs;
  };

  it('runs tasks in parallel up to concurrency, but never two sharing a resource or past a specialist cap', async () => {
    const env = setup();
    drop(env, 'p1.md', slowTask('TASK-601'));
    drop(env, 'p2.md', slowTask('TASK-602'));
    drop(env, 'r1.md', slowTask('TASK-603', 'resources: [db:main]\n'));
    drop(env, 'r2.md', slowTask('TASK-604', 'resources: [db:main]\n'));
    const s1 = await env.run({ concurrency: 4 });
    expect(s1.completed.length).toBe(4);
    expect(overlaps(s1, 'TASK-601', 'TASK-602')).toBe(true);
    expect(overlaps(s1, 'TASK-603', 'TASK-604')).toBe(false);

    // The same crew with devops-specialist capped at one task at a time.
    const env2 = setup();
    env2.specialists.splice(0, env2.specialists.length, ...env2.specialists.map((s) => (s.name === 'devops-specialist' ? { ...s, maxConcurrency: 1 } : s)));
    drop(env2, 'c1.md', slowTask('TASK-611', 'agent: devops-specialist\n'));
    drop(env2, 'c2.md', slowTask('TASK-612', 'agent: devops-specialist\n'));
    const s2 = await env2.run({ concurrency: 4 });
    expect(s2.completed.length).toBe(2);
    expect(overlaps(s2, 'TASK-611', 'TASK-612')).toBe(false);
  });

  it('blocks on a failed Preflight without running Steps or Rollback', async () => {
    const env = setup();
    drop(
      env,
      'pre.md',
      `---
id: TASK-621
---
# Needs a healthy target

## Preflight
\`\`\`sh
curl -fsS BASE/status/503
\`\`\`

## Steps
\`\`\`sh
curl -fsS BASE/echo/preflight-step
\`\`\`

## Acceptance Criteria
- [ ] ok
  \`\`\`sh
  curl -fsS BASE/health
  \`\`\`

## Rollback
\`\`\`sh
curl -fsS BASE/echo/preflight-rollback
\`\`\`
`,
    );
    const s = await env.run();
    expect(s.blocked.map((b) => b.id)).toEqual(['TASK-621']);
    expect(s.blocked[0]?.reason).toMatch(/^Preflight failed, nothing was changed/);
    expect(s.runs.length).toBe(1);
    expect(hits('/echo/preflight-step')).toBe(0);
    expect(hits('/echo/preflight-rollback')).toBe(0);
  });

  it('aborts a task past its timeout and blocks it after its attempts', async () => {
    const env = setup();
    drop(env, 'slow.md', slowTask('TASK-631', 'timeout: 300ms\nmax_attempts: 1\n', 5000));
    const t0 = Date.now();
    const s = await env.run();
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(s.blocked.map((b) => b.id)).toEqual(['TASK-631']);
    expect(s.blocked[0]?.reason).toMatch(/failed after 1 of 1 attempts: .*longer than its timeout/);
  });

  it('blocks a task with a manual criterion before running anything (the runbook brain cannot attest)', async () => {
    const env = setup();
    drop(
      env,
      'manual.md',
      `---
id: TASK-641
---
# Manual check

## Steps
\`\`\`sh
curl -fsS BASE/echo/manual-step
\`\`\`

## Acceptance Criteria
- [ ] Someone confirmed the bot reconnects
`,
    );
    const s = await env.run();
    expect(s.blocked[0]?.reason).toContain('needs a verification command or N/A');
    expect(hits('/echo/manual-step')).toBe(0);
  });
});

describe('file blocks and tasks the runbook brain cannot run', () => {
  it('writes a file block through the files tool (exact bytes, inside the roots) and proves it', async () => {
    const env = setup();
    drop(
      env,
      'fileblock.md',
      `---
id: TASK-651
---
# Write the app config

## Steps
\`\`\`sh
curl -fsS BASE/echo/fileblock-step
\`\`\`

\`\`\`ini file=ROOT/app.ini
[app]
port = 8080
\`\`\`

## Acceptance Criteria
- [ ] The config is in place
  \`\`\`sh
  cat ROOT/app.ini
  # expect: port = 8080
  \`\`\`
`,
    );
    const s = await env.run();
    expect(s.completed).toEqual(['TASK-651']);
    expect(readFileSync(join(env.files, 'app.ini'), 'utf8')).toBe('[app]\nport = 8080\n');
    expect(hits('/echo/fileblock-step')).toBe(1);
  });

  it('refuses a file block outside the files roots, running nothing after it', async () => {
    const env = setup();
    drop(
      env,
      'escape.md',
      `---
id: TASK-653
---
# Write outside the roots

## Steps
\`\`\`ini file=/etc/opscrew-escape.ini
[x]
\`\`\`

\`\`\`sh
curl -fsS BASE/echo/after-escape
\`\`\`

## Acceptance Criteria
- [ ] N/A - example
`,
    );
    const s = await env.run();
    expect(s.blocked.map((b) => b.id)).toEqual(['TASK-653']);
    expect(s.blocked[0]?.reason).toMatch(/refused by policy \(scope\.path\)/);
    expect(existsSync('/etc/opscrew-escape.ini')).toBe(false);
    expect(hits('/echo/after-escape')).toBe(0);
  });

  it('blocks a task without criteria, running nothing', async () => {
    const env = setup();
    drop(env, 'nocrit.md', `---\nid: TASK-652\n---\n# Nothing to prove\n\n## Steps\n\`\`\`sh\ncurl -fsS BASE/echo/nocrit-step\n\`\`\`\n`);
    const s = await env.run();
    const byId = Object.fromEntries(s.blocked.map((b) => [b.id, b.reason]));
    expect(byId['TASK-652']).toContain('no acceptance criteria');
    expect(hits('/echo/nocrit-step')).toBe(0);
  });
});

describe('crew crash recovery', () => {
  it('returns a task whose worker died (lease expired) to the backlog at start, then runs it as attempt 2', async () => {
    const env = setup({ maxAttempts: 3 });
    drop(
      env,
      'orphan.md',
      `---
id: TASK-701
---
# Orphaned by a crash

## Steps
\`\`\`sh
curl -fsS BASE/echo/orphan
\`\`\`

## Acceptance Criteria
- [ ] ok
  \`\`\`sh
  curl -fsS BASE/health
  \`\`\`
`,
    );
    // A "previous daemon" claims the task with a short lease and dies without finishing.
    const dead = createFolderQueue({ workspace: env.ws, store: env.store, leaseMs: 1, holder: 'dead-host:1:abc' });
    await dead.scan();
    const claim = await dead.claim();
    expect(claim?.taskId).toBe('TASK-701');
    expect(existsSync(join(env.ws.active, 'orphan.md'))).toBe(true);
    await new Promise((r) => setTimeout(r, 20));
    const s = await env.run();
    expect(s.completed).toEqual(['TASK-701']);
    expect(s.runs.map((r) => [r.taskId, r.attempt])).toEqual([['TASK-701', 2]]);
    expect(env.events.some((e) => e.type === 'reconciled')).toBe(true);
    expect(fileIn(env, 'completed', 'orphan.md')).toMatch(/^attempts: 2$/m);
    expect(hits('/echo/orphan')).toBe(1);
  });
});

/** A one-step task that ran before the crew under test started: its file and a finished run. */
function ranEarlier(id: string): string {
  return `---
id: ${id}
---
# Ran before this crew started

## Steps
\`\`\`sh
curl -fsS BASE/health
\`\`\`

## Acceptance Criteria
- [ ] N/A - nothing to check
`;
}

/** Claims and completes a task the way a crew that is gone now did, `agoMs` ago; returns the claim. */
async function finishedBefore(env: Env, id: string, agoMs: number): Promise<Claim> {
  const q = createFolderQueue({ workspace: env.ws, store: env.store, holder: 'gone:1:abc', now: () => Date.now() - agoMs });
  await q.scan();
  const c = await q.claim({ id });
  if (!c) throw new Error(`${id} was not claimable`);
  const done = await q.complete(c);
  if (!done.ok) throw new Error(done.message);
  return c;
}

describe('retrospectives a stopped crew did not write', () => {
  it('are written by the next crew from the recorded run; recent runs are left to the crew that owns them', async () => {
    const env = setup();
    drop(env, 'old.md', ranEarlier('TASK-711'));
    drop(env, 'recent.md', ranEarlier('TASK-712'));
    // A "previous crew" ran both and stopped before writing their retrospectives: one ended a
    // minute ago, the other just now (as a live peer's run would have).
    const c1 = await finishedBefore(env, 'TASK-711', 60_000);
    const c2 = await finishedBefore(env, 'TASK-712', 0);
    const retroOf = (runId: string | undefined) => env.store.db.get<{ file: string; body: string }>('SELECT file, body FROM retrospectives WHERE run_id = ?', [runId ?? '']);
    expect(retroOf(c1.runId)).toBeUndefined();

    const s = await env.run();
    expect(s.runs).toEqual([]);
    const row = retroOf(c1.runId);
    expect(row?.body).toContain('TASK-711');
    expect(readFileSync(join(env.ws.root, row?.file ?? 'missing'), 'utf8')).toBe(row?.body);
    expect(retroOf(c2.runId)).toBeUndefined();
    expect(env.events.some((e) => e.type === 'reconciled' && (e.data as { retrospectivesRecovered?: number } | undefined)?.retrospectivesRecovered === 1)).toBe(true);

    // Written once: the next start finds nothing missing for that run.
    const files = readdirSync(env.ws.retrospectives).filter((f) => f.includes('TASK-711'));
    await env.run();
    expect(readdirSync(env.ws.retrospectives).filter((f) => f.includes('TASK-711'))).toEqual(files);
    expect(files).toHaveLength(1);
  });
});

describe('retrospective recovery in a running daemon', () => {
  it('recovers a missing retrospective once across many reconciles, without a narration, and never over one that exists', async () => {
    const env = setup();
    drop(env, 'gap.md', ranEarlier('TASK-721'));
    drop(env, 'kept.md', ranEarlier('TASK-722'));
    const c1 = await finishedBefore(env, 'TASK-721', 60_000);
    const c2 = await finishedBefore(env, 'TASK-722', 60_000);
    // TASK-722's run already has its retrospective (written by the crew that ran it).
    const { recordRunKnowledge } = await import('../mcp-server/core/retro.js');
    const kept = recordRunKnowledge({ db: env.store.db, root: env.ws.root, retrospectivesDir: env.ws.retrospectives, now: Date.now }, { runId: c2.runId });
    const keptText = readFileSync(kept?.retroFile ?? 'missing', 'utf8');

    let narrations = 0;
    const stop = new AbortController();
    const events: CrewEvent[] = [];
    const crew = runCrew({
      workspace: env.ws,
      config: env.config,
      store: env.store,
      specialists: env.specialists,
      once: false,
      reconcileMs: 30, // many reconciles while the first recovery batch is still waiting
      pollMs: 20,
      env: {},
      signal: stop.signal,
      brainImpl: {
        name: 'counting',
        run: () => Promise.reject(new Error('no task should run')),
        narrate: () => {
          narrations++;
          return Promise.resolve('a narrative');
        },
      },
      onProgress: (e) => events.push(e),
    });
    await waitFor(() => (env.store.db.get('SELECT 1 AS x FROM retrospectives WHERE run_id = ?', [c1.runId]) ? true : undefined));
    await new Promise((r) => setTimeout(r, 400));
    stop.abort();
    await crew;
    const recovered = events.reduce((n, e) => n + ((e.data as { retrospectivesRecovered?: number } | undefined)?.retrospectivesRecovered ?? 0), 0);
    expect(recovered).toBe(1);
    expect(narrations).toBe(0);
    expect(env.store.db.all('SELECT run_id FROM retrospectives ORDER BY run_id')).toHaveLength(2);
    expect(readdirSync(env.ws.retrospectives).filter((f) => f.includes('TASK-721'))).toHaveLength(1);
    expect(readFileSync(kept?.retroFile ?? 'missing', 'utf8')).toBe(keptText);
  });
});

describe('crew with a brain that settles the task itself', () => {
  it('records a settled outcome without completing the task a second time', async () => {
    const env = setup();
    drop(env, 'settle.md', `---\nid: TASK-801\n---\n# Settle\n\n## Acceptance Criteria\n- [ ] N/A - nothing to check\n`);
    const own = createFolderQueue({ workspace: env.ws, store: env.store });
    const seen: string[] = [];
    const s = await runCrew({
      workspace: env.ws,
      config: env.config,
      store: env.store,
      specialists: env.specialists,
      once: true,
      env: {},
      onProgress: (e) => seen.push(e.type),
      brainImpl: {
        name: 'settling',
        async run(input) {
          // What the Claude brain's task_submit does: complete with the crew's own claim.
          const r = await own.complete(input.claim!, { set: { run_id: input.runId } });
          expect(r.ok).toBe(true);
          return { kind: 'completed', reason: '', evidence: [], tickCriteria: [], steps: [], vars: {}, settled: true };
        },
      },
    });
    expect(s.completed).toEqual(['TASK-801']);
    expect(seen).not.toContain('error');
    expect(fileIn(env, 'completed', 'settle.md')).toMatch(/^status: completed$/m);
  });
});
