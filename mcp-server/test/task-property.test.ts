import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseTask } from '../core/task-parse.js';
import { updateTaskText } from '../core/task-render.js';
import type { CriterionEvidence } from '../core/task-types.js';

const RUNS = 200;

// ---------------------------------------------------------------------------------------------
// (1) parseTask never throws, on anything

/** Pieces that steer random text into the parser's interesting paths. */
const MD_TOKENS = [
  '---',
  '---js',
  '```',
  '````',
  '~~~',
  '```sh',
  '```console',
  '```ini file=/etc/x mode=0644',
  '**File:** `/etc/y`',
  '# ',
  '## Steps',
  '## Acceptance Criteria',
  '### Verify',
  '## Context',
  '## Rollback',
  '## Out of Scope',
  '- [ ] ',
  '- [x] ',
  '  ',
  '$ ',
  '# expect: ',
  '# expect exit: ',
  '# Expected: /a(/',
  'export A=1',
  '\\',
  'N/A - ',
  'id: TASK-001',
  'priority: urgent',
  'tags: [a',
  '<<EOF',
  '<!-- opscrew:evidence begin -->',
  '<!-- opscrew:evidence end -->',
  '\n',
  '\r\n',
  '\r',
  '\uFEFF',
  '\u0000',
  ': ',
  '&a',
  '*a',
  '{',
  '}',
];

const mdSoup = fc.array(fc.oneof(fc.constantFrom(...MD_TOKENS), fc.string({ maxLength: 8 })), { maxLength: 80 }).map((parts) => parts.join(''));

function assertWellFormed(text: string): void {
  const r = parseTask(text, 'fuzz.md');
  if (r.ok) {
    expect(r.task.file).toBe('fuzz.md');
    return;
  }
  expect(r.issues.length).toBeGreaterThan(0);
  for (const i of r.issues) {
    expect(i.file).toBe('fuzz.md');
    expect(Number.isInteger(i.line) && i.line >= 0).toBe(true);
    // The catch-all must never be what answered: every issue is a real finding.
    expect(i.message).not.toMatch(/internal parser error/);
  }
}

describe('parseTask never throws', () => {
  it('on arbitrary unicode strings', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 400 }), assertWellFormed), { numRuns: RUNS });
  });

  it('on arbitrary grapheme strings', () => {
    fc.assert(fc.property(fc.string({ unit: 'grapheme', maxLength: 400 }), assertWellFormed), { numRuns: RUNS });
  });

  it('on markdown-shaped soup', () => {
    fc.assert(fc.property(mdSoup, assertWellFormed), { numRuns: RUNS * 3 });
  });

  it('on soup behind a valid front matter', () => {
    fc.assert(fc.property(mdSoup, (s) => assertWellFormed(`---\ntitle: t\n---\n${s}`)), { numRuns: RUNS * 2 });
  });
});

// ---------------------------------------------------------------------------------------------
// (2) the author's bytes survive every update

const CHARS = [...'abcdefghijklmnopqrstuvwxyz ABCXYZ0123456789.,;:!?()[]{}<>#-*_/\\|"\'@$%&=+~`^\téü✓→漢😀'];
const freeText = fc.string({ unit: fc.constantFrom(...CHARS), maxLength: 60 });
/** A line of author prose: anything that does not open a code block or collide with our markers. */
const proseLine = freeText.filter((l) => !/^[ \t]*(`{3,}|~{3,})/.test(l) && !l.includes('opscrew:evidence'));
const printable = fc.string({ unit: fc.constantFrom(...'abc XYZ 019 :#-"\'[]{}é✓漢'), maxLength: 30 });

const fenceBlock = fc
  .tuple(fc.constantFrom('```sh', '```', '~~~bash', '````md', '```ini file=/etc/a.conf', '  ```sh'), fc.array(freeText, { maxLength: 5 }))
  .map(([open, lines]) => {
    const indent = open.startsWith('  ') ? '  ' : '';
    const o = open.trim();
    const marks = /^(`+|~+)/.exec(o)?.[1] ?? '```';
    // Content lines may not close the fence early: drop lines made only of fence characters.
    const body = lines.filter((l) => !new RegExp(`^[ \\t]*[${marks[0] === '`' ? '`' : '~'}]{3,}[ \\t]*$`).test(l));
    return [`${indent}${o}`, ...body.map((l) => `${indent}${l}`), `${indent}${marks}`];
  });

const bodyChunk = fc.oneof(
  proseLine.map((l) => [l]),
  fc.constantFrom('## Context', '## Steps', '## Acceptance Criteria', '### Verify it', '## Rollback', '## Out of Scope', '# Title', '').map((l) => [l]),
  proseLine.map((l) => [`- [ ] ${l}`]),
  proseLine.map((l) => [`- [x] ${l}`]),
  proseLine.map((l) => [`**File:** \`/etc/${l.replace(/[`\s]/g, '') || 'f'}\``]),
  fenceBlock,
);

const frontMatterLines = fc
  .tuple(
    fc.option(printable.map((t) => `title: ${JSON.stringify(t)}`)),
    fc.option(fc.constantFrom('critical', 'high', 'medium', 'low', 'High').map((p) => `priority: ${p}   # why`)),
    fc.option(fc.constantFrom('tags: [a, b]', 'tags:\n  - a\n  - b', 'tags: web')),
    fc.option(fc.constantFrom('approve:\n  - kubectl delete ns x\n  # a comment inside\n  - ssh h systemctl stop y', 'approve: []')),
    fc.option(printable.map((t) => `owner_team: ${JSON.stringify(t)}`)),
    fc.option(fc.constantFrom('notes: |\n  free text\n  over lines\n', 'ticket: {system: jira, key: OPS-1}')),
    fc.array(printable.map((t) => `# ${t}`), { maxLength: 3 }),
    fc.array(fc.constant(''), { maxLength: 2 }),
  )
  .chain(([title, prio, tags, approve, owner, notes, comments, blanks]) => {
    const lines = [title, prio, tags, approve, owner, notes].filter((x): x is string => x !== null);
    return fc.shuffledSubarray([...lines, ...comments, ...blanks], { minLength: lines.length + comments.length + blanks.length });
  });

interface Doc {
  text: string;
  eol: string;
}

const taskDoc: fc.Arbitrary<Doc> = fc
  .record({
    fm: fc.option(frontMatterLines, { freq: 6 }),
    body: fc.array(bodyChunk, { maxLength: 14 }),
    crlf: fc.boolean(),
    bom: fc.boolean(),
    finalBreak: fc.boolean(),
  })
  .map(({ fm, body, crlf, bom, finalBreak }) => {
    const lines = [...(fm ? ['---', ...fm, '---'] : []), ...body.flat()];
    let text = lines.join('\n');
    if (finalBreak) text += '\n';
    const eol = crlf ? '\r\n' : '\n';
    if (crlf) text = text.replace(/\n/g, '\r\n');
    return { text: (bom ? '\uFEFF' : '') + text, eol };
  });

const RUNNER_KEYS = ['status', 'blocked_reason', 'attempts', 'run_id', 'started_at', 'updated_at', 'completed_at', 'blocked_at'] as const;
const scalar = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.constantFrom('blocked', 'active', 'yes', 'null', '~', '- x', 'a: b', '#c', '"q"', "'q'", '---', '```', '\n', ' x '),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.boolean(),
);
const setOf = fc.uniqueArray(fc.constantFrom(...RUNNER_KEYS), { minLength: 1 }).chain((keys) =>
  fc.tuple(...keys.map((k) => scalar.map((v) => [k, v] as const))).map((pairs) => Object.fromEntries(pairs) as Record<string, string | number | boolean>),
);

const evidence: fc.Arbitrary<CriterionEvidence[]> = fc.array(
  fc.record({
    criterion: fc.string({ unit: 'grapheme', maxLength: 40 }),
    outcome: fc.constantFrom('verified', 'failed', 'na', 'attested', 'manual'),
    commands: fc.array(
      fc.record({
        command: fc.string({ maxLength: 40 }),
        exitCode: fc.option(fc.integer({ min: 0, max: 255 })),
        durationMs: fc.nat(100_000),
        excerpt: fc.oneof(fc.string({ unit: 'binary', maxLength: 80 }), fc.constantFrom('```', '````\n<!-- opscrew:evidence end -->\n```', '~~~\n## Steps')),
        passed: fc.boolean(),
      }),
      { maxLength: 3 },
    ),
  }),
  { maxLength: 4 },
);

function ok(r: ReturnType<typeof updateTaskText>): string {
  if (!r.ok) throw new Error(`${r.code}: ${r.message}`);
  return r.value;
}

/** Offset where the body starts (after the closing `---` line), found without the code under test. */
function bodyStart(text: string): number {
  const start = text.startsWith('\uFEFF') ? 1 : 0;
  if (!text.startsWith('---', start) || text[start + 3] === '-') return start;
  const m = /\n---[ \t]*\r?\n|\n---[ \t]*$/.exec(text.slice(start + 3));
  return m ? start + 3 + m.index + m[0].length : text.length;
}

/** What the body means, without line numbers (front-matter edits shift them) or evidence. */
function meaning(text: string): unknown {
  const r = parseTask(text.slice(bodyStart(text)), 'p.md');
  if (!r.ok) return { ok: false, messages: r.issues.map((i) => i.message) };
  const { sections, ...rest } = r.task;
  return JSON.parse(JSON.stringify({ ...rest, sections: sections.filter((s) => s.name !== 'evidence') }, (k, v: unknown) => (k === 'line' ? undefined : v)));
}

const loneLf = (s: string): number => s.split('\n').length - s.split('\r\n').length;

describe('updateTaskText keeps the author\'s bytes', () => {
  it('an empty update is the identity', () => {
    fc.assert(
      fc.property(taskDoc, ({ text }) => {
        expect(ok(updateTaskText(text, {}))).toBe(text);
      }),
      { numRuns: RUNS },
    );
  });

  it('set then unset of runner-owned keys returns the original bytes; the values read back', () => {
    fc.assert(
      fc.property(taskDoc, setOf, ({ text, eol }, set) => {
        const updated = ok(updateTaskText(text, { set }));
        // Every added line uses the file's line ending.
        if (eol === '\r\n' && text.includes('\r\n')) expect(loneLf(updated)).toBe(loneLf(text));
        expect(updated.slice(bodyStart(updated))).toBe(text.slice(bodyStart(text)));
        const back = ok(updateTaskText(updated, { unset: Object.keys(set) }));
        expect(back).toBe(text);
      }),
      { numRuns: RUNS },
    );
  });

  it('written values parse back exactly (as YAML data)', () => {
    fc.assert(
      fc.property(taskDoc, fc.string({ unit: 'grapheme', maxLength: 40 }).filter((s) => s.trim() !== ''), ({ text }, reason) => {
        const before = parseTask(text, 'p.md');
        fc.pre(before.ok);
        const updated = ok(updateTaskText(text, { set: { status: 'blocked', blocked_reason: reason, attempts: 3 } }));
        const after = parseTask(updated, 'p.md');
        expect(after.ok).toBe(true);
        if (after.ok) expect(after.task.fm).toMatchObject({ status: 'blocked', blocked_reason: reason.trim(), attempts: 3 });
      }),
      { numRuns: RUNS },
    );
  });

  it('adding evidence then removing it returns the original bytes; replacing is idempotent', () => {
    fc.assert(
      fc.property(taskDoc, evidence, evidence, ({ text }, ev1, ev2) => {
        const once = ok(updateTaskText(text, { evidence: ev1 }));
        expect(once.startsWith(text)).toBe(true);
        const twice = ok(updateTaskText(once, { evidence: ev1 }));
        expect(twice).toBe(once);
        const other = ok(updateTaskText(once, { evidence: ev2 }));
        expect(other).toBe(ok(updateTaskText(text, { evidence: ev2 })));
        expect(ok(updateTaskText(other, { evidence: null }))).toBe(text);
      }),
      { numRuns: RUNS },
    );
  });

  it('after any update the body is byte-identical outside front matter and evidence, and means the same', () => {
    fc.assert(
      fc.property(taskDoc, setOf, evidence, fc.subarray([...RUNNER_KEYS]), ({ text }, set, ev, unset) => {
        const updated = ok(updateTaskText(text, { set, evidence: ev, unset }));
        const oldBody = text.slice(bodyStart(text));
        const newBody = updated.slice(bodyStart(updated));
        expect(newBody.startsWith(oldBody)).toBe(true);
        // What follows the author's body is only our separator and the generated section.
        expect(newBody.slice(oldBody.length)).toMatch(/^(\r?\n){1,2}<!-- opscrew:evidence begin( noeol)? -->\r?\n/);
        expect(meaning(updated)).toEqual(meaning(text));
      }),
      { numRuns: RUNS },
    );
  });
});
