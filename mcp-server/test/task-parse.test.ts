import { readFileSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { Issue } from '../core/errors.js';
import { formatIssue } from '../core/errors.js';
import { parseDuration } from '../core/duration.js';
import { parseTask, type ParseResult } from '../core/task-parse.js';
import type { CommandItem, Criterion, StepItem, Task } from '../core/task-types.js';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'tasks');
const fixture = (name: string): string => readFileSync(path.join(FIXTURES, name), 'utf8');

function parsed(text: string, file = 'task.md'): { task: Task; warnings: Issue[] } {
  const r = parseTask(text, file);
  if (!r.ok) throw new Error(`expected a valid task, got:\n${r.issues.map(formatIssue).join('\n')}`);
  return { task: r.task, warnings: r.warnings };
}

function failed(text: string, file = 'task.md'): Extract<ParseResult, { ok: false }> {
  const r = parseTask(text, file);
  if (r.ok) throw new Error('expected the task to be invalid');
  return r;
}

const commands = (items: StepItem[]): CommandItem[] => items.filter((i): i is CommandItem => i.kind === 'command');
const fm = (lines: string): string => `---\n${lines}\n---\n`;

describe('the DESIGN §3 example', () => {
  const { task, warnings } = parsed(fixture('design-example.md'), 'tasks/backlog/design-example.md');

  it('reads the front matter', () => {
    expect(task.fm).toMatchObject({
      id: 'TASK-006',
      title: 'Resolve sealed secrets decryption failures',
      priority: 'high',
      agent: 'k8s-specialist',
      tags: ['kubernetes', 'sealed-secrets'],
      depends_on: ['TASK-005'],
      resources: ['k8s:minikube/midwestmtg'],
      timeout_ms: 30 * 60_000,
      max_attempts: 2,
      approve: ['kubectl --context minikube delete namespace mtg-agents'],
      extra: {},
    });
    expect(task.title).toBe('Resolve sealed secrets decryption failures');
    expect(warnings).toEqual([]);
  });

  it('reads context, preflight, steps with an export, and rollback with their lines', () => {
    expect(task.context).toBe('Free text for people and for Claude. Never executed.');
    expect(task.preflight).toEqual([{ kind: 'command', line: 21, text: 'kubectl --context minikube get nodes', expects: [] }]);
    expect(task.steps.map((s) => [s.kind, s.line])).toEqual([
      ['command', 27],
      ['export', 28],
      ['command', 29],
    ]);
    expect(task.steps[1]).toEqual({ kind: 'export', line: 28, name: 'NS', value: 'midwestmtg' });
    expect(commands(task.steps)[1]?.text).toBe('kubectl --context minikube -n $NS get sealedsecrets');
    expect(commands(task.rollback).map((c) => c.text)).toEqual(['kubectl --context minikube -n midwestmtg rollout undo deploy/backend']);
    expect(task.outOfScope).toEqual(['Re-encrypting secrets for other clusters']);
  });

  it('reads the criteria as verify, verify, manual, N/A', () => {
    expect(task.criteria.map((c) => [c.kind, c.line])).toEqual([
      ['verify', 33],
      ['verify', 38],
      ['manual', 43],
      ['na', 44],
    ]);
    const health = task.criteria[1] as Extract<Criterion, { kind: 'verify' }>;
    expect(commands(health.items)[0]?.expects).toEqual([{ kind: 'contains', text: '"status":"healthy"', line: 41 }]);
    const na = task.criteria[3] as Extract<Criterion, { kind: 'na' }>;
    expect(na.reason.startsWith('multi-arch builds are out of scope')).toBe(true);
  });

  it('lists the sections with their canonical names', () => {
    expect(task.sections.map((s) => s.name)).toEqual([null, 'context', 'preflight', 'steps', 'acceptance', 'rollback', 'out-of-scope']);
  });
});

describe('shared examples', () => {
  const files = readdirSync(FIXTURES).filter((f) => f.endsWith('.md'));
  it.each(files)('%s parses without errors', (f) => {
    const { task } = parsed(fixture(f), f);
    expect(task.criteria.length).toBeGreaterThan(0);
  });

  it('accepts the seeds-style `# Expected:` line', () => {
    const { task } = parsed(fixture('ssh-enable-tunnel-service.md'));
    const enabled = task.criteria[1] as Extract<Criterion, { kind: 'verify' }>;
    expect(commands(enabled.items)[0]?.expects).toEqual([{ kind: 'contains', text: 'enabled', line: 35 }]);
    expect(task.criteria[3]?.kind).toBe('manual');
  });
});

describe('runbook-style file (subsections, file blocks, console, nested fences)', () => {
  const { task } = parsed(fixture('runbook-style.md'));

  it('normalizes front matter: case-insensitive priority, comma string tags, durations, extra fields', () => {
    expect(task.fm.priority).toBe('low');
    expect(task.fm.tags).toEqual(['monitoring', 'node-exporter']);
    expect(task.fm.resources).toEqual(['host:web-1']);
    expect(task.fm.timeout_ms).toBe(90 * 60_000);
    expect(task.fm.extra).toEqual({ owner_team: 'platform' });
  });

  it('keeps subsections inside their section', () => {
    expect(task.context).toContain('### Why now');
    expect(task.sections.filter((s) => s.name === 'steps').map((s) => s.heading)).toEqual([
      'Implementation Steps',
      'Step 1: write the unit',
      'Step 2: write the defaults',
      'Step 3: start it',
    ]);
  });

  it('reads both forms of file block', () => {
    const files = task.steps.filter((s) => s.kind === 'file');
    expect(files).toEqual([
      {
        kind: 'file',
        line: 29,
        path: '/etc/systemd/system/node-exporter.service',
        content: '[Unit]\nDescription=Node exporter\n\n[Service]\nExecStart=/usr/local/bin/node_exporter\n',
      },
      { kind: 'file', line: 39, path: '/etc/default/node-exporter', content: 'ARGS="--collector.systemd"\n', mode: '0640' },
    ]);
  });

  it('runs console prompts only, skips the nested fence, joins continuations, reads exports', () => {
    const cmds = commands(task.steps).map((c) => c.text);
    expect(cmds).toEqual([
      'ssh web-1 systemctl daemon-reload',
      'ssh web-1 systemctl enable --now node-exporter.service',
      'curl -fsS http://web-1:$PORT/metrics --max-time 5',
    ]);
    expect(cmds.some((c) => c.includes('rm -rf'))).toBe(false);
    expect(task.steps.find((s) => s.kind === 'export')).toEqual({ kind: 'export', line: 59, name: 'PORT', value: '9100' });
    expect(commands(task.steps)[2]).toMatchObject({ line: 60, expects: [{ kind: 'contains', text: 'node_exporter_build_info', line: 62 }] });
  });

  it('reads criteria: indented block, block right after the item, nested bullets, N/A:, subsection check', () => {
    expect(task.criteria.map((c) => [c.kind, c.text, c.checked])).toEqual([
      ['verify', 'The unit file exists', true],
      ['verify', 'The exporter answers on 9100', false],
      ['manual', 'Grafana shows web-1', false],
      ['na', 'N/A: no firewall change on this host', false],
      ['verify', 'Verify operation', false],
    ]);
    const exists = task.criteria[0] as Extract<Criterion, { kind: 'verify' }>;
    expect(commands(exists.items)[0]).toMatchObject({ text: 'ssh web-1 test -f /etc/systemd/system/node-exporter.service', expects: [{ kind: 'exit', code: 0 }] });
    const answers = task.criteria[1] as Extract<Criterion, { kind: 'verify' }>;
    expect(commands(answers.items)[0]?.expects).toEqual([
      { kind: 'regex', source: 'node_exporter_build_info\\{.*\\}', flags: 'i', line: 75 },
      { kind: 'contains', text: 'go_goroutines', line: 76 },
    ]);
    expect(task.outOfScope).toEqual(['Dashboards', 'Alert rules for the exporter itself']);
  });
});

describe('front-matter keys named like object properties', () => {
  it('keeps constructor, toString and __proto__ as plain unknown fields, for either YAML path', () => {
    const text = ['---', 'id: TASK-001', 'title: t', 'constructor: a', 'toString: b', '__proto__: c', '---', '# t', ''].join('\n');
    for (const fast of [true, false]) {
      const r = parseTask(text, 'x.md', { fast });
      expect(r.ok, JSON.stringify(r)).toBe(true);
      if (!r.ok) continue;
      expect(Object.getPrototypeOf(r.task.fm.extra)).toBe(Object.prototype);
      expect(Object.keys(r.task.fm.extra).sort()).toEqual(['__proto__', 'constructor', 'toString']);
      expect(Object.getOwnPropertyDescriptor(r.task.fm.extra, 'constructor')?.value).toBe('a');
      expect(Object.getOwnPropertyDescriptor(r.task.fm.extra, '__proto__')?.value).toBe('c');
    }
  });
});

describe('constructs', () => {
  it.each([
    ['# expect: TEXT', '# expect: ready', { kind: 'contains', text: 'ready' }],
    ['# expect: /REGEX/flags', '# expect: /^ok$/im', { kind: 'regex', source: '^ok$', flags: 'im' }],
    ['# expect exit: N', '# expect exit: 3', { kind: 'exit', code: 3 }],
    ['# Expected: (seeds)', '# Expected: active', { kind: 'contains', text: 'active' }],
    ['# EXPECT EXIT CODE:', '# EXPECT EXIT CODE: 1', { kind: 'exit', code: 1 }],
    ['# expected output:', '# expected output: 3 replicas', { kind: 'contains', text: '3 replicas' }],
  ])('%s', (_name, line, want) => {
    const { task } = parsed(`## Steps\n\`\`\`sh\nsystemctl is-active x\n${line}\n\`\`\`\n`);
    expect(commands(task.steps)[0]?.expects).toEqual([{ ...want, line: 4 }]);
  });

  it('attaches several expectations to the preceding command across comments and blank lines', () => {
    const { task } = parsed('## Steps\n```bash\na one\n# expect: x\n\n# a plain comment\n# expect exit: 2\nb two\n```\n');
    expect(commands(task.steps).map((c) => [c.text, c.expects.map((e) => e.kind)])).toEqual([
      ['a one', ['contains', 'exit']],
      ['b two', []],
    ]);
  });

  it('strips a `$ ` prompt in sh blocks and skips # comments and shebangs', () => {
    const { task } = parsed('## Steps\n```sh\n#!/bin/sh\n$ kubectl get pods\n  # indented comment\n```\n');
    expect(commands(task.steps).map((c) => c.text)).toEqual(['kubectl get pods']);
  });

  it('joins `\\` continuations and keeps the first line number', () => {
    const { task } = parsed('## Steps\n```sh\nkubectl get \\\n  pods \\\n  -A\nnext\n```\n');
    expect(commands(task.steps).map((c) => [c.text, c.line])).toEqual([
      ['kubectl get pods -A', 3],
      ['next', 6],
    ]);
  });

  it('reads export with quotes', () => {
    const { task } = parsed(`## Steps\n\`\`\`sh\nexport A='x y'\nexport B="z"\nexport C=plain\n\`\`\`\n`);
    expect(task.steps.map((s) => (s.kind === 'export' ? [s.name, s.value] : null))).toEqual([
      ['A', 'x y'],
      ['B', 'z'],
      ['C', 'plain'],
    ]);
  });

  it('does not run blocks tagged with other languages, and warns about untagged ones in Steps', () => {
    const { task, warnings } = parsed('## Steps\n```yaml\nkey: value\n```\n```\nuntagged\n```\n```shell\nreal one\n```\n');
    expect(commands(task.steps).map((c) => c.text)).toEqual(['real one']);
    expect(warnings).toEqual([expect.objectContaining({ line: 5, field: 'Steps', fix: expect.stringContaining('```sh') })]);
  });

  it('allows blank lines between **File:** and its block, and the **File**: spelling', () => {
    const { task } = parsed('## Steps\n**File**: `/etc/a.conf`\n\n\n```\nA=1\n```\n');
    expect(task.steps).toEqual([{ kind: 'file', line: 5, path: '/etc/a.conf', content: 'A=1\n' }]);
  });

  it('a **File:** line followed by prose is not a file marker', () => {
    const { task } = parsed('## Steps\n**File:** `/etc/a.conf`\nThen run:\n```sh\nsystemctl restart a\n```\n');
    expect(task.steps.map((s) => s.kind)).toEqual(['command']);
  });

  it('dedents file content indented under a list item', () => {
    const { task } = parsed('## Steps\n- write it\n  ```ini file="/etc/x y.conf"\n  [a]\n    b=1\n  ```\n');
    expect(task.steps).toEqual([{ kind: 'file', line: 3, path: '/etc/x y.conf', content: '[a]\n  b=1\n' }]);
  });

  it.each([
    ['## Steps', 'steps'],
    ['### implementation steps', 'steps'],
    ['## STEPS TO FIX', 'steps'],
    ['## Pre-flight checks', 'preflight'],
    ['#### Rollback plan', 'rollback'],
    ['## Done when', 'acceptance'],
    ['## Success Criteria', 'acceptance'],
    ['## ✅ Acceptance Criteria', 'acceptance'],
    ['## Out-of-scope', 'out-of-scope'],
    ['## Background', 'context'],
    ['## Notes', null],
  ])('heading %j is section %j', (h, name) => {
    const { task } = parsed(`# Title\n${h}\ntext\n`);
    expect(task.sections[1]?.name).toBe(name);
  });

  it('a non-section heading ends a section; a deeper one belongs to it', () => {
    const { task } = parsed('## Steps\n### Part A\n```sh\na\n```\n## Notes\n```sh\nnot run\n```\n');
    expect(commands(task.steps).map((c) => c.text)).toEqual(['a']);
  });

  it('an H1 is the title, not a section, unless it names one exactly', () => {
    expect(parsed('# Roll back the release\n## Steps\n```sh\nx\n```\n').task.title).toBe('Roll back the release');
    expect(parsed('# Roll back the release\n').task.sections[0]?.name).toBe(null);
    expect(parsed('# Rollback\n```sh\nx\n```\n').task.rollback).toHaveLength(1);
  });

  it('title falls back from front matter to the first H1 to the file name', () => {
    expect(parsed(`${fm('title: From FM')}# From H1\n`).task.title).toBe('From FM');
    expect(parsed('# From H1\n').task.title).toBe('From H1');
    expect(parsed('no heading\n', 'tasks/backlog/fix-dns.md').task.title).toBe('fix-dns');
  });

  it('criteria: checked, N/A forms, plain top-level bullets, multi-line text', () => {
    const { task } = parsed(
      '## Acceptance Criteria\n- [x] done already\n- [ ] N/A - not here\n- [ ] n/a: lower case\n* plain bullet\n- [ ] wraps onto\n  a second line\n',
    );
    expect(task.criteria).toEqual([
      { kind: 'manual', line: 2, text: 'done already', checked: true },
      { kind: 'na', line: 3, text: 'N/A - not here', checked: false, reason: 'not here' },
      { kind: 'na', line: 4, text: 'n/a: lower case', checked: false, reason: 'lower case' },
      { kind: 'manual', line: 5, text: 'plain bullet', checked: false },
      { kind: 'manual', line: 6, text: 'wraps onto a second line', checked: false },
    ]);
  });

  it('a block after an item and a paragraph still belongs to that item', () => {
    const { task } = parsed('## Acceptance Criteria\n- [ ] ok\n\nSome words.\n\n```sh\ncheck\n```\n- [ ] manual\n');
    expect(task.criteria.map((c) => c.kind)).toEqual(['verify', 'manual']);
  });

  it('handles empty sections and an empty file', () => {
    const { task } = parsed('## Context\n## Steps\n## Acceptance Criteria\n## Rollback\n## Out of Scope\n');
    expect([task.context, task.steps, task.criteria, task.rollback, task.outOfScope]).toEqual(['', [], [], [], []]);
    const empty = parsed('', 'empty.md').task;
    expect(empty.title).toBe('empty');
    expect(empty.fm.priority).toBe('medium');
    expect(parsed(fm('')).task.fm.tags).toEqual([]);
  });

  it('nested fences: 4-backtick and tilde fences hide ``` lines; a shorter fence does not close a longer one', () => {
    const text = [
      '## Steps',
      '````sh',
      'echo one',
      '```',
      'echo two',
      '````',
      '~~~bash',
      '```',
      'echo three',
      '~~~',
      '```text',
      '~~~',
      '## Rollback',
      '```',
      '```sh',
      'echo four',
      '```',
    ].join('\n');
    const { task } = parsed(text);
    // ``` lines inside sh blocks are not commands starting with `#`, so they count as command text.
    expect(commands(task.steps).map((c) => c.text)).toEqual(['echo one', '```', 'echo two', '```', 'echo three', 'echo four']);
    expect(task.sections.map((s) => s.name)).toEqual(['steps']);
  });

  it('ignores a fenced heading and a fenced criterion', () => {
    const { task } = parsed('## Context\n```md\n## Steps\n- [ ] not a criterion\n```\n');
    expect(task.sections.map((s) => s.name)).toEqual(['context']);
    expect(task.criteria).toEqual([]);
  });

  it('CRLF files give the same task and line numbers as LF', () => {
    const lf = fixture('runbook-style.md');
    const a = parsed(lf).task;
    const b = parsed(lf.replace(/\n/g, '\r\n')).task;
    expect(b).toEqual(a);
    expect(b.context.includes('\r')).toBe(false);
  });

  it('a UTF-8 BOM is ignored and does not shift lines', () => {
    const text = fixture('design-example.md');
    expect(parsed(`\uFEFF${text}`).task).toEqual(parsed(text).task);
  });

  it('keeps unknown front-matter fields and warns about likely typos', () => {
    const { task, warnings } = parsed(fm('title: x\ndependencies: [TASK-001]\nteam: sre'));
    expect(task.fm.extra).toEqual({ dependencies: ['TASK-001'], team: 'sre' });
    expect(warnings).toEqual([expect.objectContaining({ line: 3, field: 'dependencies', fix: 'rename it to `depends_on`' })]);
  });

  it('a single string list is normalized (comma-split, except approve)', () => {
    const { task } = parsed(fm('tags: web\ndepends_on: TASK-001, TASK-002\napprove: kubectl delete ns a, b'));
    expect(task.fm.tags).toEqual(['web']);
    expect(task.fm.depends_on).toEqual(['TASK-001', 'TASK-002']);
    expect(task.fm.approve).toEqual(['kubectl delete ns a, b']);
  });

  it('parses the evidence section as evidence, not as criteria', () => {
    const text = '## Acceptance Criteria\n- [ ] a\n\n<!-- opscrew:evidence begin -->\n## Verification Evidence\n\n**Criterion 1:** a\n- [ ] looks like a criterion\n<!-- opscrew:evidence end -->\n';
    const { task } = parsed(text);
    expect(task.criteria).toHaveLength(1);
    expect(task.sections.map((s) => s.name)).toEqual(['acceptance', 'evidence']);
  });
});

describe('errors name file, line, field and fix', () => {
  const cases: Array<[string, string, { line: number; field: string; message: RegExp }]> = [
    ['unknown priority', fm('title: x\npriority: urgent'), { line: 3, field: 'priority', message: /"urgent" is not a priority/ }],
    ['bad id', fm('id: 7'), { line: 2, field: 'id', message: /7 is not a task id/ }],
    ['bad dependency item', fm('depends_on:\n  - TASK-001\n  - task two'), { line: 4, field: 'depends_on[1]', message: /"task two" is not a task id/ }],
    ['self dependency', fm('id: TASK-001\ndepends_on: [TASK-001]'), { line: 3, field: 'depends_on', message: /depends on itself/ }],
    ['timeout without unit', fm('timeout: 30'), { line: 2, field: 'timeout', message: /30 has no unit/ }],
    ['timeout not a duration', fm('timeout: soon'), { line: 2, field: 'timeout', message: /"soon" is not a duration/ }],
    ['max_attempts zero', fm('max_attempts: 0'), { line: 2, field: 'max_attempts', message: /at least 1/ }],
    ['max_attempts fraction', fm('max_attempts: 1.5'), { line: 2, field: 'max_attempts', message: /not a whole number/ }],
    ['unknown status', fm('status: done'), { line: 2, field: 'status', message: /"done" is not a task status/ }],
    ['tags a mapping', fm('tags: {a: 1}'), { line: 2, field: 'tags', message: /a mapping is not a list/ }],
    ['empty title', fm('title: ""'), { line: 2, field: 'title', message: /is empty/ }],
    ['bad YAML', fm('title: x\nagent: [a\npriority: high'), { line: 4, field: 'front matter', message: /invalid YAML/ }],
    ['duplicate key', fm('title: a\ntitle: b'), { line: 3, field: 'front matter', message: /unique/ }],
    ['front matter a list', fm('- a\n- b'), { line: 2, field: 'front matter', message: /key: value/ }],
    ['unclosed front matter', '---\ntitle: x\n# body\n', { line: 1, field: 'front matter', message: /never closed/ }],
    ['yaml front matter language other than yaml', '---toml\ntitle = "x"\n---\n', { line: 1, field: 'front matter', message: /YAML only/ }],
    ['stray --- line', '---\ntitle: x\n---more\n---\n', { line: 3, field: 'front matter', message: /---/ }],
    ['unclosed fence', '## Steps\n```sh\nkubectl get pods\n', { line: 2, field: 'Steps', message: /never closed/ }],
    ['expectation without command', '## Steps\n```sh\n# expect: x\nls\n```\n', { line: 3, field: 'Steps', message: /no command before it/ }],
    ['empty expectation', '## Steps\n```sh\nls\n# expect:\n```\n', { line: 4, field: 'Steps', message: /nothing to expect/ }],
    ['bad exit code', '## Steps\n```sh\nls\n# expect exit: many\n```\n', { line: 4, field: 'Steps', message: /exit code 0-255/ }],
    ['invalid regex', '## Steps\n```sh\nls\n# expect: /a(/\n```\n', { line: 4, field: 'Steps', message: /invalid regular expression/ }],
    ['stateful regex flag', '## Steps\n```sh\nls\n# expect: /a/g\n```\n', { line: 4, field: 'Steps', message: /flags "g"/ }],
    ['continuation at block end', '## Steps\n```sh\nkubectl get \\\n```\n', { line: 3, field: 'Steps', message: /ends with `\\`/ }],
    ['malformed export', '## Steps\n```sh\nexport NAME = x\n```\n', { line: 3, field: 'Steps', message: /not a variable assignment/ }],
    ['heredoc', '## Steps\n```sh\ncat <<EOF\nx\nEOF\n```\n', { line: 3, field: 'Steps', message: /here-documents/ }],
    ['bad file mode', '## Steps\n```ini file=/etc/x mode=rw\nx\n```\n', { line: 2, field: 'Steps', message: /not an octal mode/ }],
    ['N/A without reason', '## Acceptance Criteria\n- [ ] N/A\n', { line: 2, field: 'Acceptance Criteria', message: /no reason/ }],
    ['empty criterion', '## Acceptance Criteria\n- [ ]\n', { line: 2, field: 'Acceptance Criteria', message: /no text/ }],
    ['verify block with only comments', '## Acceptance Criteria\n- [ ] x\n  ```sh\n  # nothing\n  ```\n', { line: 2, field: 'Acceptance Criteria', message: /no command/ }],
    ['file block as proof', '## Acceptance Criteria\n- [ ] x\n  ```ini file=/etc/x\n  a\n  ```\n', { line: 3, field: 'Acceptance Criteria', message: /cannot prove/ }],
  ];

  it.each(cases)('%s', (_name, text, want) => {
    const r = failed(text, 'tasks/backlog/bad.md');
    const issue = r.issues[0];
    expect(issue).toBeDefined();
    expect(issue).toMatchObject({ file: 'tasks/backlog/bad.md', line: want.line, field: want.field });
    expect(issue?.message).toMatch(want.message);
    expect(issue?.fix?.length ?? 0).toBeGreaterThan(5);
    expect(formatIssue(issue as Issue)).toContain(`tasks/backlog/bad.md:${want.line}:`);
  });

  it('priority error reads like the fix a person needs', () => {
    const issue = failed(fm('priority: urgent'), 'a.md').issues[0] as Issue;
    expect(formatIssue(issue)).toBe('a.md:2: priority: "urgent" is not a priority (fix: use one of critical, high, medium, low)');
  });

  it('reports every invalid field, not only the first', () => {
    const r = failed(fm('priority: urgent\nmax_attempts: -1\ntimeout: 5'));
    expect(r.issues.map((i) => [i.field, i.line])).toEqual([
      ['priority', 2],
      ['max_attempts', 3],
      ['timeout', 4],
    ]);
  });

  it('returns the id of an invalid task when it is readable', () => {
    expect(failed(fm('id: TASK-042\npriority: urgent')).id).toBe('TASK-042');
    expect(failed(fm('id: TASK-043\ntitle: [broken')).id).toBe('TASK-043');
    expect(failed(fm('priority: urgent')).id).toBeUndefined();
  });

  it('bad fixtures: each one is reported with a located issue', () => {
    for (const f of readdirSync(path.join(FIXTURES, 'bad'))) {
      const r = failed(fixture(`bad/${f}`), f);
      expect(r.issues.length, f).toBeGreaterThan(0);
      for (const i of r.issues) {
        expect(i.file).toBe(f);
        expect(i.field, f).toBeTruthy();
        expect(i.fix, f).toBeTruthy();
      }
    }
  });
});

describe('hostile input', () => {
  it('refuses `---js` front matter without evaluating it', () => {
    const g = globalThis as { __opscrewEvaluated?: boolean };
    const payload = '{ title: (globalThis.__opscrewEvaluated = true, "pwned") }';
    // The payload is live JavaScript: evaluating it does set the flag.
    new Function(`return ${payload}`)();
    expect(g.__opscrewEvaluated).toBe(true);
    delete g.__opscrewEvaluated;
    for (const lang of ['js', 'javascript', 'JS', 'coffee']) {
      const r = failed(`---${lang}\n${payload}\n---\n# x\n`, 'evil.md');
      expect(r.issues[0]).toMatchObject({ file: 'evil.md', line: 1, field: 'front matter', message: expect.stringMatching(/refused/) });
      expect(g.__opscrewEvaluated).toBeUndefined();
    }
    const fromFixture = failed(fixture('bad/js-frontmatter.md'));
    expect(fromFixture.issues[0]?.message).toMatch(/evaluated as code/);
    expect(g.__opscrewEvaluated).toBeUndefined();
  });

  it('results are never shared between parses of the same text (no gray-matter cache)', () => {
    const text = fixture('design-example.md');
    const a = parsed(text).task;
    a.fm.tags.push('mutated');
    a.fm.extra.injected = true;
    const b = parsed(text).task;
    expect(b.fm.tags).toEqual(['kubernetes', 'sealed-secrets']);
    expect(b.fm.extra).toEqual({});
  });

  it('binary garbage and NUL bytes are "not a text task file"', () => {
    const garbage = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 256)).toString('utf8');
    for (const text of [garbage, 'hello\u0000world', fixture('bad/binary.md')]) {
      const r = failed(text, 'blob.md');
      expect(r.issues).toEqual([expect.objectContaining({ file: 'blob.md', line: 0, message: expect.stringMatching(/not a text task file/) })]);
    }
  });

  it('YAML alias bombs are bounded', () => {
    const bomb = fm(['a: &a [x, x, x, x, x, x, x, x, x]', 'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]', 'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]', 'd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]', 'e: [*d, *d, *d, *d, *d, *d, *d, *d, *d]'].join('\n'));
    const r = parseTask(bomb, 'bomb.md');
    expect(r.ok).toBe(false);
  });

  it('a 1 MB file parses quickly and completely', () => {
    const chunk = '- [ ] criterion with a check\n  ```sh\n  curl -fsS http://127.0.0.1/health\n  # expect: ok\n  ```\n';
    const steps = '```sh\nkubectl get pods -A\n# expect: Running\n```\n';
    let text = `${fm('title: big')}## Context\n${'free text line for people\n'.repeat(5000)}## Steps\n`;
    let n = 0;
    while (text.length < 500_000) {
      text += steps;
      n += 1;
    }
    text += '## Acceptance Criteria\n';
    let m = 0;
    while (text.length < 1_048_576) {
      text += chunk;
      m += 1;
    }
    const t0 = performance.now();
    const { task } = parsed(text);
    const ms = performance.now() - t0;
    expect(task.steps).toHaveLength(n);
    expect(task.criteria).toHaveLength(m);
    expect(ms).toBeLessThan(2000);
  });

  it('pathological lines stay linear (no regex backtracking blow-up)', () => {
    const sp = ' '.repeat(100_000);
    const text = [
      `# a${sp}b`,
      `## x${sp}#y`,
      `## Acceptance Criteria`,
      `- [ ]${sp}\rx`,
      `- N/A${sp}`,
      '',
      `**File:**${sp}x`,
      '## Steps',
      `**File:** \`/a\`${sp}x`,
      `\`\`\`sh${sp}"${sp}'`,
      `ls`,
      `# expect:${sp}x`,
      `# expect:${sp}/a/${sp}x`,
      `export A=${sp}`,
      `cat <<${sp}1`,
      `echo${sp}\\`,
      `${sp}x`,
      '```',
    ].join('\n');
    const t0 = performance.now();
    const r = parseTask(text, 'slow.md');
    expect(performance.now() - t0).toBeLessThan(1500);
    expect(r.ok ? [] : r.issues.map((i) => [i.line, i.message])).toEqual([[5, 'N/A criterion gives no reason']]);
  });

  it('the id of an invalid CRLF file is still found', () => {
    expect(failed('---\r\nid: TASK-044\r\ntitle: [x\r\n---\r\n').id).toBe('TASK-044');
  });

  it('long lines and deep nesting do not blow up', () => {
    const deep = `## Steps\n${'>'.repeat(10_000)} ${'['.repeat(10_000)}\n\`\`\`sh\n${'a'.repeat(200_000)}\n\`\`\`\n`;
    expect(commands(parsed(deep).task.steps)[0]?.text.length).toBe(200_000);
  });
});

describe('parseDuration', () => {
  it.each([
    ['30m', 1_800_000],
    ['90s', 90_000],
    ['2h', 7_200_000],
    ['1500ms', 1500],
    ['1h30m', 5_400_000],
    ['1h 30m', 5_400_000],
    ['1.5s', 1500],
    ['1d', 86_400_000],
    ['30', null],
    ['', null],
    ['m', null],
    ['5 minutes', null],
    ['-5m', null],
  ])('%j → %j', (input, want) => {
    expect(parseDuration(input)).toBe(want);
  });
});
