// The verifier against a real task file, the real gate (policy + audit) and a real local HTTP service.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createSecretBroker } from '../../tools/secret-broker.js';
import { checkExpectations } from '../core/expectations.js';
import type { GateDeps } from '../core/gate.js';
import { parseTask } from '../core/task-parse.js';
import { MANUAL_REASON, verifyTask } from '../core/verifier.js';
import { makeHarness, type Harness } from './mcp-harness.js';

let h: Harness;
let gate: GateDeps;
beforeEach(async () => {
  h = await makeHarness();
  gate = { db: h.store.db, config: h.config, env: {}, broker: createSecretBroker(), now: Date.now };
});
afterEach(async () => {
  await h.close();
});

const scope = { name: 'observer', tools: { http: { mode: 'read' as const } } };

function task(criteria: string, steps = ''): ReturnType<typeof parseTask> {
  const text = `---\nid: TASK-010\ntitle: t\n---\n# t\n\n${steps}## Acceptance Criteria\n${criteria}`;
  return parseTask(text, 'TASK-010.md');
}

describe('verifyTask', () => {
  it('evaluates contains, regex and exit expectations; uses exported variables; records rows', async () => {
    const p = task(
      [
        '- [ ] contains',
        '  ```sh',
        '  curl -fsS $SVC/health',
        '  # expect: healthy',
        '  ```',
        '- [ ] regex',
        '  ```sh',
        '  curl -fsS $SVC/health',
        '  # expect: /"status":\\s*"heal\\w+"/',
        '  ```',
        '- [ ] broken answers non-zero',
        '  ```sh',
        '  curl -fsS $SVC/broken',
        '  # expect exit: 22',
        '  ```',
        '- [ ] N/A - not here',
        '',
      ].join('\n'),
      `## Steps\n\`\`\`sh\nexport SVC=${h.svc}\n\`\`\`\n\n`,
    );
    if (!p.ok) throw new Error(JSON.stringify(p.issues));
    const vars = { SVC: h.svc };
    const r = await verifyTask(gate, { task: p.task, agent: 'observer', scope, taskId: 'TASK-010', runId: 'run-1', vars });
    expect(r.evidence.map((e) => e.outcome)).toEqual(['verified', 'verified', 'verified', 'na']);
    expect(r.passed).toBe(true);
    expect(r.satisfiedLines).toEqual(p.task.criteria.map((c) => c.line));
    expect(r.evidence[2]!.commands[0]!.exitCode).toBe(22);
    const rows = h.store.db.all<{ outcome: string; run_id: string }>('SELECT outcome, run_id FROM verifications ORDER BY id');
    expect(rows).toEqual([
      { outcome: 'verified', run_id: 'run-1' },
      { outcome: 'verified', run_id: 'run-1' },
      { outcome: 'verified', run_id: 'run-1' },
      { outcome: 'na', run_id: 'run-1' },
    ]);
    // every check went through the gate and is audited
    expect(h.store.db.all("SELECT 1 FROM tool_calls WHERE task_id = 'TASK-010' AND decision = 'allow'")).toHaveLength(3);
  });

  it('fails on a wrong output, a manual criterion and a command outside the policy — and runs them all', async () => {
    const p = task(
      [
        '- [ ] wrong',
        '  ```sh',
        `  curl -fsS ${h.svc}/health`,
        '  # expect: degraded',
        '  ```',
        '- [ ] a person looked at it',
        '- [ ] out of scope',
        '  ```sh',
        '  kubectl --context minikube -n shop get pods',
        '  ```',
        '',
      ].join('\n'),
    );
    if (!p.ok) throw new Error(JSON.stringify(p.issues));
    const r = await verifyTask(gate, { task: p.task, agent: 'observer', scope, taskId: 'TASK-010', runId: 'run-2' });
    expect(r.passed).toBe(false);
    expect(r.evidence.map((e) => e.outcome)).toEqual(['failed', 'manual', 'failed']);
    expect(r.evidence[0]!.commands[0]!.reason).toMatch(/does not contain "degraded"/);
    expect(r.evidence[0]!.commands[0]!.excerpt).toContain('healthy');
    expect(r.evidence[1]!.commands[0]!.reason).toBe(MANUAL_REASON);
    expect(r.evidence[2]!.commands[0]!.reason).toMatch(/denied by policy \(scope\.tool\)/);
    expect(r.satisfiedLines).toEqual([]);
  });
});

describe('checkExpectations', () => {
  it('defaults to exit 0 and reports why', () => {
    expect(checkExpectations([], { exitCode: 0, stdout: '' })).toEqual({ passed: true });
    expect(checkExpectations([], { exitCode: 1, stdout: '' })).toMatchObject({ passed: false, reason: 'exit code 1, expected 0' });
    expect(checkExpectations([{ kind: 'exit', code: 3, line: 1 }], { exitCode: 3, stdout: '' }).passed).toBe(true);
    expect(checkExpectations([{ kind: 'regex', source: '(', flags: '', line: 4 }], { exitCode: 0, stdout: '' })).toMatchObject({ passed: false, reason: expect.stringMatching(/invalid expectation regex/) });
    expect(checkExpectations([{ kind: 'contains', text: 'ok', line: 2 }], { exitCode: null, stdout: 'ok' })).toMatchObject({ passed: false });
  });
});
