// The crew daemon as a real OS process (`node bin/opscrew.js run --workspace DIR`, no --once):
// a file dropped into its backlog is picked up and completed with evidence against a real HTTP
// target and a real sshd; SIGTERM mid-step either lets the task finish or releases it within the
// grace period, and the process exits with nothing left in active/. Needs `npm run build`.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../mcp-server/core/store.js';
import { resolveWorkspace, ensureWorkspace, type Workspace } from '../mcp-server/core/workspace.js';
import { startHttpTargets, type HttpTargets } from './harness/http-targets.js';
import { requireBinaries } from './harness/require.js';
import { startSshd, type SshdHandle } from './harness/sshd.js';
import { startCounterServer, type CounterServer } from './fixtures/crew/counter-server.js';
import { readCrewLog, requireBuiltCli, startDaemonReady, waitExit, waitUntil, type Daemon } from './fixtures/crew/daemon.js';

const req = requireBinaries('sshd:openssh-server', 'ssh:openssh-client', 'ssh-keygen:openssh-client');
const temps: string[] = [];
const daemons: Daemon[] = [];

afterAll(async () => {
  for (const d of daemons) {
    d.kill('SIGKILL');
    await d.exited;
  }
  for (const t of temps) rmSync(t, { recursive: true, force: true });
});

function workspace(configLines: string[]): { ws: Workspace; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'opscrew-daemon-'));
  temps.push(dir);
  const ws = resolveWorkspace(join(dir, 'ws'));
  ensureWorkspace(ws);
  writeFileSync(ws.configPath, [...configLines, ''].join('\n'));
  return { ws, dir };
}

const mdFiles = (dir: string): string[] => readdirSync(dir).filter((n) => n.endsWith('.md'));

function runRows(ws: Workspace, taskId: string): Array<{ attempt: number; outcome: string | null; reason: string | null; started_ms: number; ended_ms: number | null }> {
  const store = openStore(ws.dbPath);
  try {
    return store.db.all('SELECT attempt, outcome, reason, started_ms, ended_ms FROM runs WHERE task_id = ? ORDER BY started_ms', [taskId]);
  } finally {
    store.close();
  }
}

describe.skipIf(req.skip)(`opscrew run as a daemon: drop a file, it is done with proof ${req.reason}`, () => {
  let http: HttpTargets;
  let sshd: SshdHandle;

  beforeAll(async () => {
    requireBuiltCli();
    [http, sshd] = await Promise.all([startHttpTargets(), startSshd({ timeoutMs: 20_000 })]);
  }, 60_000);
  afterAll(async () => {
    await http?.close();
    await sshd?.stop();
  });

  it('a task dropped into the running daemon\'s backlog reaches completed with evidence from the HTTP target and the ssh host', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'opscrew-remote-'));
    temps.push(dir);
    const { ws } = workspace([
      'mode: standard',
      'concurrency: 2',
      'timeouts: { command: 20s, task: 60s }',
      'files:',
      `  roots: [${dir}]`,
      'http:',
      '  allow: [127.0.0.1]',
      'ssh:',
      '  hosts:',
      `    box: { host: 127.0.0.1, port: ${sshd.port}, user: ${sshd.user}, identity_file: ${sshd.identityFile}, known_hosts: ${sshd.knownHosts} }`,
    ]);
    // The remote side's file (sshd runs on this machine, so a local path is the remote path).
    const remote = join(dir, 'remote');
    mkdirSync(remote);
    const marker = `release-${process.pid}-${Date.now()}`;
    writeFileSync(join(remote, 'VERSION'), `${marker}\n`);

    const t0 = Date.now();
    const d = await startDaemonReady(ws.root);
    daemons.push(d);
    const startMs = Date.now() - t0;
    // Let it finish its start-up reconcile and install the backlog watcher before the drop.
    await new Promise((r) => setTimeout(r, 500));

    const task = `---
id: TASK-901
title: Check the release on box
---
# Check the release on box

## Steps
\`\`\`sh
ssh box ls ${remote}
# expect: VERSION
curl -fsS ${http.base}/echo/daemon-drop-step
\`\`\`

## Acceptance Criteria
- [ ] The release marker is on box
  \`\`\`sh
  ssh box cat ${remote}/VERSION
  # expect: ${marker}
  \`\`\`
- [ ] The service answers
  \`\`\`sh
  curl -fsS ${http.base}/health
  # expect: /^ok$/m
  \`\`\`
`;
    const dropped = Date.now();
    writeFileSync(join(ws.backlog, 'check-release.md'), task);
    const done = join(ws.completed, 'check-release.md');
    await waitUntil(() => (existsSync(done) ? true : undefined), 30_000, 'check-release.md in completed/').catch((e: unknown) => {
      throw new Error(`${String(e)}\ndaemon stderr:\n${d.stderr()}\nlog:\n${JSON.stringify(readCrewLog(ws.logsDir), null, 1)}\nbacklog: ${mdFiles(ws.backlog).join(', ')}`);
    });
    const dropToDone = Date.now() - dropped;

    const text = readFileSync(done, 'utf8');
    expect(text).toMatch(/^status: completed$/m);
    expect(text).toMatch(/^attempts: 1$/m);
    expect(text).toContain('- [x] The release marker is on box');
    expect(text).toContain('- [x] The service answers');
    expect(text).toContain('## Verification Evidence');
    const evidence = text.slice(text.indexOf('## Verification Evidence'));
    expect(evidence).toContain(`ssh box cat ${remote}/VERSION`);
    expect(evidence).toContain(marker); // the remote file's content, read over ssh, is the proof
    expect(evidence).toContain(`curl -fsS ${http.base}/health`);
    expect(http.requests.filter((r) => r.url === '/echo/daemon-drop-step').length).toBe(1);
    expect(mdFiles(ws.active)).toEqual([]);
    expect(mdFiles(ws.backlog)).toEqual([]);

    // Every command went through the gate and the audit log, as the routed specialist.
    const store = openStore(ws.dbPath);
    try {
      const rows = store.db.all<{ canonical: string; decision: string; agent: string; exit_code: number | null }>(
        'SELECT canonical, decision, agent, exit_code FROM tool_calls WHERE task_id = ? ORDER BY seq',
        ['TASK-901'],
      );
      expect(rows.map((r) => r.decision)).toEqual(['allow', 'allow', 'allow', 'allow']);
      expect(rows.every((r) => r.agent === 'devops-specialist')).toBe(true);
      expect(rows.filter((r) => r.canonical.startsWith('ssh box ')).length).toBe(2);
      expect(rows.every((r) => r.exit_code === 0)).toBe(true);
    } finally {
      store.close();
    }

    // Drop-to-claim from the daemon's own JSON log.
    // The daemon logs 'finished' just after the file lands in completed/, so wait for that line.
    const finished = await waitUntil(
      () => readCrewLog(ws.logsDir).find((e) => e.type === 'finished' && e.taskId === 'TASK-901'),
      10_000,
      "the 'finished' line for TASK-901 in .opscrew/logs",
    );
    const claimed = readCrewLog(ws.logsDir).find((e) => e.type === 'claimed' && e.taskId === 'TASK-901');
    expect(claimed).toBeDefined();
    expect(finished.outcome).toBe('completed');
    const dropToClaim = claimed!.ts - dropped;
    console.log(`[timing] daemon start ${startMs} ms; drop-to-claim ${dropToClaim} ms (from .opscrew/logs); drop-to-completed ${dropToDone} ms`);
    // The watcher, not the 1 s fallback poll, should have woken it.
    expect(dropToClaim).toBeLessThan(1500);

    d.kill('SIGTERM');
    const exit = await waitExit(d, 10_000);
    expect(exit.code).toBe(0);
    expect(d.stderr()).toContain('SIGTERM');
  }, 90_000);
});

describe('opscrew run as a daemon: SIGTERM mid-task', () => {
  let counter: CounterServer;
  beforeAll(async () => {
    requireBuiltCli();
    counter = await startCounterServer();
  });
  afterAll(async () => {
    await counter?.close();
  });

  const slowTask = (id: string, ms: number): string => `---
id: ${id}
title: Slow ${id}
---
# Slow ${id}

## Steps
\`\`\`sh
curl -fsS '${counter.base}/count/${id}?ms=${ms}'
# expect: counted ${id}
\`\`\`

## Acceptance Criteria
- [ ] Healthy
  \`\`\`sh
  curl -fsS ${counter.base}/health
  \`\`\`
`;

  /** Starts a daemon with `grace`, drops one slow task, SIGTERMs once its step is in flight. */
  async function termMidStep(id: string, stepMs: number, grace: string): Promise<{ ws: Workspace; d: Daemon; termAt: number; exitMs: number }> {
    const { ws } = workspace(['mode: standard', 'concurrency: 1', `timeouts: { command: 30s, task: 60s, grace: ${grace} }`, 'http:', '  allow: [127.0.0.1]']);
    const d = await startDaemonReady(ws.root);
    daemons.push(d);
    writeFileSync(join(ws.backlog, `${id}.md`), slowTask(id, stepMs));
    await waitUntil(() => (counter.hits.some((h) => h.id === id && h.endMs === null) ? true : undefined), 15_000, () => `${id}'s step in flight (stderr:\n${d.stderr()})`);
    await new Promise((r) => setTimeout(r, 300)); // well inside the step
    expect(mdFiles(ws.active)).toEqual([`${id}.md`]);
    const termAt = Date.now();
    d.kill('SIGTERM');
    const exit = await waitExit(d, 20_000);
    expect(exit.code).toBe(0);
    return { ws, d, termAt, exitMs: exit.atMs - termAt };
  }

  it('releases the task to the backlog when the step outlasts the grace period, and exits within it', async () => {
    const graceMs = 1000;
    const { ws, d, exitMs } = await termMidStep('TASK-911', 8000, '1s');
    console.log(`[timing] SIGTERM → exit with an 8 s step in flight and grace 1 s: ${exitMs} ms`);
    expect(exitMs).toBeGreaterThanOrEqual(graceMs - 100); // it did wait for the running task
    expect(exitMs).toBeLessThan(graceMs + 2500);
    expect(mdFiles(ws.active)).toEqual([]);
    expect(mdFiles(ws.completed)).toEqual([]);
    const back = readFileSync(join(ws.backlog, 'TASK-911.md'), 'utf8');
    expect(back).not.toMatch(/^status:/m); // ready again, not blocked
    expect(back).toMatch(/^attempts: 1$/m);
    const runs = runRows(ws, 'TASK-911');
    expect(runs.map((r) => r.outcome)).toEqual(['released']);
    expect(runs[0]!.ended_ms).not.toBeNull();
    expect(runs[0]!.reason).toMatch(/crew stopped/);
    // The step was cut, not waited out: the server saw its client go away.
    const hit = counter.hits.find((h) => h.id === 'TASK-911');
    expect(hit?.answered).toBe(false);
    expect(hit?.endMs).not.toBeNull();
    expect(d.stderr()).toMatch(/released to backlog/);
    const log = readCrewLog(ws.logsDir);
    expect(log.some((e) => e.type === 'released' && e.taskId === 'TASK-911')).toBe(true);
    expect(log[log.length - 1]?.type).toBe('crew-stop');

    // Released means ready again: a fresh daemon claims it as attempt 2 (its step is as slow as
    // before, so this daemon is stopped the same way once the step runs).
    const again = await startDaemonReady(ws.root);
    daemons.push(again);
    await waitUntil(() => (counter.hits.filter((h) => h.id === 'TASK-911').length === 2 ? true : undefined), 15_000, 'TASK-911 re-run');
    again.kill('SIGTERM');
    await waitExit(again, 10_000);
    expect(runRows(ws, 'TASK-911').map((r) => [r.attempt, r.outcome])).toEqual([
      [1, 'released'],
      [2, 'released'],
    ]);
    expect(mdFiles(ws.active)).toEqual([]);
  }, 90_000);

  it('lets the task finish when the step ends inside the grace period: completed, then exit', async () => {
    const { ws, exitMs } = await termMidStep('TASK-912', 3000, '15s');
    console.log(`[timing] SIGTERM → exit with a 3 s step in flight and grace 15 s: ${exitMs} ms`);
    expect(exitMs).toBeLessThan(15_000);
    expect(exitMs).toBeGreaterThan(1000); // it waited for the step rather than cutting it
    expect(mdFiles(ws.active)).toEqual([]);
    const done = readFileSync(join(ws.completed, 'TASK-912.md'), 'utf8');
    expect(done).toMatch(/^status: completed$/m);
    expect(done).toContain('## Verification Evidence');
    expect(runRows(ws, 'TASK-912').map((r) => r.outcome)).toEqual(['completed']);
    const hit = counter.hits.find((h) => h.id === 'TASK-912');
    expect(hit?.answered).toBe(true);
  }, 60_000);
});
