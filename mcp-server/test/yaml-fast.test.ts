// The fast YAML path (yaml-fast.ts) must give exactly what the library path gives: same data, key
// lines, item lines, key spans, same front matter, parsed task and rendered text, for every input.
// Generated front matter sits in and around the fast path's shapes so both sides of each of its
// rules are exercised; the library path (`fast: false`) is the reference.
import fc from 'fast-check';
import { inspect, isDeepStrictEqual } from 'node:util';
import { describe, expect, it } from 'vitest';
import { readFrontMatter } from '../core/frontmatter.js';
import { parseTask } from '../core/task-parse.js';
import { updateTaskText, type TaskUpdate } from '../core/task-render.js';
import { locateTopLevelKeys, parseFlatYaml, parseYaml, stringifyYamlScalar } from '../core/yaml.js';

const LIB = { fast: false } as const;

// ---------------------------------------------------------------------------------------------
// Generators

/** Scalars at and around the fast path's edges: core-schema words and numbers, quotes, indicators. */
const NEAR_MISS_SCALARS = [
  'yes', 'no', 'on', 'off', 'y', 'true', 'True', 'TRUE', 'tRue', 'false', 'False', 'FALSE', 'null', 'Null', 'NULL', 'nUll', '~',
  '0', '00', '007', '12', '-1', '+1', '-0', '0x1F', '0x', '0o17', '0o8', '017', '1e3', '1E3', '1e', '1.5', '1.', '.5', '1.50',
  '.inf', '-.inf', '+.Inf', '.nan', '.NaN', 'inf', 'NaN', '123456789012345', '1234567890123456', '9007199254740993',
  '2024-01-01', '2024-01-01T10:00:00Z', '2024-05-01T10:00:00.000Z', '10:30', '1_000', '1:2', '1,5', '3 days',
  'a: b', 'a:b', 'x:', 'x: ', 'a #b', 'a#b', '#x', 'a # b', 'a  b', 'a, b', 'a [b] {c}', '[x]', '{x}',
  '"quoted"', "'single'", '"with \\"esc"', '"tab\\t"', "'it''s'", '"unterminated', "'unterminated", '""', "''", '"a" b', '"a # b"',
  '[a, b]', '[a,b]', '[ a , b ]', '[a, b,]', '[]', '[ ]', '[a, [b]]', '[a, {b: 1}]', '["x", \'y\']', '[a: b]', '[a #b]', '[a,,b]',
  '{a: 1}', '&anchor x', '*alias', '!tag x', '!!str 1', '|', '|-', '>', '- x', '-x', '--x', '?x', '? x', ':x', '@x', '`x', '%x',
  '/etc/nginx', '_x', 'http://x:80/y', 'TASK-000001', 'run-01HZX', 'bench get 1', 'é', 'naïve', '日本語', '🚀 launch', 'a✓',
  '\u0301a', 'x\u0301', '«a»', '€5', 'a：b', '👩\u200d💻', 'a\u00a0b', '\u00a0a', 'a\u200bb', 'a\u2028b', 'a\u0085b', 'a\uFEFFb', 'a\ud800b', 'a\\b', 'a"b', "a'b", 'a|b', 'a>b', 'a---b', '---',
  '...', 'a...', 'K'.repeat(1100),
];

const CHARS = [...'abcXYZ019 :#-_[]{},"\'!&*|>?%@`~.+/\\\t', '\r', '\n', 'é', '✓', '漢', '🚀', '\u0301', '–', '«', '€', '：', '\u00a0', '\u2028', '\u200d', '\uFEFF', '\uE000', '\uD800'];
const randomText = fc.string({ unit: fc.constantFrom(...CHARS), maxLength: 24 });
const word = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9 ._/-]{0,20}$/);
const scalar = fc.oneof({ weight: 8, arbitrary: word }, { weight: 2, arbitrary: fc.constantFrom(...NEAR_MISS_SCALARS) }, { weight: 1, arbitrary: randomText });

const KEYS = [
  'id', 'title', 'priority', 'tags', 'depends_on', 'status', 'a', 'b', 'x-y', '_k', 'true', 'False', 'null', '__proto__',
  'constructor', 'toString', 'excerpt_separator', '1', '1a', 'a b', 'é', '-a', '? a', '"q"', 'K'.repeat(130), 'k'.repeat(1030),
];
const key = fc.oneof({ weight: 1, arbitrary: fc.constantFrom(...KEYS) }, { weight: 6, arbitrary: fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_-]{0,6}$/) });

/** Each list leads with its common form, which `often` picks most of the time. */
const SEPARATORS = [': ', ':  ', ':', ' : ', ':\t', ': \t'];
const TRAILERS = ['', ' ', '  ', ' # note', '  #note', '#x', '\t', ' #'];
const DASHES = ['- ', '-  ', '-', '-\t', '- - '];
const often = <T>(values: readonly T[]): fc.Arbitrary<T> =>
  fc.oneof({ weight: 6, arbitrary: fc.constant(values[0] as T) }, { weight: 1, arbitrary: fc.constantFrom(...values) });
const INDENTS = ['', '  ', '  ', '    ', ' '];
const OTHER_LINES = ['', '', '  ', '# comment', '#', '  # indented comment', '---', '...', '%YAML 1.2', '  continued', '\tx', 'key: |', '  text', '- loose', 'plain text', '? complex'];

const flowSeq = fc
  .tuple(fc.array(scalar, { maxLength: 3 }), fc.constantFrom(', ', ',', ' , '), often([['[', ']'], ['[ ', ' ]'], ['[', ',]']]))
  .map(([items, sep, [open, close]]) => `${open}${items.join(sep)}${close}`);

const inlineEntry = fc
  .tuple(key, often(SEPARATORS), fc.oneof({ weight: 3, arbitrary: scalar }, { weight: 1, arbitrary: flowSeq }, { weight: 1, arbitrary: fc.constant('') }), often(TRAILERS))
  .map(([k, sep, v, trail]) => [`${k}${sep}${v}${trail}`]);

const itemLine = fc
  .tuple(often(DASHES), scalar, often(TRAILERS))
  .map(([dash, v, trail]) => `${dash}${v}${trail}`);

const blockEntry = fc
  .tuple(
    key,
    often([':', ': ', ': # c', ':x']),
    often(['none', '', '  ', '# c']),
    fc.constantFrom(...INDENTS),
    fc.array(fc.tuple(itemLine, often(['', '  ', 'blank', '# c'])), { minLength: 1, maxLength: 3 }),
    often([false, true]),
  )
  .map(([k, colon, gap, indent, items, oddIndent]) => [
    `${k}${colon}`,
    // A blank line (or a comment, which the fast path leaves to the library) before the items.
    ...(gap === 'none' ? [] : [gap]),
    ...items.flatMap(([line, extra], i) => {
      const ind = oddIndent && i === items.length - 1 ? `${indent} ` : indent;
      const after = extra === 'blank' ? [''] : extra === '' ? [] : [extra];
      return [`${ind}${line}`, ...after];
    }),
  ]);

const yamlLines = fc
  .array(fc.oneof({ weight: 8, arbitrary: inlineEntry }, { weight: 3, arbitrary: blockEntry }, { weight: 1, arbitrary: fc.constantFrom(...OTHER_LINES).map((l) => [l]) }), { minLength: 0, maxLength: 5 })
  .map((groups) => groups.flat());

/** YAML text: lines joined by LF (mostly), CRLF or a mix, with or without a last line break. */
const yamlText = fc
  .tuple(yamlLines, often(['\n', '\r\n', 'mixed']), fc.boolean(), often(['', '\n', '\uFEFF']))
  .map(([lines, eol, last, lead]) => {
    const join = (i: number): string => (eol === 'mixed' ? (i % 2 === 0 ? '\r\n' : '\n') : eol);
    const text = lines.map((l, i) => (i < lines.length - 1 || last ? l + join(i) : l)).join('');
    return lead + text;
  });

// ---------------------------------------------------------------------------------------------
// Equivalence

/**
 * Deep, strict equality (prototypes, own properties, -0). Not vitest's toStrictEqual alone: it also
 * compares `.constructor`, which is an own property (an array, say) for a `constructor:` key.
 */
function expectSame(actual: unknown, expected: unknown): void {
  if (isDeepStrictEqual(actual, expected)) return;
  expect(actual).toStrictEqual(expected);
  throw new Error(`fast and library results differ:\n${inspect(actual, { depth: 9 })}\n${inspect(expected, { depth: 9 })}`);
}

function sameParse(text: string): boolean {
  expectSame(parseYaml(text), parseYaml(text, LIB));
  expectSame(locateTopLevelKeys(text), locateTopLevelKeys(text, LIB));
  return parseFlatYaml(text) !== null;
}

/** Runs `check` over `arb`, counting how often the fast path answered, so no property is vacuous. */
function assertBothPaths<T>(arb: fc.Arbitrary<T>, check: (v: T) => boolean, numRuns: number): void {
  let fast = 0;
  fc.assert(
    fc.property(arb, (v) => {
      if (check(v)) fast += 1;
    }),
    { numRuns },
  );
  expect(fast).toBeGreaterThan(numRuns * 0.1);
  expect(numRuns - fast).toBeGreaterThan(numRuns * 0.1);
}

describe('fast YAML path equals the library', () => {
  it('parseYaml and locateTopLevelKeys: same data, key lines, item lines and spans (or same error)', () => {
    assertBothPaths(yamlText, sameParse, 3000);
  });

  it('readFrontMatter and parseTask: same result on generated front matter, bodies and delimiters', () => {
    const file = fc
      .tuple(fc.constantFrom('', '\uFEFF'), fc.constantFrom('---', '---', '---', '--- ', '---yaml', '---js', '---json'), fc.constantFrom('\n', '\r\n'), yamlText, fc.constantFrom('---\n# T\n\n## Steps\n```sh\necho hi\n```\n', '---\r\nbody\r\n', '---', '--- \n', '----\n'))
      .map(([bom, open, eol, yaml, rest]) => {
        const block = yaml === '' || yaml.endsWith('\n') ? yaml : yaml + eol;
        return { text: `${bom}${open}${eol}${block}${rest}`, block };
      })
      // A `__proto__` key makes readFrontMatter's line maps take a fresh array as their prototype
      // (`itemLines.__proto__ = []`), so even two library runs differ there; both paths do the same.
      .filter(({ text }) => !text.includes('__proto__'));
    assertBothPaths(
      file,
      ({ text, block }) => {
        expectSame(readFrontMatter(text, 't.md'), readFrontMatter(text, 't.md', LIB));
        expectSame(parseTask(text, 't.md'), parseTask(text, 't.md', LIB));
        return parseFlatYaml(`\n${block.replace(/\r\n/g, '\n').slice(0, -1)}`) !== null;
      },
      1500,
    );
  });

  it('stringifyYamlScalar: same text for every string', () => {
    const strings = fc.oneof(scalar, fc.string({ maxLength: 30 }), fc.string({ unit: 'grapheme', maxLength: 12 }));
    assertBothPaths(
      strings,
      (s) => {
        expect(stringifyYamlScalar(s)).toBe(stringifyYamlScalar(s, LIB));
        return stringifyYamlScalar(s) === s;
      },
      3000,
    );
  });

  it('updateTaskText: same text or same failure when setting and unsetting keys', () => {
    const value = fc.oneof(scalar, fc.integer({ min: -5, max: 1e6 }), fc.boolean(), fc.constant(null), fc.double());
    const update = fc.record({
      set: fc.dictionary(fc.oneof(key, fc.constantFrom('status', 'run_id', 'attempts', 'started_at')), value, { maxKeys: 4 }),
      unset: fc.array(fc.oneof(key, fc.constantFrom('blocked_reason', 'blocked_at', 'tags')), { maxLength: 3 }),
    });
    const doc = fc.tuple(yamlText, often(['\n', '\r\n']), often([true, false])).map(([yaml, eol, present]) => {
      const block = yaml === '' || yaml.endsWith('\n') ? yaml : yaml + eol;
      return { text: present ? `---${eol}${block}---${eol}# T${eol}` : `# T${eol}`, block: present ? block : '' };
    });
    assertBothPaths(
      fc.tuple(doc, update),
      ([{ text, block }, up]) => {
        const u: TaskUpdate = { set: up.set, unset: up.unset };
        expectSame(updateTaskText(text, u, 't.md'), updateTaskText(text, u, 't.md', LIB));
        return parseFlatYaml(block) !== null;
      },
      1500,
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Tables: which shapes the fast path takes, and that each answer is the library's

/** Inputs the fast path must answer itself (the common front matter shapes). */
const FAST: Array<[string, unknown]> = [
  ['\nid: TASK-000001\ntitle: bench get 1', { id: 'TASK-000001', title: 'bench get 1' }],
  ['\nid: TASK-000001\ntitle: bench get 1\npriority: high\ntags: [dns, prod]\ndepends_on:\n  - TASK-000002', { id: 'TASK-000001', title: 'bench get 1', priority: 'high', tags: ['dns', 'prod'], depends_on: ['TASK-000002'] }],
  ['title: "deploy web"\nresources: ["r1", \'r 2\']\nmax_attempts: 2\ncreated_at: 2024-05-01T10:00:00.000Z\n', { title: 'deploy web', resources: ['r1', 'r 2'], max_attempts: 2, created_at: '2024-05-01T10:00:00.000Z' }],
  ['a: yes\nb: true\nc: False\nd: null\ne: 0\nf: 42\ng: []\nh:\n', { a: 'yes', b: true, c: false, d: null, e: 0, f: 42, g: [], h: null }],
  ['a: value # comment\nb: x#y\n# full-line comment\n\nc:\n- one\n-   two  # c\n\n- "three"\n', { a: 'value', b: 'x#y', c: ['one', 'two', 'three'] }],
  ['a: 2024-01-01\nb: 10:30\nc: 1_000\nd: inf\ne: /etc/x', { a: '2024-01-01', b: '10:30', c: '1_000', d: 'inf', e: '/etc/x' }],
  ['title: naïve 日本語 🚀 [wip] a:b http://x/y\n', { title: 'naïve 日本語 🚀 [wip] a:b http://x/y' }],
];

/** Near misses the library must decide (each still parses, or fails, exactly as before). */
const FALLBACK = [
  'a: 0x1F', 'a: 1e3', 'a: .inf', 'a: ~', 'a: 007', 'a: -1', 'a: 1.5', 'a: 9007199254740993',
  'a: "esc\\"aped"', "a: 'it''s'", 'a: &x 1', 'a: !!str 1', 'a: |\n  text', 'a: b\n  continued', 'a: b: c', 'a: b:',
  'a: [x, [y]]', 'a: [x,]', 'a: {b: 1}', 'a:\n  b: 1', 'a:\n  - x\n   - y', 'a:\n  - x\n# c\n  - y', 'a: # c\n- x', 'a: 1\na: 2',
  'a:\tb', '\ta: b', 'a: b\r\nc: d', '\uFEFFa: b', 'a: b\u00a0', 'true: 1', '__proto__: 1', '? a\n: b', '--- \na: 1', '# only a comment',
  '', '- a\n- b', 'plain', 'a: -', 'a:\n-', 'a: "multi\n  line"',
];

describe('fast YAML path: tables', () => {
  it.each(FAST)('takes the fast path and matches the library: %j', (text, data) => {
    expect(parseFlatYaml(text)).not.toBeNull();
    const lib = parseYaml(text, LIB);
    expect(parseYaml(text)).toStrictEqual(lib);
    expect(lib.ok && lib.value.data).toStrictEqual(data);
    expect(locateTopLevelKeys(text)).toStrictEqual(locateTopLevelKeys(text, LIB));
  });

  it.each(FALLBACK)('leaves %j to the library, with the same answer', (text) => {
    expect(parseFlatYaml(text)).toBeNull();
    expect(parseYaml(text)).toStrictEqual(parseYaml(text, LIB));
    expect(locateTopLevelKeys(text)).toStrictEqual(locateTopLevelKeys(text, LIB));
  });

  it('reports key lines and item lines as the library does', () => {
    const text = '\nid: TASK-1\n\ntags: [a, b]\n# c\ndeps:\n  - X\n\n  - Y\nk:\n';
    const r = parseYaml(text);
    expect(r.ok && r.value.keys).toStrictEqual([
      { key: 'id', line: 2, itemLines: [] },
      { key: 'tags', line: 4, itemLines: [4, 4] },
      { key: 'deps', line: 6, itemLines: [7, 9] },
      { key: 'k', line: 10, itemLines: [] },
    ]);
    expect(r).toStrictEqual(parseYaml(text, LIB));
  });

  it('writes plain strings itself and leaves the rest to the library', () => {
    for (const s of ['active', 'run-01HZX', '2024-05-01T10:00:00.000Z', 'a:b', 'naïve', 'x#y']) {
      expect(stringifyYamlScalar(s)).toBe(s);
      expect(stringifyYamlScalar(s, LIB)).toBe(s);
    }
    for (const s of ['true', 'null', '12', '1e3', '2024-01-01', 'a: b', 'a #b', 'x:', ' x', '-x', '', 'yes\n']) {
      expect(stringifyYamlScalar(s)).toBe(stringifyYamlScalar(s, LIB));
    }
    expect(stringifyYamlScalar('true')).toBe('"true"');
    expect(stringifyYamlScalar('a: b')).toBe('"a: b"');
  });

  it('still refuses code front matter without evaluating it', () => {
    const text = '---js\n{ title: (() => { throw new Error("evaluated") })() }\n---\n# T\n';
    const r = readFrontMatter(text, 't.md');
    expect(r.ok).toBe(false);
    expect(!r.ok && r.issues[0]?.message).toMatch(/refused/);
  });
});
