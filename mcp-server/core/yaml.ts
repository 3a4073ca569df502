// The ONE module that imports the `yaml` package. Everything else asks this module to parse or
// write YAML, so parser options (unique keys, alias limits, YAML 1.2 core schema) live in one place.
import { LineCounter, isMap, isPair, isScalar, isSeq, parseDocument, stringify } from 'yaml';
import type { Issue } from './errors.js';
import { isPlainSafeString, scanFlatYaml, type FlatEntry } from './yaml-fast.js';

/** Parse options shared by every caller: strict, no custom tags, bounded alias expansion. */
const PARSE_OPTIONS = {
  uniqueKeys: true,
  prettyErrors: true,
  strict: true,
  schema: 'core',
  merge: false,
  version: '1.2',
} as const;

/** Aliases can expand exponentially ("billion laughs"); cap the expansion. */
const MAX_ALIAS_COUNT = 100;

export interface YamlError {
  /** 1-based line inside the parsed text. */
  line: number;
  /** 1-based column inside the parsed text. */
  col: number;
  message: string;
  code: string;
}

/** Where a top-level key of a block mapping sits (0-based lines relative to the parsed text). */
export interface YamlKeySpan {
  key: string;
  /** 0-based line of the key. */
  startLine: number;
  /** 0-based last line the value occupies. */
  endLine: number;
  /** True when the key and its whole value fit on the key's line and the value is no block scalar. */
  singleLine: boolean;
  /** 0-based column in the end line where the value ends (for keeping a trailing comment). */
  valueEndCol: number;
}

/**
 * Which path answers. The fast scanner (yaml-fast.ts) handles common front matter and hands
 * everything else to the library; `fast: false` asks the library directly, which the equivalence
 * tests and the benchmark compare against.
 */
export interface YamlPathOptions {
  fast?: boolean;
}

export interface YamlParsed {
  data: unknown;
  /** Top-level keys with 1-based lines (relative to the parsed text), in document order. */
  keys: Array<{ key: string; line: number; itemLines: number[] }>;
}

function firstLine(message: string): string {
  // yaml's pretty errors append " at line L, column C:" and a source excerpt; keep the sentence.
  const head = message.split('\n')[0] ?? message;
  return head.replace(/ at line \d+, column \d+:?\s*$/, '').trim();
}

function parsedFromEntries(entries: readonly FlatEntry[]): YamlParsed {
  const data: Record<string, unknown> = {};
  const keys: YamlParsed['keys'] = [];
  for (const e of entries) {
    data[e.key] = e.value;
    keys.push({ key: e.key, line: e.line + 1, itemLines: e.itemLines.map((l) => l + 1) });
  }
  return { data, keys };
}

/** The fast scanner's answer alone: the parse the library would give, or null when it must decide. */
export function parseFlatYaml(text: string): YamlParsed | null {
  const flat = scanFlatYaml(text);
  return flat ? parsedFromEntries(flat) : null;
}

/** Parse YAML text; never throws. Returns the data and top-level key lines, or the first error located. */
export function parseYaml(text: string, options: YamlPathOptions = {}): { ok: true; value: YamlParsed } | { ok: false; error: YamlError } {
  const flat = options.fast === false ? null : parseFlatYaml(text);
  return flat ? { ok: true, value: flat } : parseYamlWithLibrary(text);
}

function parseYamlWithLibrary(text: string): { ok: true; value: YamlParsed } | { ok: false; error: YamlError } {
  try {
    const lineCounter = new LineCounter();
    const doc = parseDocument(text, { ...PARSE_OPTIONS, lineCounter });
    const err = doc.errors[0];
    if (err) {
      const pos = err.linePos?.[0];
      return { ok: false, error: { line: pos?.line ?? 1, col: pos?.col ?? 1, message: firstLine(err.message), code: err.code } };
    }
    const data: unknown = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    const keys: YamlParsed['keys'] = [];
    if (isMap(doc.contents)) {
      for (const pair of doc.contents.items) {
        if (!isPair(pair) || !isScalar(pair.key) || !pair.key.range) continue;
        const key = String(pair.key.value);
        const itemLines: number[] = [];
        if (isSeq(pair.value)) {
          for (const item of pair.value.items) {
            const r = (item as { range?: [number, number, number] | null }).range;
            if (r) itemLines.push(lineCounter.linePos(r[0]).line);
          }
        }
        keys.push({ key, line: lineCounter.linePos(pair.key.range[0]).line, itemLines });
      }
    }
    return { ok: true, value: { data, keys } };
  } catch (e) {
    // Alias-count overflow and other resource limits surface as exceptions from toJS.
    const message = e instanceof Error ? e.message : String(e);
    return { ok: false, error: { line: 1, col: 1, message: firstLine(message), code: 'YAML_LIMIT' } };
  }
}

/** Parse a whole YAML document (e.g. a config file): data, or an Issue located in `file`. */
export function parseYamlDocument(
  text: string,
  file: string,
  lineOffset = 0,
): { ok: true; data: unknown; keys: YamlParsed['keys'] } | { ok: false; issue: Issue } {
  const r = parseYaml(text);
  if (r.ok) return { ok: true, data: r.value.data, keys: r.value.keys };
  return {
    ok: false,
    issue: {
      file,
      line: r.error.line + lineOffset,
      message: `invalid YAML (column ${r.error.col}): ${r.error.message}`,
      fix: yamlFix(r.error.code),
    },
  };
}

/** How to fix a YAML error, by the parser's error code. */
export function yamlFix(code: string): string {
  switch (code) {
    case 'DUPLICATE_KEY':
      return 'remove one of the duplicated keys';
    case 'BAD_INDENT':
    case 'MISSING_CHAR':
      return 'check the indentation and close every [ ] and { } on the line where it opens';
    case 'MULTIPLE_DOCS':
      return 'remove the extra --- line inside the front matter';
    case 'TAB_AS_INDENT':
      return 'indent with spaces, not tabs';
    default:
      return 'write plain `key: value` lines; quote values that contain `: `, `#`, or start with a special character';
  }
}

/**
 * Locate the top-level keys of a block mapping for line-level edits. Returns null when the text is
 * not a valid YAML block mapping (editing by line would then be guesswork).
 */
export function locateTopLevelKeys(text: string, options: YamlPathOptions = {}): { spans: YamlKeySpan[] } | { error: string } {
  const flat = options.fast === false ? null : scanFlatYaml(text);
  if (flat) return { spans: flat.map(spanOf) };
  return locateWithLibrary(text);
}

function spanOf(e: FlatEntry): YamlKeySpan {
  const singleLine = e.endLine === e.line;
  return { key: e.key, startLine: e.line, endLine: e.endLine, singleLine, valueEndCol: singleLine ? e.valueEndCol : 0 };
}

function locateWithLibrary(text: string): { spans: YamlKeySpan[] } | { error: string } {
  try {
    const lineCounter = new LineCounter();
    const doc = parseDocument(text, { ...PARSE_OPTIONS, lineCounter });
    const err = doc.errors[0];
    if (err) return { error: firstLine(err.message) };
    if (doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null)) return { spans: [] };
    if (!isMap(doc.contents)) return { error: 'front matter is not a mapping of `key: value` lines' };
    if (doc.contents.flow) return { error: 'front matter is a flow mapping `{ ... }`; write one `key: value` per line' };
    const spans: YamlKeySpan[] = [];
    for (const pair of doc.contents.items) {
      if (!isPair(pair) || !isScalar(pair.key) || !pair.key.range) return { error: 'front matter has a complex key' };
      const start = pair.key.range[0];
      const startPos = lineCounter.linePos(start);
      const value = pair.value as { range?: [number, number, number] | null; type?: string } | null;
      const valueEnd = value?.range ? value.range[1] : pair.key.range[1];
      const lastChar = valueEnd > start ? valueEnd - 1 : start;
      let endPos = lineCounter.linePos(lastChar);
      // A value ending exactly at a line break belongs to the line before it.
      if (text[lastChar] === '\n' || text[lastChar] === '\r') endPos = lineCounter.linePos(Math.max(start, lastChar - 1));
      const block = value?.type === 'BLOCK_LITERAL' || value?.type === 'BLOCK_FOLDED';
      const singleLine = !block && endPos.line === startPos.line;
      const lineStart = lineCounter.lineStarts[endPos.line - 1] ?? 0;
      spans.push({
        key: String(pair.key.value),
        startLine: startPos.line - 1,
        endLine: endPos.line - 1,
        singleLine,
        valueEndCol: singleLine ? valueEnd - lineStart : 0,
      });
    }
    return { spans };
  } catch (e) {
    return { error: e instanceof Error ? e.message : String(e) };
  }
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * One scalar as a single YAML line fragment that parses back to the same value: plain when that is
 * safe, otherwise double-quoted. Returns null for values YAML cannot carry (NaN, Infinity).
 */
export function stringifyYamlScalar(value: string | number | boolean | null, options: YamlPathOptions = {}): string | null {
  if (value === null) return 'null';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : null;
  if (options.fast !== false && isPlainSafeString(value)) return value;
  if (!/[\n\r\t]/.test(value) && value.trim() === value && value !== '') {
    try {
      const plain = stringify(value, { lineWidth: 0, defaultStringType: 'PLAIN', defaultKeyType: 'PLAIN' }).replace(/\n$/, '');
      if (!plain.includes('\n') && !plain.startsWith('|') && !plain.startsWith('>') && !/\s#/.test(plain)) {
        const back = parseYaml(`v: ${plain}`, options);
        if (back.ok && sameJson((back.value.data as { v?: unknown }).v, value)) return plain;
      }
    } catch {
      // fall through to the always-safe quoted form
    }
  }
  // JSON strings are valid YAML double-quoted scalars.
  return JSON.stringify(value);
}

/**
 * Any JSON-like value as one line of YAML (flow style for collections), verified to parse back to
 * the same data. Returns null when it cannot be written on one line faithfully.
 */
export function stringifyYamlInline(value: unknown): string | null {
  if (value === null || typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
    return stringifyYamlScalar(value);
  }
  const candidates: string[] = [];
  try {
    candidates.push(stringify(value, { lineWidth: 0, collectionStyle: 'flow', defaultStringType: 'PLAIN' }).replace(/\n$/, ''));
  } catch {
    // fall through to JSON
  }
  try {
    const json = JSON.stringify(value);
    if (json !== undefined) candidates.push(json);
  } catch {
    return null;
  }
  for (const c of candidates) {
    if (c.includes('\n')) continue;
    const back = parseYaml(`v: ${c}`);
    if (back.ok && sameJson((back.value.data as { v?: unknown }).v, value)) return c;
  }
  return null;
}
