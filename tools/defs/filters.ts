// Read-only filters for the right side of a pipeline. They only ever read stdin: a file
// argument would turn `| grep x /etc/shadow` into a file read, so positionals are counted.

import { fail, ok, type Result } from '../result.js';
import type { Word } from '../tokenize.js';
import { FILTER_NAMES, type FilterCall, type FilterName } from '../types.js';
import { named, type ParseCode } from './common.js';

type R<T> = Result<T, ParseCode>;

interface FilterSpec {
  /** Single-letter boolean flags (bundlable: `-iv`). */
  bools: string;
  /** Single-letter flags taking a value (`-e PATTERN`, `-n5`, `-k 2,2n`). */
  values: string;
  /** Long flags → the short letter they stand for. */
  long: Readonly<Record<string, string>>;
  /** How many positional operands (never files) are allowed / required. */
  operands: { min: number; max: number; name: string };
  /** Validates a value flag's value. */
  checkValue?: (letter: string, value: string) => string | undefined;
  /** `-5` as shorthand for `-n 5` (head/tail). */
  numericShorthand?: boolean;
  /** Validates the operand. */
  checkOperand?: (value: string) => string | undefined;
  summary: string;
}

const COUNT = /^\d{1,9}$/;
const checkCount = (_l: string, v: string): string | undefined => (COUNT.test(v) ? undefined : `\`${v}\` is not a line count`);

export const FILTER_SPECS: Readonly<Record<FilterName, FilterSpec>> = {
  grep: {
    bools: 'ivcEFqwxon',
    values: 'em',
    long: {
      'ignore-case': 'i', 'invert-match': 'v', count: 'c', 'extended-regexp': 'E', 'fixed-strings': 'F',
      quiet: 'q', silent: 'q', 'word-regexp': 'w', 'line-regexp': 'x', 'only-matching': 'o', 'line-number': 'n',
      regexp: 'e', 'max-count': 'm',
    },
    operands: { min: 0, max: 1, name: 'pattern' },
    checkValue: (l, v) => (l === 'm' ? checkCount(l, v) : undefined),
    summary: 'grep [-i -v -c -E -F -q -w -x -o -n -m N] (-e PATTERN | PATTERN)',
  },
  jq: {
    bools: 'recS',
    values: '',
    long: { 'raw-output': 'r', 'exit-status': 'e', 'compact-output': 'c', 'sort-keys': 'S' },
    operands: { min: 1, max: 1, name: 'program' },
    // import/include load jq modules from the file system.
    checkOperand: (v) => (/\b(?:import|include)\b/.test(v) ? 'jq modules (import/include) read local files' : undefined),
    summary: "jq [-r -e -c -S] 'PROGRAM'",
  },
  head: {
    bools: '',
    values: 'n',
    long: { lines: 'n' },
    operands: { min: 0, max: 0, name: '' },
    checkValue: checkCount,
    numericShorthand: true,
    summary: 'head [-n N | -N]',
  },
  tail: {
    bools: '',
    values: 'n',
    long: { lines: 'n' },
    operands: { min: 0, max: 0, name: '' },
    checkValue: (l, v) => checkCount(l, v.startsWith('+') ? v.slice(1) : v),
    numericShorthand: true,
    summary: 'tail [-n N | -n +N | -N]',
  },
  wc: {
    bools: 'lcw',
    values: '',
    long: { lines: 'l', bytes: 'c', words: 'w' },
    operands: { min: 0, max: 0, name: '' },
    summary: 'wc [-l -c -w]',
  },
  sort: {
    bools: 'nru',
    values: 'kt',
    long: { 'numeric-sort': 'n', reverse: 'r', unique: 'u', key: 'k', 'field-separator': 't' },
    operands: { min: 0, max: 0, name: '' },
    checkValue: (l, v) =>
      l === 'k'
        ? /^\d+(?:\.\d+)?[bdfgiMhnRrV]*(?:,\d+(?:\.\d+)?[bdfgiMhnRrV]*)?$/.test(v)
          ? undefined
          : `\`${v}\` is not a sort key (e.g. 2,2n)`
        : v.length === 1
          ? undefined
          : `\`${v}\` is not a single separator character`,
    summary: 'sort [-n -r -u -k KEY -t SEP]',
  },
  uniq: {
    bools: 'cdui',
    values: '',
    long: { count: 'c', repeated: 'd', unique: 'u', 'ignore-case': 'i' },
    operands: { min: 0, max: 0, name: '' },
    summary: 'uniq [-c -d -u -i]',
  },
};

function isFilterName(s: string): s is FilterName {
  return (FILTER_NAMES as readonly string[]).includes(s);
}

/** Parses one pipeline stage after `|` into a vetted filter call. */
export function parseFilter(stage: readonly Word[]): R<FilterCall> {
  const head = stage[0]!;
  if (!isFilterName(head.text))
    return fail(
      'refused',
      `${named(head)} after \`|\` is not a vetted filter; a pipeline may only feed ${FILTER_NAMES.join(', ')} (no shell runs)`,
    );
  const name = head.text;
  const spec = FILTER_SPECS[name];
  const operands: Word[] = [];
  const patterns: Word[] = [];
  const letters = new Set<string>();
  let endOfFlags = false;

  const takeValue = (letter: string, value: string, w: Word): R<true> => {
    const why = spec.checkValue?.(letter, value);
    if (why) return fail('refused', `${name}: ${named(w)}: ${why}`);
    if (letter === 'e') patterns.push({ ...w, text: value });
    return ok(true);
  };

  for (let i = 1; i < stage.length; i++) {
    const w = stage[i]!;
    const text = w.text;
    if (endOfFlags || text === '-' || !text.startsWith('-')) {
      if (text === '-' && !endOfFlags) return fail('refused', `${name}: ${named(w)}: filters read only their pipe`);
      operands.push(w);
      continue;
    }
    if (text === '--') {
      endOfFlags = true;
      continue;
    }
    if (spec.numericShorthand && /^-\d+$/.test(text)) {
      const r = takeValue('n', text.slice(1), w);
      if (!r.ok) return r;
      letters.add('n');
      continue;
    }
    if (text.startsWith('--')) {
      const eq = text.indexOf('=');
      const long = eq === -1 ? text.slice(2) : text.slice(2, eq);
      const letter = spec.long[long];
      if (letter === undefined) return fail('refused', `${name}: flag ${named(w)} is not vetted; allowed: ${spec.summary}`);
      if (spec.values.includes(letter)) {
        let value: string;
        if (eq !== -1) value = text.slice(eq + 1);
        else {
          const next = stage[i + 1];
          if (next === undefined) return fail('refused', `${name}: ${named(w)} needs a value`);
          value = next.text;
          i++;
        }
        const r = takeValue(letter, value, w);
        if (!r.ok) return r;
      } else if (eq !== -1) return fail('refused', `${name}: ${named(w)} takes no value`);
      letters.add(letter);
      continue;
    }
    for (let j = 1; j < text.length; j++) {
      const letter = text[j]!;
      if (spec.bools.includes(letter)) {
        letters.add(letter);
        continue;
      }
      if (spec.values.includes(letter)) {
        let value = text.slice(j + 1);
        if (value === '') {
          const next = stage[i + 1];
          if (next === undefined) return fail('refused', `${name}: \`-${letter}\` in ${named(w)} needs a value`);
          value = next.text;
          i++;
        }
        const r = takeValue(letter, value, w);
        if (!r.ok) return r;
        letters.add(letter);
        break;
      }
      return fail('refused', `${name}: flag \`-${letter}\` in ${named(w)} is not vetted; allowed: ${spec.summary}`);
    }
  }

  // grep's -e supplies the pattern, so a positional after it would be a file.
  const max = patterns.length > 0 ? 0 : spec.operands.max;
  if (operands.length > max) {
    const extra = operands[max]!;
    return fail('refused', `${name}: ${named(extra)} looks like a file argument; filters read only their pipe`);
  }
  if (operands.length + patterns.length < spec.operands.min || (name === 'grep' && operands.length + patterns.length === 0))
    return fail('unparseable', `${name}: needs a ${spec.operands.name || 'pattern'}; usage: ${spec.summary}`);
  for (const o of [...patterns, ...operands]) {
    const why = spec.checkOperand?.(o.text);
    if (why) return fail('refused', `${name}: ${named(o)}: ${why}`);
  }
  return ok({ filter: name, args: stage.slice(1).map((w) => w.text) });
}
