// A fixture history for the knowledge tests: real task files in a temp workspace, the real folder
// queue (claim/release/complete/block), real audit rows through recordCall with the broker's scrub,
// and verification rows as the verifier writes them. A canary secret is in raw outputs.
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSecretBroker } from '../../tools/secret-broker.js';
import { recordCall, type AuditInput } from '../core/audit.js';
import { createFolderQueue, type Claim } from '../core/queue.js';
import { openStore, type Store } from '../core/store.js';
import { parseTask } from '../core/task-parse.js';
import type { Task } from '../core/task-types.js';
import { ensureWorkspace, resolveWorkspace, type Workspace } from '../core/workspace.js';
import { recordRunKnowledge } from '../core/retro.js';

export const CANARY = 'canary-Zq8xW3vN7pL2';
export const T0 = Date.UTC(2026, 10, 16, 8, 0, 0);

const TASKS: Record<string, string> = {
  'restart-nginx.md': `---
id: TASK-001
title: Restart nginx on web1
priority: high
tags: [web, nginx]
---
# Restart nginx on web1

## Context
nginx on web1 answers 502 after the config push.

## Steps
\`\`\`sh
ssh web1 systemctl restart nginx
\`\`\`

## Acceptance Criteria
- [ ] health answers
  \`\`\`sh
  curl -s http://web1.internal:8080/health
  # expect: ok
  \`\`\`

## Out of Scope
- Changing the nginx configuration
`,
  'scale-api.md': `---
id: TASK-002
title: Scale the api deployment in ffl
priority: medium
agent: k8s-specialist
tags: [api]
---
# Scale the api deployment in ffl

## Steps
\`\`\`sh
kubectl --context prod -n ffl scale deployment/api --replicas=3
\`\`\`

## Acceptance Criteria
- [ ] three replicas
  \`\`\`sh
  kubectl --context prod -n ffl get deployment api
  \`\`\`
`,
  'rotate-webhook.md': `---
id: TASK-003
title: Rotate the webhook token
priority: critical
tags: [vault]
depends_on: [TASK-005]
discovered_from: TASK-001
---
# Rotate the webhook token

## Steps
\`\`\`sh
vault kv get kv/webhook
\`\`\`

## Acceptance Criteria
- [ ] N/A - checked by the webhook owner
`,
  'cleanup-logs.md': `---
id: TASK-004
title: Clean up old logs
priority: low
---
# Clean up old logs

## Steps
\`\`\`sh
ls /var/log/app
\`\`\`

## Acceptance Criteria
- [ ] N/A - housekeeping
`,
  'restart-shop.md': `---
id: TASK-005
title: Restart the shop web container
priority: high
agent: devops-specialist
tags: [web]
---
# Restart the shop web container

## Steps
\`\`\`sh
docker compose -p shop restart web
\`\`\`

## Acceptance Criteria
- [ ] N/A - the restart is the change
`,
};

export interface History {
  dir: string;
  ws: Workspace;
  store: Store;
  clock: { t: number };
  scrub: (s: string) => string;
  runs: { r1: string; r2: string; r3: string; r4: string };
  tasks: Record<string, Task>;
  retroFiles: string[];
  cleanup(): void;
}

export function loadTask(ws: Workspace, file: string): Task {
  const p = parseTask(readFileSync(file, 'utf8'), file);
  if (!p.ok) throw new Error(`fixture task ${file} does not parse: ${JSON.stringify(p.issues)}`);
  return p.task;
}

export async function buildHistory(options: { retros?: boolean } = {}): Promise<History> {
  const dir = mkdtempSync(join(tmpdir(), 'opscrew-knowledge-'));
  const ws = resolveWorkspace(dir);
  ensureWorkspace(ws);
  for (const [name, text] of Object.entries(TASKS)) writeFileSync(join(ws.backlog, name), text);
  const store = openStore(ws.dbPath);
  const clock = { t: T0 };
  const broker = createSecretBroker();
  broker.register('kv/webhook#token', CANARY);
  const scrub = (s: string): string => broker.scrub(s);
  const q = createFolderQueue({ workspace: ws, store, now: () => clock.t, holder: 'fixture', leaseMs: 3_600_000 });
  await q.scan();
  const db = store.db;
  const call = (c: Claim, agent: string, row: Omit<AuditInput, 'tsMs' | 'agent' | 'taskId' | 'runId'>): void => {
    clock.t += 1000;
    recordCall(db, { tsMs: clock.t, agent, taskId: c.taskId, runId: c.runId, ...row }, { scrub });
  };
  const verify = (c: Claim, criterion: string, outcome: string, commands: unknown[]): void => {
    clock.t += 500;
    db.run('INSERT INTO verifications (run_id, task_id, criterion, outcome, evidence, ts_ms) VALUES (?, ?, ?, ?, ?, ?)', [
      c.runId,
      c.taskId,
      criterion,
      outcome,
      scrub(JSON.stringify(commands)),
      clock.t,
    ]);
  };
  const claim = async (id: string): Promise<Claim> => {
    const c = await q.claim({ id });
    if (!c) throw new Error(`fixture: cannot claim ${id}`);
    db.run('UPDATE runs SET agent = coalesce(agent, ?) WHERE id = ?', [id === 'TASK-002' ? 'k8s-specialist' : 'devops-specialist', c.runId]);
    return c;
  };

  // TASK-001 run 1: restart fails once (canary in the raw error), retry succeeds, health check fails; released.
  const c1 = await claim('TASK-001');
  call(c1, 'devops-specialist', {
    tool: 'ssh', verb: 'systemctl restart', canonical: 'ssh web1 systemctl restart nginx', class: 'mutate', decision: 'allow', rule: 'allow.scope',
    exitCode: 1, durationMs: 812,
    stderr: `Job for nginx.service failed because the control process exited with error code 0x3f2a9b1c.\nSee /var/log/nginx/error.log token=${CANARY}`,
  });
  call(c1, 'devops-specialist', {
    tool: 'ssh', verb: 'systemctl restart', canonical: 'ssh web1 systemctl restart nginx', class: 'mutate', decision: 'allow', rule: 'allow.scope', exitCode: 0, durationMs: 640, stdout: '',
  });
  call(c1, 'devops-specialist', {
    tool: 'http', verb: 'GET', canonical: 'curl -s http://web1.internal:8080/health', class: 'read', decision: 'allow', rule: 'allow.read', exitCode: 7, durationMs: 3001,
    stderr: 'curl: (7) Failed to connect to web1.internal port 8080 after 3001 ms: Connection refused',
  });
  verify(c1, 'health answers', 'failed', [{ command: 'curl -s http://web1.internal:8080/health', exitCode: 7, durationMs: 3001, excerpt: `refused ${CANARY}`, passed: false, reason: 'exit 7' }]);
  clock.t += 1000;
  await q.release(c1, 'acceptance failed: health answers');

  // TASK-001 run 2: clean.
  clock.t += 60_000;
  const c2 = await claim('TASK-001');
  call(c2, 'devops-specialist', {
    tool: 'ssh', verb: 'systemctl restart', canonical: 'ssh web1 systemctl restart nginx', class: 'mutate', decision: 'allow', rule: 'allow.scope', exitCode: 0, durationMs: 600, stdout: '',
  });
  call(c2, 'devops-specialist', {
    tool: 'http', verb: 'GET', canonical: 'curl -s http://web1.internal:8080/health', class: 'read', decision: 'allow', rule: 'allow.read', exitCode: 0, durationMs: 20, stdout: 'ok',
  });
  verify(c2, 'health answers', 'verified', [{ command: 'curl -s http://web1.internal:8080/health', exitCode: 0, durationMs: 20, excerpt: 'ok', passed: true }]);
  clock.t += 1000;
  await q.complete(c2);

  // TASK-002 run 3: a refused delete, then the scale; verified.
  clock.t += 60_000;
  const c3 = await claim('TASK-002');
  call(c3, 'k8s-specialist', {
    tool: 'kubectl', verb: 'delete', canonical: 'kubectl --context prod -n ffl delete pod api-1', class: 'destructive', decision: 'deny', rule: 'class.destructive',
  });
  call(c3, 'k8s-specialist', {
    tool: 'kubectl', verb: 'scale', canonical: 'kubectl --context prod -n ffl scale deployment/api --replicas=3', class: 'mutate', decision: 'allow', rule: 'allow.scope', exitCode: 0, durationMs: 150,
    stdout: `deployment.apps/api scaled ${CANARY}`,
  });
  verify(c3, 'three replicas', 'verified', [{ command: 'kubectl --context prod -n ffl get deployment api', exitCode: 0, durationMs: 90, excerpt: 'api 3/3', passed: true }]);
  clock.t += 1000;
  await q.complete(c3);

  // TASK-005 run 4: needs approval; blocked.
  clock.t += 60_000;
  const c4 = await claim('TASK-005');
  call(c4, 'devops-specialist', {
    tool: 'compose', verb: 'restart', canonical: 'docker compose -p shop restart web', class: 'mutate', decision: 'needs-approval', rule: 'approval.mutate', approvalId: 'apr-1',
  });
  clock.t += 1000;
  await q.block(c4, 'awaiting approval of docker compose -p shop restart web');

  const tasks: Record<string, Task> = {};
  for (const t of await q.list()) tasks[t.id] = loadTask(ws, join(dir, t.file));
  const runs = { r1: c1.runId, r2: c2.runId, r3: c3.runId, r4: c4.runId };
  const retroFiles: string[] = [];
  if (options.retros !== false) {
    const deps = { db, root: ws.root, retrospectivesDir: ws.retrospectives, now: () => clock.t, scrub };
    // Follow-up tasks and the backlog are indexed first, as the crew does on scan.
    for (const id of ['TASK-003', 'TASK-004']) {
      const { indexTask } = await import('../core/knowledge-extract.js');
      const t = tasks[id];
      if (t) indexTask(db, t, { scrub, nowMs: clock.t });
    }
    for (const [runId, id] of [[runs.r1, 'TASK-001'], [runs.r2, 'TASK-001'], [runs.r3, 'TASK-002'], [runs.r4, 'TASK-005']] as const) {
      const out = recordRunKnowledge(deps, { runId, task: tasks[id] ?? null });
      if (!out) throw new Error(`fixture: no retro for ${runId}`);
      retroFiles.push(out.retroFile);
    }
  }
  return {
    dir,
    ws,
    store,
    clock,
    scrub,
    runs,
    tasks,
    retroFiles,
    cleanup: () => {
      store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
