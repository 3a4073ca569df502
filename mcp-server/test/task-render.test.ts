import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { Result } from '../core/errors.js';
import { parseTask } from '../core/task-parse.js';
import { renderNewTask, updateTaskText, type NewTaskInput, type TaskUpdate } from '../core/task-render.js';
import type { CriterionEvidence, Task } from '../core/task-types.js';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'tasks');
const fixture = (name: string): string => readFileSync(path.join(FIXTURES, name), 'utf8');

function value(r: Result<string>): string {
  if (!r.ok) throw new Error(`${r.code}: ${r.message}`);
  return r.value;
}

function task(text: string): Task {
  const r = parseTask(text, 't.md');
  if (!r.ok) throw new Error(r.issues.map((i) => `${i.line}: ${i.message}`).join('\n'));
  return r.task;
}

/** The text after the front matter and before the evidence section. */
function body(text: string): string {
  const afterFm = text.startsWith('---') ? text.slice(text.indexOf('\n---', 3) + 4) : text;
  const ev = afterFm.indexOf('<!-- opscrew:evidence begin');
  return ev === -1 ? afterFm : afterFm.slice(0, ev);
}

const EVIDENCE: CriterionEvidence[] = [
  {
    criterion: 'Controller is running',
    outcome: 'verified',
    commands: [{ command: 'kubectl get deploy x -o jsonpath={.status.readyReplicas}', exitCode: 0, durationMs: 412, excerpt: '1\n', passed: true }],
  },
  {
    criterion: 'Backend health endpoint is healthy',
    outcome: 'failed',
    commands: [
      { command: 'curl -fsS http://127.0.0.1:8080/health', exitCode: 7, durationMs: 2500, excerpt: 'curl: (7) ```` refused\n## Steps\n<!-- opscrew:evidence end -->', passed: false, reason: 'exit code 7, expected 0' },
    ],
  },
  { criterion: 'N/A - multi-arch builds', outcome: 'na', commands: [] },
];

describe('updateTaskText: front matter', () => {
  const original = fixture('design-example.md');

  it('an empty update returns the text unchanged', () => {
    expect(value(updateTaskText(original, {}))).toBe(original);
  });

  it('sets new runner-owned keys before the closing --- and keeps every comment', () => {
    const out = value(updateTaskText(original, { set: { status: 'blocked', blocked_reason: 'preflight failed: no nodes', attempts: 2 } }));
    const fmEnd = out.indexOf('\n---\n', 3);
    expect(out.slice(0, fmEnd)).toContain('approve:                    # operations the author pre-approves (exact command lines)');
    expect(out.slice(fmEnd - 80, fmEnd)).toContain('status: blocked\nblocked_reason: "preflight failed: no nodes"\nattempts: 2');
    expect(body(out)).toBe(body(original));
    const t = task(out);
    expect(t.fm).toMatchObject({ status: 'blocked', blocked_reason: 'preflight failed: no nodes', attempts: 2, id: 'TASK-006' });
  });

  it('replaces an existing single-line value in place and keeps its trailing comment', () => {
    const out = value(updateTaskText(original, { set: { priority: 'low' } }));
    expect(out).toBe(original.replace('priority: high              #', 'priority: low              #'));
  });

  it('set then unset returns the original bytes', () => {
    const set = value(updateTaskText(original, { set: { status: 'active', run_id: 'run-1', attempts: 1, started_at: '2025-01-01T00:00:00Z' } }));
    expect(set).not.toBe(original);
    const back = value(updateTaskText(set, { unset: ['status', 'run_id', 'attempts', 'started_at'] }));
    expect(back).toBe(original);
  });

  it('set with null removes the key; unset of an absent key is a no-op', () => {
    const set = value(updateTaskText(original, { set: { status: 'blocked' } }));
    expect(value(updateTaskText(set, { set: { status: null } }))).toBe(original);
    expect(value(updateTaskText(original, { unset: ['nope'] }))).toBe(original);
  });

  it('unset removes a multi-line key completely', () => {
    const out = value(updateTaskText(original, { unset: ['approve'] }));
    expect(out).not.toContain('approve:');
    expect(out).not.toContain('  - kubectl --context minikube delete namespace mtg-agents');
    expect(task(out).fm.approve).toEqual([]);
  });

  it('refuses to overwrite a multi-line value', () => {
    const r = updateTaskText(original, { set: { approve: 'x' } }, 'a.md');
    expect(r).toMatchObject({ ok: false, code: 'TASK_FIELD_MULTILINE' });
    const block = '---\nblocked_reason: |\n  line one\n  line two\n---\n# x\n';
    expect(updateTaskText(block, { set: { blocked_reason: 'new' } })).toMatchObject({ ok: false, code: 'TASK_FIELD_MULTILINE' });
  });

  it('quotes values that would change meaning as plain YAML', () => {
    const tricky = ['yes', 'null', '123', 'a: b', 'x # y', '- item', '"q"', 'line\nbreak', '', ' padded ', '@at', '*star', '{a}', '2025-01-01'];
    for (const v of tricky) {
      const out = value(updateTaskText('---\ntitle: t\n---\n', { set: { blocked_reason: v } }));
      const parsed = parseTask(out, 't.md');
      if (v === '' || v.trim() === '') {
        expect(parsed.ok).toBe(false); // an empty reason is invalid, but it round-trips as text
        continue;
      }
      expect(parsed.ok && parsed.task.fm.blocked_reason, JSON.stringify(v)).toBe(v.trim());
      expect(out.split('\n')).toHaveLength(5);
    }
  });

  it('creates front matter when the file has none, after a BOM', () => {
    const out = value(updateTaskText('\uFEFF# Title\n\nText\n', { set: { id: 'TASK-010' } }));
    expect(out).toBe('\uFEFF---\nid: TASK-010\n---\n# Title\n\nText\n');
    expect(task(out).fm.id).toBe('TASK-010');
  });

  it('keeps CRLF line endings', () => {
    const crlf = original.replace(/\n/g, '\r\n');
    const out = value(updateTaskText(crlf, { set: { status: 'active', priority: 'critical' }, evidence: EVIDENCE }));
    expect(out.replace(/\r\n/g, '')).not.toContain('\n');
    expect(out).toContain('status: active\r\n---\r\n');
    expect(task(out).fm).toMatchObject({ status: 'active', priority: 'critical' });
    const back = value(updateTaskText(out, { set: { priority: 'high' }, unset: ['status'], evidence: null }));
    expect(back).toBe(crlf);
  });

  it('refuses to edit broken front matter or bad keys', () => {
    expect(updateTaskText('---\ntitle: [x\n---\n', { set: { status: 'active' } })).toMatchObject({ ok: false, code: 'TASK_FRONTMATTER_INVALID' });
    expect(updateTaskText('---\ntitle: x\n', { set: { status: 'active' } })).toMatchObject({ ok: false, code: 'TASK_FRONTMATTER_INVALID' });
    expect(updateTaskText('---js\n{}\n---\n', { set: { status: 'active' } })).toMatchObject({ ok: false, code: 'TASK_FRONTMATTER_INVALID' });
    expect(updateTaskText(original, { set: { 'bad key': 'x' } })).toMatchObject({ ok: false, code: 'TASK_FIELD_INVALID' });
    expect(updateTaskText(original, { set: { attempts: Number.NaN } })).toMatchObject({ ok: false, code: 'TASK_FIELD_INVALID' });
  });
});

describe('updateTaskText: criteria and evidence', () => {
  const original = fixture('design-example.md');

  it('ticks criteria by line without touching other bytes', () => {
    const t = task(original);
    const lines = t.criteria.slice(0, 2).map((c) => c.line);
    const out = value(updateTaskText(original, { tickCriteria: lines }));
    const before = original.split('\n');
    const after = out.split('\n');
    expect(after).toHaveLength(before.length);
    after.forEach((l, i) => {
      if (lines.includes(i + 1)) expect(l).toBe((before[i] ?? '').replace('[ ]', '[x]'));
      else expect(l).toBe(before[i]);
    });
    expect(task(out).criteria.map((c) => c.checked)).toEqual([true, true, false, false]);
    expect(updateTaskText(original, { tickCriteria: [2] })).toMatchObject({ ok: false, code: 'TASK_CRITERION_NOT_FOUND' });
    expect(updateTaskText(original, { tickCriteria: [16] })).toMatchObject({ ok: false, code: 'TASK_CRITERION_NOT_FOUND' });
  });

  it('ticking and setting in one update use the original line numbers', () => {
    const noFm = '## Acceptance Criteria\n- [ ] a\n- plain\n';
    const out = value(updateTaskText(noFm, { tickCriteria: [2, 3], set: { status: 'completed' } }));
    expect(out).toBe('---\nstatus: completed\n---\n## Acceptance Criteria\n- [x] a\n- [x] plain\n');
  });

  it('appends the evidence section at the end, readable and located by markers', () => {
    const out = value(updateTaskText(original, { evidence: EVIDENCE }));
    expect(out.startsWith(original)).toBe(true);
    const section = out.slice(original.length);
    expect(section).toContain('<!-- opscrew:evidence begin -->\n## Verification Evidence\n');
    expect(section).toContain('**Criterion 1:** Controller is running\n**Outcome:** verified');
    expect(section).toContain('- Command: `kubectl get deploy x -o jsonpath={.status.readyReplicas}`');
    expect(section).toContain('- Result: passed, exit 0, 412 ms');
    expect(section).toContain('- Result: failed, exit 7, 2.5 s');
    expect(section).toContain('- Reason: exit code 7, expected 0');
    // The excerpt holds a 4-backtick run, so its fence is 5 backticks long.
    expect(section).toContain('`````text\ncurl: (7) ```` refused\n## Steps\n<!-- opscrew:evidence end -->\n`````');
    expect(section.endsWith('<!-- opscrew:evidence end -->\n')).toBe(true);
    // The generated section does not change what the task means.
    const a = task(original);
    const b = task(out);
    expect(b.criteria).toEqual(a.criteria);
    expect(b.steps).toEqual(a.steps);
    expect(b.sections.at(-1)?.name).toBe('evidence');
  });

  it('is idempotent and replaces the old evidence, even with an end marker inside an excerpt', () => {
    const once = value(updateTaskText(original, { evidence: EVIDENCE }));
    expect(value(updateTaskText(once, { evidence: EVIDENCE }))).toBe(once);
    const other: CriterionEvidence[] = [{ criterion: 'Only one', outcome: 'manual', commands: [] }];
    const replaced = value(updateTaskText(once, { evidence: other }));
    expect(replaced).toBe(value(updateTaskText(original, { evidence: other })));
    expect(replaced).not.toContain('Controller is running\n**Outcome');
  });

  it('removing evidence restores the original bytes, with or without a final line break', () => {
    for (const text of [original, original.trimEnd(), '', '\uFEFF', '# x', 'a\r\nb\r\n', 'a\r\nb', 'ends with blank\n\n']) {
      const withEv = value(updateTaskText(text, { evidence: EVIDENCE }));
      expect(value(updateTaskText(withEv, { evidence: null })), JSON.stringify(text)).toBe(text);
    }
    expect(value(updateTaskText(original, { evidence: null }))).toBe(original);
  });

  it('keeps author text written after the evidence section', () => {
    const withEv = value(updateTaskText(original, { evidence: EVIDENCE }));
    const edited = `${withEv}\n## Notes added later\n`;
    const replaced = value(updateTaskText(edited, { evidence: [{ criterion: 'x', outcome: 'verified', commands: [] }] }));
    expect(replaced.endsWith('<!-- opscrew:evidence end -->\n\n## Notes added later\n')).toBe(true);
    expect(value(updateTaskText(edited, { evidence: null }))).toBe(`${original}\n## Notes added later\n`);
  });

  it('ignores marker lines inside the author\'s code blocks', () => {
    const text = `${original}\n\`\`\`text\n<!-- opscrew:evidence begin -->\n\`\`\`\n`;
    const out = value(updateTaskText(text, { evidence: EVIDENCE }));
    expect(out.startsWith(text)).toBe(true);
    expect(value(updateTaskText(out, { evidence: null }))).toBe(text);
  });

  it('huge criterion texts and excerpts render in linear time', () => {
    const sp = ' '.repeat(200_000);
    const ev: CriterionEvidence[] = [{ criterion: `a${sp}b\n${sp}c`, outcome: 'verified', commands: [{ command: `x${sp}y`, exitCode: 0, durationMs: 1, excerpt: `${'\n'.repeat(200_000)}x${'`'.repeat(50_000)}`, passed: true }] }];
    const t0 = performance.now();
    const out = value(updateTaskText('# t\n', { evidence: ev }));
    expect(performance.now() - t0).toBeLessThan(1500);
    expect(out).toContain('… (truncated)');
    expect(value(updateTaskText(out, { evidence: null }))).toBe('# t\n');
  });

  it('control characters in excerpts are made visible so the file stays text', () => {
    const out = value(updateTaskText('# t\n', { evidence: [{ criterion: 'c', outcome: 'failed', commands: [{ command: 'x', exitCode: null, durationMs: 1, excerpt: 'a\u0000b\u001b[31m', passed: false }] }] }));
    expect(out).toContain('a\u2400b\u241b[31m');
    expect(out).toContain('no exit code');
    expect(parseTask(out, 't.md').ok).toBe(true);
  });
});

describe('renderNewTask', () => {
  const full: NewTaskInput = {
    id: 'TASK-031',
    title: 'Rotate: the "webhook" secret #2',
    priority: 'high',
    agent: 'secrets-specialist',
    tags: ['vault', 'a, b', 'yes'],
    depends_on: ['TASK-030'],
    resources: ['vault:kv/deploy'],
    discovered_from: 'TASK-006',
    context: 'Leaked into a CI log.\n\nRotate it **now**.',
    steps: ['vault kv get -field=x kv/deploy', 'export NS=deploy', 'docker compose -p $NS restart receiver'],
    criteria: [
      { text: 'Vault holds a new version', command: 'vault kv metadata get kv/deploy', expect: '/current_version\\s+[2-9]/' },
      { text: 'Receiver is up', command: 'curl -fsS http://127.0.0.1:9000/healthz', expect: 'ok' },
      { text: 'Exit code checked', command: 'true' },
      { text: 'Someone checked the dashboard' },
      { text: 'N/A - no DNS change' },
    ],
    rollback: ['vault kv rollback -version=1 kv/deploy'],
    outOfScope: ['Rotating other secrets'],
    extra: { team: 'sre', ticket: { system: 'jira', key: 'OPS-1' }, ratio: 0.5 },
  };

  it('round-trips through parseTask', () => {
    const text = renderNewTask(full);
    const t = task(text);
    expect(t.fm).toMatchObject({
      id: 'TASK-031',
      title: 'Rotate: the "webhook" secret #2',
      priority: 'high',
      agent: 'secrets-specialist',
      tags: ['vault', 'a, b', 'yes'],
      depends_on: ['TASK-030'],
      resources: ['vault:kv/deploy'],
      discovered_from: 'TASK-006',
      extra: { team: 'sre', ticket: { system: 'jira', key: 'OPS-1' }, ratio: 0.5 },
    });
    expect(t.title).toBe(full.title);
    expect(t.context).toBe(full.context);
    expect(t.steps.map((s) => (s.kind === 'command' ? s.text : s.kind === 'export' ? `export ${s.name}=${s.value}` : ''))).toEqual(full.steps);
    expect(t.criteria.map((c) => c.kind)).toEqual(['verify', 'verify', 'verify', 'manual', 'na']);
    expect(t.criteria.map((c) => c.text)).toEqual(full.criteria?.map((c) => c.text));
    const v0 = t.criteria[0];
    expect(v0?.kind === 'verify' && v0.items[0]).toMatchObject({ text: 'vault kv metadata get kv/deploy', expects: [{ kind: 'regex', source: 'current_version\\s+[2-9]' }] });
    const v1 = t.criteria[1];
    expect(v1?.kind === 'verify' && v1.items[0]).toMatchObject({ expects: [{ kind: 'contains', text: 'ok' }] });
    expect(t.rollback.map((s) => s.kind === 'command' && s.text)).toEqual(full.rollback);
    expect(t.outOfScope).toEqual(full.outOfScope);
  });

  it('a minimal task is valid and has defaults', () => {
    const text = renderNewTask({ title: 'Just a title' });
    expect(text).toBe('---\ntitle: Just a title\npriority: medium\n---\n# Just a title\n');
    expect(task(text)).toMatchObject({ title: 'Just a title', fm: { priority: 'medium' }, steps: [], criteria: [] });
  });

  it('commands with backtick runs get a longer fence', () => {
    const text = renderNewTask({ title: 't', steps: ['echo ```'] });
    expect(text).toContain('````sh\necho ```\n````');
    expect(task(text).steps).toMatchObject([{ kind: 'command', text: 'echo ```' }]);
  });

  it('single-line fields fold line breaks; multi-line steps become several commands', () => {
    const t = task(renderNewTask({ title: 'two\nlines', steps: ['a\nb'], criteria: [{ text: 'x\ny' }] }));
    expect(t.title).toBe('two lines');
    expect(t.steps.map((s) => s.kind === 'command' && s.text)).toEqual(['a', 'b']);
    expect(t.criteria[0]?.text).toBe('x y');
  });

  it('renders then updates without disturbing the body', () => {
    const text = renderNewTask(full);
    const update: TaskUpdate = { set: { status: 'completed', completed_at: '2025-02-01T10:00:00Z' }, evidence: EVIDENCE, tickCriteria: task(text).criteria.map((c) => c.line) };
    const out = value(updateTaskText(text, update));
    expect(out).toContain('## Verification Evidence');
    const withoutEvidence = value(updateTaskText(out, { evidence: null }));
    expect(body(withoutEvidence).replace(/\[x\]/g, '[ ]')).toBe(body(text));
  });
});
