// A scanner for the YAML nearly every task's front matter is: flat `key: scalar` lines and short
// flow or block lists of scalars. For that subset it gives exactly what the `yaml` library gives
// (data, key lines, item lines, key spans) at a fraction of the cost; for anything else it answers
// null and the caller asks the library (yaml.ts). Every rule errs towards null: a text is scanned
// only when each line is one of the shapes below, so the library stays the judge of everything
// unusual (anchors, tags, block scalars, multi-line or escaped strings, nested maps, odd indents,
// tabs, CR, duplicates, errors). yaml-fast.test.ts holds it to the library's answers.
//
// Accepted, line by line (columns and lines as the library counts them, `\n` ending a line):
// - blank lines (spaces only) and `#` comment lines starting in column 0;
// - `key: value` with a simple key in column 0; the value is a scalar, a one-line flow sequence
//   of scalars, or empty and followed by `- item` lines (one indent, scalar items) or by nothing;
// - a scalar is plain (resolved per the YAML 1.2 core schema below), or single/double-quoted on
//   one line with no escapes; a ` # comment` may follow any non-empty value.

export type FlatScalar = string | number | boolean | null;

/** One top-level key as the library would report it (0-based lines and columns). */
export interface FlatEntry {
  key: string;
  value: FlatScalar | FlatScalar[];
  /** 0-based line of the key. */
  line: number;
  /** 0-based lines of the sequence's items (a flow sequence's items sit on the key's line). */
  itemLines: number[];
  /** 0-based last line of the value. */
  endLine: number;
  /** Column where a value on the key's line ends; 0 for a block sequence. */
  valueEndCol: number;
}

/** Printable text only: no tab, CR, control, format, separator (NBSP, U+2028) or lone surrogate. */
const PRINTABLE_TEXT = /^[\n\x20-\x7E\p{L}\p{M}\p{N}\p{S}\p{P}]*$/u;
/** Keys the library reports as they are written (no bool/null words, short of its 1024 limit). */
const KEY_LINE = /^([A-Za-z_][A-Za-z0-9_-]{0,127}):(?: (.*))?$/;
const ITEM_LINE = /^( *)-( +)(.*)$/;
const BLANK = /^ *$/;
const AFTER_VALUE = /^(?: *| +#.*)$/;
/** Keys that the library would not turn into a plain own property with this very name. */
const SPECIAL_KEY = /^(?:__proto__|[Tt]rue|TRUE|[Ff]alse|FALSE|[Nn]ull|NULL)$/;

// YAML 1.2 core schema, as the library resolves plain scalars.
const CORE_NULL = /^(?:~|[Nn]ull|NULL)$/;
const CORE_BOOL = /^(?:[Tt]rue|TRUE|[Ff]alse|FALSE)$/;
const CORE_NUMBER = /^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+|[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$/;
/** Integers whose value is exactly their digits (no sign, no leading zero, safe range). */
const PLAIN_INT = /^(?:0|[1-9][0-9]{0,14})$/;
/** A plain scalar may start with these (no indicator, no sign or dot that could make a number odd). */
const PLAIN_START = /^[A-Za-z0-9_/\u0080-\uFFFF]/;
/** Characters a plain item inside `[ ]` must not hold (flow indicators, quotes, comments, `:`). */
const FLOW_UNSAFE = /[:#"'[\]{},]/;

/** What a plain scalar resolves to, or undefined when the library should decide. */
function plainValue(token: string, inFlow: boolean): FlatScalar | undefined {
  if (token === '' || !PLAIN_START.test(token)) return undefined;
  if (inFlow ? FLOW_UNSAFE.test(token) : token.includes(': ') || token.endsWith(':')) return undefined;
  if (CORE_NULL.test(token)) return null;
  if (CORE_BOOL.test(token)) return token[0] === 't' || token[0] === 'T';
  if (PLAIN_INT.test(token)) return Number(token);
  if (CORE_NUMBER.test(token)) return undefined;
  return token;
}

/** A single-line quoted scalar starting at `at`: its text and the column after it. */
function quoted(line: string, at: number): { value: string; end: number } | null {
  const q = line[at];
  const close = line.indexOf(q ?? '', at + 1);
  if (close === -1) return null;
  const value = line.slice(at + 1, close);
  // Escapes (`\` in double quotes, `''` in single quotes) are the library's business.
  if (q === '"' ? value.includes('\\') : line[close + 1] === "'") return null;
  return { value, end: close + 1 };
}

/** A scalar value starting at `at` in block context: its value and the column after it. */
function blockScalar(line: string, at: number): { value: FlatScalar; end: number } | null {
  const c = line[at];
  if (c === '"' || c === "'") return quoted(line, at);
  const comment = line.indexOf(' #', at);
  const token = line.slice(at, comment === -1 ? line.length : comment).trimEnd();
  const value = plainValue(token, false);
  return value === undefined ? null : { value, end: at + token.length };
}

/** A one-line flow sequence of scalars starting at `at` (on `[`). */
function flowSequence(line: string, at: number): { value: FlatScalar[]; end: number } | null {
  const items: FlatScalar[] = [];
  let i = at + 1;
  while (line[i] === ' ') i++;
  if (line[i] === ']') return { value: items, end: i + 1 };
  for (;;) {
    while (line[i] === ' ') i++;
    const c = line[i];
    if (c === '"' || c === "'") {
      const q = quoted(line, i);
      if (!q) return null;
      items.push(q.value);
      i = q.end;
    } else {
      let j = i;
      while (j < line.length && line[j] !== ',' && line[j] !== ']') j++;
      const value = plainValue(line.slice(i, j).trimEnd(), true);
      if (value === undefined) return null;
      items.push(value);
      i = j;
    }
    while (line[i] === ' ') i++;
    if (line[i] === ']') return { value: items, end: i + 1 };
    if (line[i] !== ',') return null;
    i++;
    while (line[i] === ' ') i++;
    // A trailing comma is valid YAML, but rare enough to leave to the library.
    if (line[i] === ']') return null;
  }
}

/** The value on a key's line, starting after `key: `; null when it is not in the subset. */
function inlineValue(line: string, from: number): { value: FlatScalar | FlatScalar[]; end: number } | null {
  let at = from;
  while (line[at] === ' ') at++;
  const v = line[at] === '[' ? flowSequence(line, at) : blockScalar(line, at);
  return v && AFTER_VALUE.test(line.slice(v.end)) ? v : null;
}

function nextContentLine(lines: readonly string[], from: number): number {
  let i = from;
  while (i < lines.length && BLANK.test(lines[i] ?? '')) i++;
  return i;
}

/** `- item` lines from `start`, all at one indent; null when an item is not in the subset. */
function blockSequence(lines: readonly string[], start: number): { value: FlatScalar[]; itemLines: number[]; next: number } | null {
  const indent = ITEM_LINE.exec(lines[start] ?? '')?.[1]?.length ?? 0;
  const value: FlatScalar[] = [];
  const itemLines: number[] = [];
  let i = start;
  while (i < lines.length) {
    const line = lines[i] ?? '';
    if (BLANK.test(line)) {
      i++;
      continue;
    }
    const m = ITEM_LINE.exec(line);
    // Not an item: the caller's next key, or a line the caller refuses (any indented one).
    if (!m) break;
    if ((m[1] ?? '').length !== indent) return null;
    const item = blockScalar(line, indent + 1 + (m[2] ?? '').length);
    if (!item || !AFTER_VALUE.test(line.slice(item.end))) return null;
    value.push(item.value);
    itemLines.push(i);
    i++;
  }
  return { value, itemLines, next: i };
}

/** One `key:` entry at line `i`; the entry and the line after it, or null. */
function entryAt(lines: readonly string[], i: number): { entry: FlatEntry; next: number } | null {
  const line = lines[i] ?? '';
  const m = KEY_LINE.exec(line);
  const key = m?.[1];
  if (!m || key === undefined || SPECIAL_KEY.test(key)) return null;
  const rest = m[2] ?? '';
  if (!BLANK.test(rest)) {
    const v = inlineValue(line, key.length + 2);
    if (!v) return null;
    return { entry: { key, value: v.value, line: i, itemLines: Array.isArray(v.value) ? v.value.map(() => i) : [], endLine: i, valueEndCol: v.end }, next: i + 1 };
  }
  const j = nextContentLine(lines, i + 1);
  const after = lines[j];
  if (after === undefined || KEY_LINE.test(after)) {
    // An empty value is null; the library places it at the end of the key's line.
    return { entry: { key, value: null, line: i, itemLines: [], endLine: i, valueEndCol: line.length }, next: i + 1 };
  }
  if (!ITEM_LINE.test(after)) return null;
  const seq = blockSequence(lines, j);
  if (!seq || seq.value.length === 0) return null;
  const endLine = seq.itemLines[seq.itemLines.length - 1] ?? i;
  return { entry: { key, value: seq.value, line: i, itemLines: seq.itemLines, endLine, valueEndCol: 0 }, next: seq.next };
}

/**
 * The top-level entries of a YAML text in the subset above, in document order; null when the text
 * is outside it (including texts with no key at all) and the library must parse it.
 */
export function scanFlatYaml(text: string): FlatEntry[] | null {
  if (text.length > 1_000_000 || !PRINTABLE_TEXT.test(text)) return null;
  const lines = text.split('\n');
  const entries: FlatEntry[] = [];
  const seen = new Set<string>();
  let i = 0;
  while (i < lines.length) {
    const line = lines[i] ?? '';
    if (BLANK.test(line) || line[0] === '#') {
      i++;
      continue;
    }
    const r = entryAt(lines, i);
    // A repeated key is an error the library words and locates.
    if (!r || seen.has(r.entry.key)) return null;
    seen.add(r.entry.key);
    entries.push(r.entry);
    i = r.next;
  }
  return entries.length > 0 ? entries : null;
}

/**
 * A string the library writes as itself (plain) and reads back unchanged, decided without it:
 * printable, no surrounding space, no ` #`, and a plain scalar that resolves to this very string.
 */
export function isPlainSafeString(value: string): boolean {
  if (value.length > 1000 || value.endsWith(' ') || value.includes(' #') || value.includes('\n')) return false;
  return PRINTABLE_TEXT.test(value) && plainValue(value, false) === value;
}
