// The ONE module that imports gray-matter. Two of its defaults are hazards we switch off here:
// without an options object it caches by content and hands back shared (mutable) objects, and
// its `js`/`javascript` engine `eval`s front matter. We always pass options, route YAML through
// our own parser (yaml.ts), refuse every other language before gray-matter sees it, and replace
// the code engines with refusals as a second lock.
import matter from 'gray-matter';
import type { Issue } from './errors.js';
import { parseFlatYaml, parseYaml, yamlFix, type YamlParsed, type YamlPathOptions } from './yaml.js';

const BOM = '\uFEFF';
const YAML_LANGUAGES = new Set(['', 'yaml', 'yml']);
const CODE_LANGUAGES = new Set(['js', 'javascript', 'coffee', 'coffeescript', 'cson', 'ts', 'typescript']);

/** Where the front-matter block sits in the text (offsets into the original text, BOM included). */
export interface FrontMatterBlock {
  bom: boolean;
  /** False when the text does not start with a `---` line. */
  present: boolean;
  language: string;
  /** Offset just past the opening line's line break. */
  yamlStart: number;
  /** Offset of the closing `---` line (== yamlEnd of the YAML text). */
  closeStart: number;
  /** Offset just past the closing line's line break (or the end of text). */
  closeEnd: number;
  /** 1-based line of the closing `---`. */
  closeLine: number;
  /** Set when the block is malformed; the other offsets are then meaningless. */
  problem?: Issue;
}

export interface FrontMatter {
  block: FrontMatterBlock;
  data: Record<string, unknown>;
  /** Absolute 1-based line of every top-level key. */
  keyLines: Record<string, number>;
  /** Absolute 1-based lines of the items of top-level sequences. */
  itemLines: Record<string, number[]>;
  /** 1-based line where the body starts. */
  bodyLine: number;
  /** Offset in the original text where the body starts. */
  bodyOffset: number;
}

/** Lines are ended by `\n` (a preceding `\r` belongs to the break). */
function lineEnd(text: string, from: number): { end: number; next: number } {
  const nl = text.indexOf('\n', from);
  if (nl === -1) return { end: text.length, next: text.length };
  return { end: nl > from && text[nl - 1] === '\r' ? nl - 1 : nl, next: nl + 1 };
}

/** Find the front-matter block by its delimiter lines, without parsing it. */
export function locateFrontMatter(text: string, file = '<task>'): FrontMatterBlock {
  const bom = text.startsWith(BOM);
  const start = bom ? 1 : 0;
  const absent: FrontMatterBlock = { bom, present: false, language: '', yamlStart: start, closeStart: start, closeEnd: start, closeLine: 0 };
  if (!text.startsWith('---', start) || text[start + 3] === '-') return absent;
  const first = lineEnd(text, start);
  const language = text.slice(start + 3, first.end).trim();
  let pos = first.next;
  let line = 2;
  if (first.next === text.length && !text.endsWith('\n')) {
    return { ...absent, present: true, language, problem: unclosed(file) };
  }
  while (pos < text.length) {
    const { end, next } = lineEnd(text, pos);
    if (text.startsWith('---', pos)) {
      if (text.slice(pos + 3, end).trim() === '') {
        return { bom, present: true, language, yamlStart: first.next, closeStart: pos, closeEnd: next, closeLine: line };
      }
      return {
        ...absent,
        present: true,
        language,
        problem: {
          file,
          line,
          field: 'front matter',
          message: 'a line starting with --- inside the front matter is neither a closing delimiter nor YAML',
          fix: 'close the front matter with a line holding only `---`, or indent/quote this line',
        },
      };
    }
    pos = next;
    line += 1;
  }
  return { ...absent, present: true, language, problem: unclosed(file) };
}

function unclosed(file: string): Issue {
  return {
    file,
    line: 1,
    field: 'front matter',
    message: 'the front matter opened by `---` on line 1 is never closed',
    fix: 'add a line holding only `---` after the last front-matter field',
  };
}

class EngineRefusal extends Error {
  constructor(readonly issue: Issue) {
    super(issue.message);
  }
}

function refuseCode(file: string): () => never {
  return () => {
    throw new EngineRefusal({
      file,
      line: 1,
      field: 'front matter',
      message: 'front matter written in a code language is refused: it would be evaluated',
      fix: 'write the front matter in YAML: start the file with a line holding only `---`',
    });
  };
}

function linesByKey(keys: YamlParsed['keys']): { keyLines: Record<string, number>; itemLines: Record<string, number[]> } {
  const keyLines: Record<string, number> = {};
  const itemLines: Record<string, number[]> = {};
  for (const k of keys) {
    keyLines[k.key] = k.line;
    itemLines[k.key] = k.itemLines;
  }
  return { keyLines, itemLines };
}

/**
 * The common case without gray-matter: a YAML block the fast scanner reads as a mapping with at
 * least one key. Given the framing below, gray-matter would hand our engine exactly `\n` + the
 * block (CRLF as LF) minus its last line break (it splits at the first `\n---`, which is our
 * closing line) and keep the engine's object, so parsing that same string gives the same data and
 * lines. null: take the gray-matter path.
 */
function quickYamlBlock(rawYaml: string): (YamlParsed & { data: Record<string, unknown> }) | null {
  const yaml = rawYaml.includes('\r') ? rawYaml.replace(/\r\n/g, '\n') : rawYaml;
  if (!yaml.endsWith('\n')) return null;
  const r = parseFlatYaml(`\n${yaml.slice(0, -1)}`);
  if (!r || r.keys.length === 0) return null;
  const data = r.data;
  if (data === null || typeof data !== 'object' || Array.isArray(data)) return null;
  return { data: data as Record<string, unknown>, keys: r.keys };
}

/**
 * Split a task file into front-matter data and body, with line numbers. Never throws. A text with
 * no front matter yields empty data and the body starting at line 1. `fast: false` skips the fast
 * YAML path (equivalence tests, benchmark).
 */
export function readFrontMatter(
  text: string,
  file: string,
  options: YamlPathOptions = {},
): { ok: true; value: FrontMatter } | { ok: false; issues: Issue[] } {
  const block = locateFrontMatter(text, file);
  if (block.problem) return { ok: false, issues: [block.problem] };
  if (!block.present) {
    return { ok: true, value: { block, data: {}, keyLines: {}, itemLines: {}, bodyLine: 1, bodyOffset: block.yamlStart } };
  }
  const lang = block.language.toLowerCase();
  if (!YAML_LANGUAGES.has(lang)) {
    const code = CODE_LANGUAGES.has(lang);
    return {
      ok: false,
      issues: [
        {
          file,
          line: 1,
          field: 'front matter',
          message: code
            ? `front matter language \`${block.language}\` is refused: it would be evaluated as code`
            : `front matter language \`${block.language}\` is not supported; opscrew reads YAML only`,
          fix: 'write the front matter in YAML: start the file with a line holding only `---`',
        },
      ],
    };
  }
  const rawYaml = text.slice(block.yamlStart, block.closeStart);
  const quick = options.fast === false ? null : quickYamlBlock(rawYaml);
  if (quick) {
    const lines = linesByKey(quick.keys);
    return { ok: true, value: { block, data: quick.data, ...lines, bodyLine: block.closeLine + 1, bodyOffset: block.closeEnd } };
  }
  let located: { keyLines: Record<string, number>; itemLines: Record<string, number[]> } = { keyLines: {}, itemLines: {} };
  const yamlEngine = (str: string): Record<string, unknown> => {
    // gray-matter hands us the block with one leading line break, so YAML line N is file line N.
    const r = parseYaml(str, options);
    if (!r.ok) {
      throw new EngineRefusal({
        file,
        line: r.error.line,
        field: 'front matter',
        message: `invalid YAML in front matter (column ${r.error.col}): ${r.error.message}`,
        fix: yamlFix(r.error.code),
      });
    }
    located = linesByKey(r.value.keys);
    const data = r.value.data;
    if (data === null || data === undefined) return {};
    if (typeof data !== 'object' || Array.isArray(data)) {
      throw new EngineRefusal({
        file,
        line: 2,
        field: 'front matter',
        message: 'front matter must be `key: value` lines, not a single value or a list',
        fix: 'write one `key: value` per line between the two `---` lines',
      });
    }
    return data as Record<string, unknown>;
  };
  const refusal = refuseCode(file);
  const refuse = { parse: refusal, stringify: refusal };
  const ours = { parse: yamlEngine, stringify: refusal };
  let data: Record<string, unknown>;
  try {
    // Re-frame the block with plain `\n` delimiters so gray-matter's split matches ours exactly.
    // CRLF becomes LF (same line count) so no stray `\r` ends up in the last value.
    const framed = `---\n${rawYaml.replace(/\r\n/g, '\n')}---\n`;
    const options = {
      language: 'yaml',
      excerpt: false,
      engines: { yaml: ours, yml: ours, js: refuse, javascript: refuse, coffee: refuse, coffeescript: refuse, cson: refuse, json: refuse },
    };
    const parsed = matter(framed, options);
    data = (parsed.data ?? {}) as Record<string, unknown>;
  } catch (e) {
    if (e instanceof EngineRefusal) return { ok: false, issues: [e.issue] };
    return { ok: false, issues: [{ file, line: 1, field: 'front matter', message: `front matter could not be read: ${e instanceof Error ? e.message : String(e)}`, fix: 'write the front matter as plain YAML `key: value` lines' }] };
  }
  return {
    ok: true,
    value: {
      block,
      data,
      keyLines: located.keyLines,
      itemLines: located.itemLines,
      bodyLine: block.closeLine + 1,
      bodyOffset: block.closeEnd,
    },
  };
}
