// Real SDK Client ↔ createServer over the SDK's in-memory transport: every tool, denials, scope leaks.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { requestApproval } from '../core/approvals.js';
import { makeHarness, textOf, type Harness } from './mcp-harness.js';

let h: Harness;
beforeEach(async () => {
  h = await makeHarness();
});
afterEach(async () => {
  await h.close();
});

type Sc = Record<string, unknown>;
const sc = (r: unknown): Sc => ((r as { structuredContent?: unknown }).structuredContent ?? {}) as Sc;

function taskText(id: string, criteria: string, extra = ''): string {
  return `---\nid: ${id}\ntitle: Check the shop\npriority: high\n${extra}---\n# Check the shop\n\n## Context\nA test task.\n\n## Acceptance Criteria\n${criteria}`;
}

describe('tool surface per identity', () => {
  it('lists only the infra tools in scope; k8s-specialist neither sees nor calls vault', async () => {
    const k8s = await h.connect('k8s-specialist');
    const names = (await k8s.listTools()).tools.map((t) => t.name);
    expect(names).toContain('kubectl');
    expect(names).toContain('http');
    expect(names).not.toContain('vault');
    expect(names).not.toContain('ssh');
    expect(names).toEqual(expect.arrayContaining(['run_command', 'task_submit', 'approval_list', 'message_send', 'resource_locks']));
    const direct = await k8s.callTool({ name: 'vault', arguments: { args: ['kv', 'get', 'kv/deploy/app'] } });
    expect(direct.isError).toBe(true);
    expect(textOf(direct)).toMatch(/not found/i);
    // the same through a raw line is refused by the gate's scope check, and audited
    const viaLine = await k8s.callTool({ name: 'run_command', arguments: { line: 'vault kv get kv/deploy/app' } });
    expect(viaLine.isError).toBe(true);
    expect(sc(viaLine).error).toMatchObject({ code: 'scope.tool' });
    expect(textOf(viaLine)).toMatch(/What you can do instead/);
    const audit = h.store.db.all<{ agent: string; decision: string; rule: string }>('SELECT agent, decision, rule FROM tool_calls');
    expect(audit).toContainEqual({ agent: 'k8s-specialist', decision: 'deny', rule: 'scope.tool' });
  });

  it('secrets-specialist sees vault, not kubectl', async () => {
    const sec = await h.connect('secrets-specialist');
    const names = (await sec.listTools()).tools.map((t) => t.name);
    expect(names).toContain('vault');
    expect(names).not.toContain('kubectl');
  });

  it('annotations follow the identity’s riskiest class', async () => {
    const obs = await h.connect('observer');
    const k8s = await h.connect('k8s-specialist');
    const kubeObs = (await obs.listTools()).tools.find((t) => t.name === 'kubectl')!;
    const kubeK8s = (await k8s.listTools()).tools.find((t) => t.name === 'kubectl')!;
    expect(kubeObs.annotations).toMatchObject({ readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: true });
    expect(kubeK8s.annotations).toMatchObject({ readOnlyHint: false, destructiveHint: false });
    expect(kubeObs.description).not.toMatch(/\bdelete\b/);
    expect(kubeK8s.description).toMatch(/scale \(mutate\)/);
  });

  it('the observer cannot claim, create or submit', async () => {
    const obs = await h.connect('observer');
    const names = (await obs.listTools()).tools.map((t) => t.name);
    expect(names).toEqual(expect.arrayContaining(['task_list', 'task_get', 'task_next', 'approval_list']));
    for (const n of ['task_claim', 'task_create', 'task_submit', 'task_block']) expect(names).not.toContain(n);
  });
});

describe('infra tools through the gate', () => {
  it('runs a structured http read and a raw line with a pipeline, audited', async () => {
    const k8s = await h.connect('k8s-specialist');
    const r = await k8s.callTool({ name: 'http', arguments: { args: ['-fsS', `${h.svc}/health`] } });
    expect(r.isError).toBeFalsy();
    expect(sc(r)).toMatchObject({ exit_code: 0, class: 'read' });
    expect(sc(r).stdout).toContain('"status":"healthy"');
    expect(textOf(r)).toContain('<untrusted-output>');
    const line = await k8s.callTool({ name: 'run_command', arguments: { line: `curl -sS ${h.svc}/health | grep healthy` } });
    expect(line.isError).toBeFalsy();
    expect(sc(line).stdout).toContain('healthy');
    const rows = h.store.db.all<{ decision: string; tool: string }>("SELECT decision, tool FROM tool_calls WHERE agent = 'k8s-specialist'");
    expect(rows.filter((x) => x.tool === 'http' && x.decision === 'allow')).toHaveLength(2);
  });

  it('quotes structured arguments: shell syntax stays one argument', async () => {
    const obs = await h.connect('observer');
    const r = await obs.callTool({ name: 'http', arguments: { args: ['-fsS', `${h.svc}/health; rm -rf /`] } });
    // one URL argument with a space: never a second command
    expect(String(sc(r).canonical)).toMatch(/^curl -fsS '.*; rm -rf \/'$/);
    expect(h.store.db.all("SELECT 1 FROM tool_calls WHERE canonical LIKE 'rm%'")).toHaveLength(0);
  });

  it('a failing command is an isError result with the exit code', async () => {
    const obs = await h.connect('observer');
    const r = await obs.callTool({ name: 'http', arguments: { args: ['-fsS', `${h.svc}/broken`] } });
    expect(r.isError).toBe(true);
    expect(sc(r).error).toMatchObject({ code: 'command-failed' });
    expect(sc(r).exit_code).not.toBe(0);
  });

  it('refuses shell syntax and unknown programs with a parse code', async () => {
    const obs = await h.connect('observer');
    const r = await obs.callTool({ name: 'run_command', arguments: { line: 'bash -c "id"' } });
    expect(r.isError).toBe(true);
    expect(String((sc(r).error as Sc).code)).toMatch(/^parse\./);
    const r2 = await obs.callTool({ name: 'run_command', arguments: { line: `curl ${h.svc}/health && id` } });
    expect(r2.isError).toBe(true);
  });

  it('read-only observer: a mutating call is denied with the rule', async () => {
    const obs = await h.connect('observer');
    const r = await obs.callTool({ name: 'kubectl', arguments: { args: ['--context', 'minikube', '-n', 'shop', 'scale', 'deploy/api', '--replicas', '2'] } });
    expect(r.isError).toBe(true);
    expect((sc(r).error as Sc).code).toMatch(/^scope\.|^mode\./);
  });

  it('a delete beyond the scope mode is denied; a sensitive read needs approval that no tool can give', async () => {
    const k8s = await h.connect('k8s-specialist');
    const del = await k8s.callTool({ name: 'kubectl', arguments: { args: ['--context', 'minikube', '-n', 'shop', 'delete', 'pod', 'api-1'] } });
    expect(sc(del).error).toMatchObject({ code: 'scope.class' });
    const r = await k8s.callTool({ name: 'kubectl', arguments: { args: ['--context', 'minikube', '-n', 'shop', 'get', 'secret', 'app', '-o', 'yaml'] } });
    expect(r.isError).toBe(true);
    expect(sc(r).error).toMatchObject({ code: 'approval.required' });
    const id = sc(r).approval_id as string;
    expect(textOf(r)).toContain(`opscrew approve ${id}`);
    expect(h.store.db.get<{ state: string; agent: string }>('SELECT state, agent FROM approvals WHERE id = ?', [id])).toEqual({ state: 'pending', agent: 'k8s-specialist' });
    const names = (await k8s.listTools()).tools.map((t) => t.name);
    expect(names.filter((n) => /approve/.test(n))).toEqual([]);
  });

  it('export in run_command sets a variable for later lines', async () => {
    const obs = await h.connect('observer');
    const e = await obs.callTool({ name: 'run_command', arguments: { line: `export SVC=${h.svc}` } });
    expect(e.isError).toBeFalsy();
    const r = await obs.callTool({ name: 'run_command', arguments: { line: 'curl -fsS $SVC/health' } });
    expect(r.isError).toBeFalsy();
    expect(sc(r).stdout).toContain('healthy');
  });
});

describe('task tools', () => {
  it('list, get, next, claim, heartbeat, note, submit (passing) → completed with evidence', async () => {
    h.writeTask('check.md', taskText('TASK-001', `- [ ] Health endpoint is healthy\n  \`\`\`sh\n  curl -fsS ${h.svc}/health\n  # expect: "status":"healthy"\n  \`\`\`\n- [ ] N/A - nothing else\n`));
    const c = await h.connect('k8s-specialist');
    const list = await c.callTool({ name: 'task_list', arguments: {} });
    expect((sc(list).tasks as Sc[]).map((t) => t.id)).toEqual(['TASK-001']);
    const got = await c.callTool({ name: 'task_get', arguments: { id: 'TASK-001' } });
    expect(sc(got).text).toContain('# Check the shop');
    const next = await c.callTool({ name: 'task_next', arguments: {} });
    expect((sc(next).task as Sc).id).toBe('TASK-001');
    const claim = await c.callTool({ name: 'task_claim', arguments: {} });
    expect(claim.isError).toBeFalsy();
    expect(sc(claim).task_id).toBe('TASK-001');
    expect(existsSync(join(h.ws.active, 'check.md'))).toBe(true);
    expect((await c.callTool({ name: 'task_heartbeat', arguments: { id: 'TASK-001' } })).isError).toBeFalsy();
    expect((await c.callTool({ name: 'task_note', arguments: { id: 'TASK-001', note: 'looked at the health page' } })).isError).toBeFalsy();
    expect(h.store.db.all("SELECT kind FROM events WHERE task_id = 'TASK-001' AND kind = 'note'")).toHaveLength(1);
    const sub = await c.callTool({ name: 'task_submit', arguments: { id: 'TASK-001' } });
    expect(sub.isError).toBeFalsy();
    expect(sc(sub)).toMatchObject({ passed: true, status: 'completed' });
    const done = readdirSync(h.ws.completed);
    expect(done).toEqual(['check.md']);
    const text = readFileSync(join(h.ws.completed, 'check.md'), 'utf8');
    expect(text).toMatch(/- \[x\] Health endpoint is healthy/);
    expect(text).toMatch(/Verification Evidence/);
    expect(text).toContain('status: completed');
    const ver = h.store.db.all<{ outcome: string }>("SELECT outcome FROM verifications WHERE task_id = 'TASK-001' ORDER BY id");
    expect(ver.map((v) => v.outcome)).toEqual(['verified', 'na']);
    // the claim is gone: a second submit is refused
    expect((await c.callTool({ name: 'task_submit', arguments: { id: 'TASK-001' } })).isError).toBe(true);
  });

  it('submit with a failing criterion: stays active and returns the failing evidence', async () => {
    h.writeTask('broken.md', taskText('TASK-002', `- [ ] Health is fine\n  \`\`\`sh\n  curl -fsS ${h.svc}/health\n  # expect: "status":"degraded"\n  \`\`\`\n- [ ] Someone confirmed the bot reconnects\n`));
    const c = await h.connect('k8s-specialist');
    expect((await c.callTool({ name: 'task_claim', arguments: { id: 'TASK-002' } })).isError).toBeFalsy();
    const sub = await c.callTool({ name: 'task_submit', arguments: { id: 'TASK-002' } });
    expect(sub.isError).toBe(true);
    expect(sc(sub).error).toMatchObject({ code: 'verification-failed' });
    const failing = sc(sub).failing as Array<{ criterion: string; outcome: string; commands: Array<{ reason?: string }> }>;
    expect(failing.map((f) => f.outcome)).toEqual(['failed', 'manual']);
    expect(failing[0]!.commands[0]!.reason).toMatch(/does not contain "\\"status\\":\\"degraded\\""|does not contain/);
    expect(failing[1]!.commands[0]!.reason).toBe('needs a verification command or N/A');
    expect(existsSync(join(h.ws.active, 'broken.md'))).toBe(true);
    expect(readdirSync(h.ws.completed)).toEqual([]);
    const ver = h.store.db.all<{ outcome: string }>("SELECT outcome FROM verifications WHERE task_id = 'TASK-002'");
    expect(ver.map((v) => v.outcome).sort()).toEqual(['failed', 'manual']);
    // block it: back to backlog with the reason
    const b = await c.callTool({ name: 'task_block', arguments: { id: 'TASK-002', reason: 'health endpoint not degraded; manual check needs a person' } });
    expect(b.isError).toBeFalsy();
    expect(readFileSync(join(h.ws.backlog, 'broken.md'), 'utf8')).toContain('status: blocked');
  });

  it('a verification outside the identity scope fails (the server verifies under the policy)', async () => {
    h.writeTask('vault.md', taskText('TASK-003', '- [ ] Secret exists\n  ```sh\n  vault kv get kv/deploy/app\n  ```\n'));
    const c = await h.connect('k8s-specialist');
    await c.callTool({ name: 'task_claim', arguments: { id: 'TASK-003' } });
    const sub = await c.callTool({ name: 'task_submit', arguments: { id: 'TASK-003' } });
    expect(sub.isError).toBe(true);
    const failing = sc(sub).failing as Array<{ commands: Array<{ reason?: string }> }>;
    expect(failing[0]!.commands[0]!.reason).toMatch(/denied by policy \(scope\.tool\)/);
  });

  it('claiming refuses another agent’s task; heartbeat and submit need a claim', async () => {
    h.writeTask('theirs.md', taskText('TASK-004', '- [ ] N/A - nothing\n', 'agent: secrets-specialist\n'));
    const c = await h.connect('k8s-specialist');
    const r = await c.callTool({ name: 'task_claim', arguments: { id: 'TASK-004' } });
    expect(sc(r).error).toMatchObject({ code: 'not-yours' });
    expect(sc(await c.callTool({ name: 'task_next', arguments: {} })).task).toBeNull();
    expect(sc(await c.callTool({ name: 'task_heartbeat', arguments: { id: 'TASK-004' } })).error).toMatchObject({ code: 'not-claimed' });
    expect(sc(await c.callTool({ name: 'task_submit', arguments: { id: 'TASK-004' } })).error).toMatchObject({ code: 'not-claimed' });
  });

  it('task_create files a follow-up linked to the claimed task', async () => {
    h.writeTask('origin.md', taskText('TASK-005', '- [ ] N/A - nothing\n'));
    const c = await h.connect('k8s-specialist');
    await c.callTool({ name: 'task_claim', arguments: { id: 'TASK-005' } });
    const r = await c.callTool({
      name: 'task_create',
      arguments: { title: 'Rotate the webhook secret', criteria: [{ text: 'health ok', command: `curl -fsS ${h.svc}/health`, expect: 'healthy' }] },
    });
    expect(r.isError).toBeFalsy();
    expect(sc(r).discovered_from).toBe('TASK-005');
    expect(sc(r).id).toMatch(/^TASK-\d+$/);
    const text = readFileSync(join(h.ws.backlog, 'rotate-the-webhook-secret.md'), 'utf8');
    expect(text).toContain('discovered_from: TASK-005');
    expect(text).toContain('created_by: k8s-specialist');
    // the same title again never overwrites
    await c.callTool({ name: 'task_create', arguments: { title: 'Rotate the webhook secret' } });
    expect(existsSync(join(h.ws.backlog, 'rotate-the-webhook-secret-2.md'))).toBe(true);
  });
});

describe('coordination and approvals', () => {
  it('messages go from the session identity (no spoofing) and are listed for the recipient', async () => {
    const a = await h.connect('k8s-specialist');
    const b = await h.connect('devops-specialist');
    const s = await a.callTool({ name: 'message_send', arguments: { to: 'devops-specialist', body: 'compose stack is yours' } });
    expect(s.isError).toBeFalsy();
    expect((await a.callTool({ name: 'message_send', arguments: { to: 'nobody', body: 'x' } })).isError).toBe(true);
    const l = await b.callTool({ name: 'message_list', arguments: {} });
    expect(sc(l).messages).toEqual([expect.objectContaining({ from: 'k8s-specialist', to: 'devops-specialist', body: 'compose stack is yours' })]);
    const none = await a.callTool({ name: 'message_list', arguments: {} });
    expect(sc(none).messages).toEqual([]);
  });

  it('approval_list shows pending requests; nothing approves', async () => {
    const id = requestApproval(h.store.db, { task: null, run: null, agent: 'k8s-specialist', canonical: 'kubectl --context minikube -n shop delete pod x' });
    const obs = await h.connect('observer');
    const r = await obs.callTool({ name: 'approval_list', arguments: {} });
    expect(sc(r).approvals).toEqual([expect.objectContaining({ id, state: 'pending', requested_by: 'k8s-specialist' })]);
    expect(h.store.db.get<{ state: string }>('SELECT state FROM approvals WHERE id = ?', [id])?.state).toBe('pending');
  });

  it('resource_locks shows resources held by active tasks', async () => {
    h.writeTask('locked.md', taskText('TASK-006', '- [ ] N/A - nothing\n', 'resources: [k8s:minikube/shop]\n'));
    const c = await h.connect('k8s-specialist');
    await c.callTool({ name: 'task_claim', arguments: { id: 'TASK-006' } });
    const r = await c.callTool({ name: 'resource_locks', arguments: {} });
    expect(sc(r).locks).toEqual([expect.objectContaining({ resource: 'k8s:minikube/shop', task_id: 'TASK-006' })]);
  });
});

describe('resources and prompts', () => {
  it('serves task://, agent://, retro:// and one prompt per specialist', async () => {
    h.writeTask('res.md', taskText('TASK-007', '- [ ] N/A - nothing\n'));
    const c = await h.connect('observer');
    await c.callTool({ name: 'task_list', arguments: {} });
    const t = await c.readResource({ uri: 'task://TASK-007' });
    expect((t.contents[0] as { text: string }).text).toContain('id: TASK-007');
    const a = await c.readResource({ uri: 'agent://k8s-specialist' });
    expect((a.contents[0] as { text: string }).text).toContain('name: k8s-specialist');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(join(h.ws.retrospectives, 'retro-20260101-000000-TASK-007.md'), '# Retro\n');
    const list = await c.listResources();
    expect(list.resources.map((r) => r.uri)).toEqual(expect.arrayContaining(['task://TASK-007', 'agent://k8s-specialist', 'retro://retro-20260101-000000-TASK-007']));
    const retro = await c.readResource({ uri: 'retro://retro-20260101-000000-TASK-007' });
    expect((retro.contents[0] as { text: string }).text).toBe('# Retro\n');
    await expect(c.readResource({ uri: 'retro://..%2Fopscrew.config' })).rejects.toThrow();
    const prompts = (await c.listPrompts()).prompts.map((p) => p.name);
    expect(prompts).toEqual(expect.arrayContaining(h.specialists.map((s) => s.name)));
    const p = await c.getPrompt({ name: 'k8s-specialist', arguments: { task_id: 'TASK-007' } });
    const body = (p.messages[0]!.content as { text: string }).text;
    expect(body).toMatch(/^You are the Kubernetes specialist/);
    expect(body).toContain('<task>');
    expect(body).toContain('id: TASK-007');
  });
});
