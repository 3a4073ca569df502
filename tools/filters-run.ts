// Read-only filters on the right side of a pipeline, run on captured output without a shell:
// grep head tail wc sort uniq in JS (the vetted flags only), jq through the real jq binary
// with the text on stdin. Each stage gets the previous stage's stdout.
import type { FilterCall, Spawner } from './types.js';

export interface FilterResult {
  exitCode: number | null;
  stdout: string;
  stderr: string;
  timedOut?: boolean;
  truncated?: boolean;
  /** The stage was not run: a flag or operand outside the vetted set. */
  refused?: { code: string; message: string };
}

export interface FilterRunOptions {
  spawn: Spawner;
  env: Record<string, string>;
  timeoutMs: number;
  outputCap: number;
  signal?: AbortSignal;
  /** The jq program; Debian's by default. */
  jqPath?: string;
}

const refuse = (filter: string, message: string): FilterResult => ({
  exitCode: null,
  stdout: '',
  stderr: `${filter}: ${message}`,
  refused: { code: 'filter-args', message: `${filter}: ${message}` },
});

function lines(text: string): string[] {
  if (text === '') return [];
  const ls = text.split('\n');
  if (ls[ls.length - 1] === '') ls.pop();
  return ls;
}

function unlines(ls: string[]): string {
  return ls.length ? ls.join('\n') + '\n' : '';
}

/**
 * Splits short-flag clusters; options in `withValue` take the next word (or the rest of the
 * cluster); long options map to their letter through `long` (`--lines=5`, `--count`).
 */
function getopt(
  args: string[],
  flags: string,
  withValue: string,
  long: Readonly<Record<string, string>> = {},
): { opts: Array<[string, string]>; operands: string[] } | { error: string } {
  const opts: Array<[string, string]> = [];
  const operands: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    if (a === '--') {
      operands.push(...args.slice(i + 1));
      break;
    }
    if (!a.startsWith('-') || a === '-' || a.length < 2) {
      operands.push(a);
      continue;
    }
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = eq === -1 ? a.slice(2) : a.slice(2, eq);
      const letter = long[name];
      if (letter === undefined) return { error: `option --${name} is not supported` };
      if (withValue.includes(letter)) {
        const value = eq !== -1 ? a.slice(eq + 1) : args[++i];
        if (value === undefined) return { error: `option --${name} needs a value` };
        opts.push([letter, value]);
      } else {
        if (eq !== -1) return { error: `option --${name} takes no value` };
        opts.push([letter, '']);
      }
      continue;
    }
    for (let j = 1; j < a.length; j++) {
      const f = a[j] ?? '';
      if (withValue.includes(f)) {
        const rest = a.slice(j + 1);
        const value = rest !== '' ? rest : args[++i];
        if (value === undefined) return { error: `option -${f} needs a value` };
        opts.push([f, value]);
        break;
      }
      if (/[0-9]/.test(f) && flags.includes('#')) {
        // `head -5` style count.
        opts.push(['n', a.slice(j)]);
        break;
      }
      if (!flags.includes(f)) return { error: `option -${f} is not supported (allowed: ${[...flags.replace('#', ''), ...withValue].map((x) => '-' + x).join(' ')})` };
      opts.push([f, '']);
    }
  }
  return { opts, operands };
}

const POSIX_CLASSES: Record<string, string> = {
  alpha: 'a-zA-Z',
  digit: '0-9',
  alnum: 'a-zA-Z0-9',
  upper: 'A-Z',
  lower: 'a-z',
  space: ' \\t\\n\\r\\f\\v',
  blank: ' \\t',
  punct: '!-\\/:-@\\[-`{-~',
  xdigit: '0-9A-Fa-f',
};

/** Translates a POSIX basic or extended regular expression to a JS one. */
export function posixToJs(pattern: string, extended: boolean): string {
  let out = '';
  let i = 0;
  while (i < pattern.length) {
    const c = pattern[i] ?? '';
    if (c === '[') {
      // Bracket expression: copied with POSIX rules (backslash literal, leading ] literal).
      let j = i + 1;
      let body = '';
      if (pattern[j] === '^') {
        body += '^';
        j++;
      }
      if (pattern[j] === ']') {
        body += '\\]';
        j++;
      }
      while (j < pattern.length && pattern[j] !== ']') {
        const m = /^\[:([a-z]+):\]/.exec(pattern.slice(j));
        if (m) {
          const cls = POSIX_CLASSES[m[1] ?? ''];
          if (cls === undefined) throw new Error(`unknown character class [:${m[1]}:]`);
          body += cls;
          j += m[0].length;
          continue;
        }
        const ch = pattern[j] ?? '';
        body += ch === '\\' || ch === '[' ? '\\' + ch : ch;
        j++;
      }
      if (j >= pattern.length) throw new Error('unmatched [');
      out += `[${body}]`;
      i = j + 1;
      continue;
    }
    if (c === '\\') {
      const n = pattern[i + 1];
      if (n === undefined) throw new Error('trailing backslash');
      if (!extended && '(){}|+?'.includes(n)) out += n;
      else if (/[wWsSbB<>]/.test(n)) out += n === '<' || n === '>' ? '\\b' : '\\' + n;
      else if (/[0-9]/.test(n)) out += '\\' + n;
      else out += /[a-zA-Z]/.test(n) ? n : '\\' + n;
      i += 2;
      continue;
    }
    if (!extended && '(){}|+?'.includes(c)) out += '\\' + c;
    else if (c === '/') out += '\\/';
    else out += c;
    i++;
  }
  return out;
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

function grep(input: string, args: string[]): FilterResult {
  const g = getopt(args, 'ivcqEFwxno', 'em', {
    'ignore-case': 'i', 'invert-match': 'v', count: 'c', 'extended-regexp': 'E', 'fixed-strings': 'F', quiet: 'q',
    silent: 'q', 'word-regexp': 'w', 'line-regexp': 'x', 'only-matching': 'o', 'line-number': 'n', regexp: 'e', 'max-count': 'm',
  });
  if ('error' in g) return refuse('grep', g.error);
  const has = (f: string): boolean => g.opts.some(([k]) => k === f);
  const patterns = g.opts.filter(([k]) => k === 'e').map(([, v]) => v);
  const operands = [...g.operands];
  if (patterns.length === 0) {
    const p = operands.shift();
    if (p === undefined) return refuse('grep', 'needs a pattern');
    patterns.push(p);
  }
  // No file operands: a filter reads only the piped output.
  if (operands.length) return refuse('grep', `reads only its input; file operand ${operands[0]} refused`);
  const maxOpt = g.opts.find(([k]) => k === 'm')?.[1];
  const max = maxOpt === undefined ? Infinity : Number(maxOpt);
  if (maxOpt !== undefined && (!Number.isInteger(max) || max < 0)) return refuse('grep', `bad -m value ${maxOpt}`);
  let re: RegExp;
  try {
    const alts = patterns.map((p) => (has('F') ? escapeRe(p) : posixToJs(p, has('E'))));
    let src = alts.map((a) => `(?:${a})`).join('|');
    if (has('w')) src = `(?<![\\w])(?:${src})(?![\\w])`;
    if (has('x')) src = `^(?:${src})$`;
    re = new RegExp(src, has('i') ? 'gi' : 'g');
  } catch (e) {
    return { exitCode: 2, stdout: '', stderr: `grep: ${e instanceof Error ? e.message : String(e)}\n` };
  }
  const invert = has('v');
  const out: string[] = [];
  let count = 0;
  for (const [idx, line] of lines(input).entries()) {
    if (count >= max) break;
    re.lastIndex = 0;
    const matched = re.test(line);
    if (matched === invert) continue;
    count++;
    if (has('q')) return { exitCode: 0, stdout: '', stderr: '' };
    if (has('c')) continue;
    const prefix = has('n') ? `${idx + 1}:` : '';
    if (has('o') && !invert) {
      re.lastIndex = 0;
      for (const m of line.matchAll(re)) if (m[0] !== '') out.push(prefix + m[0]);
    } else {
      out.push(prefix + line);
    }
  }
  const stdout = has('c') ? `${count}\n` : has('q') ? '' : unlines(out);
  return { exitCode: count > 0 ? 0 : 1, stdout, stderr: '' };
}

function count(value: string | undefined, name: string): { n: number; sign: '' | '+' | '-' } | string {
  if (value === undefined) return { n: 10, sign: '' };
  const m = /^([+-]?)(\d+)$/.exec(value);
  if (!m) return `invalid number of ${name}: '${value}'`;
  return { n: Number(m[2]), sign: (m[1] ?? '') as '' | '+' | '-' };
}

/** head/tail: -n N, -N, -c N; head -n -N (all but the last N), tail -n +N (from line N). */
function headTail(which: 'head' | 'tail', input: string, args: string[]): FilterResult {
  const g = getopt(args, '#', 'nc', { lines: 'n', bytes: 'c' });
  if ('error' in g) return refuse(which, g.error);
  if (g.operands.length) return refuse(which, `reads only its input; file operand ${g.operands[0]} refused`);
  const last = g.opts[g.opts.length - 1];
  const bytes = last?.[0] === 'c';
  const c = count(last?.[1], bytes ? 'bytes' : 'lines');
  if (typeof c === 'string') return { exitCode: 1, stdout: '', stderr: `${which}: ${c}\n` };
  const pick = <T,>(xs: T[]): T[] => {
    if (which === 'head') return c.sign === '-' ? xs.slice(0, Math.max(0, xs.length - c.n)) : xs.slice(0, c.n);
    if (c.sign === '+') return xs.slice(Math.max(0, c.n - 1));
    return c.n === 0 ? [] : xs.slice(-c.n);
  };
  if (bytes) {
    const buf = Buffer.from(input);
    const len = buf.length;
    const [from, to] =
      which === 'head' ? [0, c.sign === '-' ? Math.max(0, len - c.n) : Math.min(len, c.n)] : c.sign === '+' ? [Math.max(0, c.n - 1), len] : [Math.max(0, len - c.n), len];
    return { exitCode: 0, stdout: buf.subarray(from, to).toString('utf8'), stderr: '' };
  }
  const ls = lines(input);
  const picked = pick(ls.map((l, i) => ({ l, i })));
  let stdout = unlines(picked.map((p) => p.l));
  // Like the real tools, a missing final newline stays missing when the last line is kept.
  if (!input.endsWith('\n') && input !== '' && picked[picked.length - 1]?.i === ls.length - 1) stdout = stdout.slice(0, -1);
  return { exitCode: 0, stdout, stderr: '' };
}

function wc(input: string, args: string[]): FilterResult {
  const g = getopt(args, 'lwcm', '', { lines: 'l', words: 'w', bytes: 'c', chars: 'm' });
  if ('error' in g) return refuse('wc', g.error);
  if (g.operands.length) return refuse('wc', `reads only its input; file operand ${g.operands[0]} refused`);
  const want = new Set(g.opts.map(([k]) => k));
  if (want.size === 0) ['l', 'w', 'c'].forEach((f) => want.add(f));
  const values: number[] = [];
  if (want.has('l')) values.push((input.match(/\n/g) ?? []).length);
  if (want.has('w')) values.push(input.split(/\s+/).filter((w) => w !== '').length);
  if (want.has('m')) values.push([...input].length);
  if (want.has('c')) values.push(Buffer.byteLength(input));
  const text = values.length === 1 ? String(values[0]) : values.map((v) => String(v).padStart(7)).join(' ');
  return { exitCode: 0, stdout: `${text}\n`, stderr: '' };
}

interface SortKey {
  field: number;
  char: number;
  endField: number | null;
  endChar: number;
  mods: string;
}

const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const SORT_MODS = 'bfgnrhMV';

function parseKey(spec: string): SortKey | string {
  const m = /^(\d+)(?:\.(\d+))?([a-zA-Z]*)(?:,(\d+)(?:\.(\d+))?([a-zA-Z]*))?$/.exec(spec);
  if (!m || Number(m[1]) < 1) return `-k ${spec}: use FIELD[.CHAR][OPTS][,FIELD[.CHAR][OPTS]]`;
  const mods = (m[3] ?? '') + (m[6] ?? '');
  for (const c of mods) if (!SORT_MODS.includes(c)) return `-k ${spec}: key option ${c} is not supported (supported: ${SORT_MODS})`;
  return {
    field: Number(m[1]),
    char: m[2] ? Number(m[2]) : 1,
    endField: m[4] ? Number(m[4]) : null,
    endChar: m[5] ? Number(m[5]) : 0,
    mods,
  };
}

/** Field spans like sort(1): without -t a field is its leading blanks plus the non-blanks. */
function fieldSpans(line: string, sep: string | undefined): Array<[number, number]> {
  const spans: Array<[number, number]> = [];
  if (sep !== undefined) {
    let start = 0;
    for (;;) {
      const idx = line.indexOf(sep, start);
      if (idx === -1) {
        spans.push([start, line.length]);
        return spans;
      }
      spans.push([start, idx]);
      start = idx + 1;
    }
  }
  const re = /[ \t]*[^ \t]+|[ \t]+$/g;
  for (const m of line.matchAll(re)) spans.push([m.index, m.index + m[0].length]);
  return spans;
}

function keyText(line: string, k: SortKey, sep: string | undefined, blanks: boolean): string {
  const spans = fieldSpans(line, sep);
  const startSpan = spans[k.field - 1];
  if (!startSpan) return '';
  let from = startSpan[0];
  if (blanks) while (from < startSpan[1] && /[ \t]/.test(line[from] ?? '')) from++;
  from = Math.min(from + k.char - 1, startSpan[1]);
  let to = line.length;
  if (k.endField !== null) {
    const endSpan = spans[k.endField - 1];
    if (endSpan) {
      if (k.endChar === 0) to = endSpan[1];
      else {
        let s0 = endSpan[0];
        if (blanks) while (s0 < endSpan[1] && /[ \t]/.test(line[s0] ?? '')) s0++;
        to = Math.min(s0 + k.endChar, endSpan[1]);
      }
    }
  }
  return to > from ? line.slice(from, to) : '';
}

function human(s: string): number {
  const m = /^\s*(-?\d+(?:\.\d+)?)([KMGTPEZY]?)/.exec(s);
  if (!m) return 0;
  const power = m[2] ? 'KMGTPEZY'.indexOf(m[2]) + 1 : 0;
  return Number(m[1]) * 1024 ** power;
}

/** Debian's verrevcmp (what sort -V uses): letters sort before other characters, ~ first. */
function compareVersions(a: string, b: string): number {
  const order = (c: string | undefined): number => {
    if (c === undefined || /\d/.test(c)) return 0;
    if (/[A-Za-z]/.test(c)) return c.charCodeAt(0);
    if (c === '~') return -1;
    return c.charCodeAt(0) + 256;
  };
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    let firstDiff = 0;
    while ((i < a.length && !/\d/.test(a[i] ?? '')) || (j < b.length && !/\d/.test(b[j] ?? ''))) {
      const ac = order(i < a.length ? a[i] : undefined);
      const bc = order(j < b.length ? b[j] : undefined);
      if (ac !== bc) return ac - bc;
      i++;
      j++;
    }
    while (a[i] === '0') i++;
    while (b[j] === '0') j++;
    while (/\d/.test(a[i] ?? '') && /\d/.test(b[j] ?? '')) {
      if (!firstDiff) firstDiff = (a.charCodeAt(i)) - (b.charCodeAt(j));
      i++;
      j++;
    }
    if (/\d/.test(a[i] ?? '')) return 1;
    if (/\d/.test(b[j] ?? '')) return -1;
    if (firstDiff) return firstDiff;
  }
  return 0;
}

function compareBy(mods: string, a: string, b: string): number {
  let x = a;
  let y = b;
  if (mods.includes('b')) {
    x = x.replace(/^[ \t]+/, '');
    y = y.replace(/^[ \t]+/, '');
  }
  if (mods.includes('f')) {
    x = x.toUpperCase();
    y = y.toUpperCase();
  }
  let c: number;
  if (mods.includes('n') || mods.includes('g')) {
    const num = (s: string): number => {
      const m = /^\s*(-?\d*(?:\.\d+)?)/.exec(s);
      const v = m && m[1] !== '' && m[1] !== '-' ? Number(m[1]) : 0;
      return Number.isNaN(v) ? 0 : v;
    };
    c = num(x) - num(y);
  } else if (mods.includes('h')) c = human(x) - human(y);
  else if (mods.includes('M')) c = MONTHS.indexOf(x.trim().slice(0, 3).toUpperCase()) - MONTHS.indexOf(y.trim().slice(0, 3).toUpperCase());
  else if (mods.includes('V')) c = compareVersions(x, y);
  else c = x < y ? -1 : x > y ? 1 : 0;
  return mods.includes('r') ? -c : c;
}

function sortFilter(input: string, args: string[]): FilterResult {
  const g = getopt(args, 'rnufbghMV', 'kt', {
    'numeric-sort': 'n', reverse: 'r', unique: 'u', key: 'k', 'field-separator': 't', 'ignore-case': 'f',
    'ignore-leading-blanks': 'b', 'general-numeric-sort': 'g', 'human-numeric-sort': 'h', 'month-sort': 'M', 'version-sort': 'V',
  });
  if ('error' in g) return refuse('sort', g.error);
  if (g.operands.length) return refuse('sort', `reads only its input; file operand ${g.operands[0]} refused`);
  const global = g.opts.filter(([k]) => SORT_MODS.includes(k)).map(([k]) => k).join('');
  const unique = g.opts.some(([k]) => k === 'u');
  const sep = g.opts.find(([k]) => k === 't')?.[1];
  if (sep !== undefined && sep.length !== 1) return refuse('sort', '-t needs a single character');
  const keys: SortKey[] = [];
  for (const [k, v] of g.opts) {
    if (k !== 'k') continue;
    const key = parseKey(v);
    if (typeof key === 'string') return refuse('sort', key);
    keys.push(key);
  }
  // A key without its own options takes the global ones (sort(1) rule).
  const effective = keys.map((k) => ({ ...k, mods: k.mods || global }));
  const cmpKeys = (a: string, b: string): number => {
    if (effective.length === 0) return compareBy(global, a, b);
    for (const k of effective) {
      const c = compareBy(k.mods, keyText(a, k, sep, k.mods.includes('b')), keyText(b, k, sep, k.mods.includes('b')));
      if (c) return c;
    }
    return 0;
  };
  const reverse = global.includes('r');
  const rows = lines(input);
  // Last resort: whole-line byte order (reversed with -r), skipped with -u as sort(1) does.
  rows.sort((a, b) => cmpKeys(a, b) || (unique ? 0 : (a < b ? -1 : a > b ? 1 : 0) * (reverse ? -1 : 1)));
  const out = unique ? rows.filter((r, i) => i === 0 || cmpKeys(rows[i - 1] ?? '', r) !== 0) : rows;
  return { exitCode: 0, stdout: unlines(out), stderr: '' };
}

function uniq(input: string, args: string[]): FilterResult {
  const g = getopt(args, 'cdui', '', { count: 'c', repeated: 'd', unique: 'u', 'ignore-case': 'i' });
  if ('error' in g) return refuse('uniq', g.error);
  if (g.operands.length) return refuse('uniq', `reads only its input; operand ${g.operands[0]} refused`);
  const has = (f: string): boolean => g.opts.some(([k]) => k === f);
  const same = (a: string, b: string): boolean => (has('i') ? a.toLowerCase() === b.toLowerCase() : a === b);
  const groups: Array<{ line: string; n: number }> = [];
  for (const l of lines(input)) {
    const last = groups[groups.length - 1];
    if (last && same(last.line, l)) last.n++;
    else groups.push({ line: l, n: 1 });
  }
  const kept = groups.filter((gr) => (has('d') ? gr.n > 1 : true) && (has('u') ? gr.n === 1 : true));
  return { exitCode: 0, stdout: unlines(kept.map((gr) => (has('c') ? `${String(gr.n).padStart(7)} ${gr.line}` : gr.line))), stderr: '' };
}

/** jq options that only shape output; everything that reads files or the module path is refused. */
const JQ_FLAGS = new Set(['-r', '-c', '-e', '-s', '-S', '-j', '-a', '-n', '-R', '--raw-output', '--compact-output', '--exit-status', '--slurp', '--sort-keys', '--join-output', '--ascii-output', '--null-input', '--raw-input', '--tab']);
const JQ_WITH_VALUES: Record<string, number> = { '--arg': 2, '--argjson': 2, '--indent': 1 };

export function vetJqArgs(args: string[]): string | null {
  let program: string | null = null;
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    const values = JQ_WITH_VALUES[a];
    if (values !== undefined) {
      if (i + values >= args.length) return `${a} needs ${values} value(s)`;
      i += values;
      continue;
    }
    if (a.startsWith('-') && a.length > 1) {
      // Clusters of the short output flags (-rc).
      if (/^-[rcesSjanR]+$/.test(a) || JQ_FLAGS.has(a)) continue;
      return `option ${a} is not supported`;
    }
    if (program !== null) return `reads only its input; file operand ${a} refused`;
    program = a;
  }
  if (program === null) return 'needs a filter program';
  // Modules load code from the search path; input_filename/$__loc__ are harmless but
  // include/import are not needed by a read-only filter.
  if (/\b(import|include)\b/.test(program)) return 'import/include in a filter program is refused';
  return null;
}

async function jq(input: string, args: string[], opts: FilterRunOptions): Promise<FilterResult> {
  const bad = vetJqArgs(args);
  if (bad) return refuse('jq', bad);
  const r = await opts.spawn({
    file: opts.jqPath ?? '/usr/bin/jq',
    args,
    env: opts.env,
    input,
    timeoutMs: opts.timeoutMs,
    outputCap: opts.outputCap,
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  return {
    exitCode: r.spawnError ? 127 : r.exitCode,
    stdout: r.stdout,
    stderr: r.spawnError ? `jq: ${r.spawnError}\n` : r.stderr,
    timedOut: r.timedOut,
    truncated: r.truncated,
  };
}

/** Runs one stage. */
export async function runFilter(stage: FilterCall, input: string, opts: FilterRunOptions): Promise<FilterResult> {
  switch (stage.filter) {
    case 'grep':
      return grep(input, stage.args);
    case 'head':
    case 'tail':
      return headTail(stage.filter, input, stage.args);
    case 'wc':
      return wc(input, stage.args);
    case 'sort':
      return sortFilter(input, stage.args);
    case 'uniq':
      return uniq(input, stage.args);
    case 'jq':
      return jq(input, stage.args, opts);
    default:
      return refuse(String((stage as { filter: unknown }).filter), 'is not a filter');
  }
}

/**
 * Runs the pipeline stages in order on `input`. Exit status is pipefail-style: the last
 * non-zero stage's, so a failing check is never hidden behind `| wc -l`; `priorExit` is the
 * exit code of the command that produced `input`.
 */
export async function runFilters(
  input: string,
  pipeline: FilterCall[],
  opts: FilterRunOptions,
  priorExit: number | null = 0,
): Promise<FilterResult> {
  let text = input;
  let exitCode: number | null = priorExit;
  const stderr: string[] = [];
  let timedOut = false;
  let truncated = false;
  for (const stage of pipeline) {
    const r = await runFilter(stage, text, opts);
    if (r.refused) return { ...r, stderr: stderr.join('') + r.stderr };
    if (r.stderr) stderr.push(r.stderr);
    timedOut ||= r.timedOut === true;
    truncated ||= r.truncated === true;
    text = r.stdout;
    if (r.exitCode !== 0) exitCode = r.exitCode;
    if (r.timedOut) break;
  }
  const capped = Buffer.byteLength(text) > opts.outputCap;
  if (capped) text = Buffer.from(text).subarray(0, opts.outputCap).toString('utf8');
  return { exitCode, stdout: text, stderr: stderr.join(''), timedOut, truncated: truncated || capped };
}
