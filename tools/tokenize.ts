// A POSIX-ish word splitter WITHOUT a shell. It understands exactly the quoting a runbook
// author needs (single quotes, double quotes, backslash escapes, $NAME / ${NAME}) and splits
// pipeline stages on `|`. Everything else a shell would interpret (lists, redirects,
// substitutions, globbing, brace and tilde expansion) is refused with the token and its
// column, so a line never means more than it says. One pass over the input: linear time.

import { fail, ok, type Result } from './result.js';

export interface Word {
  /** The word after quote removal and variable expansion. */
  text: string;
  /** 1-based column of the word's first character in the line. */
  col: number;
  /** Some part of the word was quoted or escaped. */
  quoted: boolean;
}

/** One pipeline stage: the words of one command. */
export type Stage = Word[];

export type TokenizeCode = 'unparseable' | 'refused';

export interface TokenizeOptions {
  /** Variables for `$NAME` / `${NAME}` (from `export` lines of the task). */
  vars?: Readonly<Record<string, string>>;
  /** Longest line accepted, in UTF-16 code units. */
  maxLength?: number;
}

export const MAX_LINE_LENGTH = 16 * 1024;
/** Cap on the line after variable expansion (variables could otherwise blow it up). */
export const MAX_EXPANDED_LENGTH = 64 * 1024;

const NAME_START = /[A-Za-z_]/;
const NAME_CHAR = /[A-Za-z0-9_]/;
const VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const SEQUENCE_BRACE = /^(?:-?\d+\.\.-?\d+(?:\.\.-?\d+)?|[A-Za-z]\.\.[A-Za-z](?:\.\.-?\d+)?)$/;
/** Characters that need no special handling outside quotes (fast path). */
const PLAIN = /[^\s'"\\$|;&<>`()*?[{}~#,.!=:]/y;

/** Describes a control or invisible-direction character, or undefined when `code` is fine. */
export function describeControl(code: number): string | undefined {
  if (code === 0x0a) return 'newline';
  if (code === 0x0d) return 'carriage return';
  if (code === 0x00) return 'NUL';
  if (code === 0x09) return 'tab';
  if (code < 0x20 || code === 0x7f || (code >= 0x80 && code <= 0x9f)) return 'control character';
  // Line separators and bidi overrides make a line read differently from what runs.
  if (code === 0x2028 || code === 0x2029) return 'line separator';
  if ((code >= 0x202a && code <= 0x202e) || (code >= 0x2066 && code <= 0x2069) || code === 0x200e || code === 0x200f)
    return 'bidirectional control character';
  if (code === 0xfeff) return 'byte order mark';
  return undefined;
}

function hex(code: number): string {
  return `U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
}

/** First control character in `s` (tabs included), as `{index, what}`. */
function findControl(s: string, allowTab: boolean): { index: number; code: number; what: string } | undefined {
  for (let i = 0; i < s.length; i++) {
    const code = s.charCodeAt(i);
    if (code >= 0x20 && code < 0x7f) continue;
    if (allowTab && code === 0x09) continue;
    const what = describeControl(code);
    if (what) return { index: i, code, what };
  }
  return undefined;
}

interface BraceFrame {
  start: number;
  comma: boolean;
  dotdot: boolean;
}

/**
 * Split `line` into pipeline stages of words. Never throws; refuses shell syntax it does not
 * implement, naming the token and its 1-based column.
 */
export function tokenize(line: string, opts: TokenizeOptions = {}): Result<Stage[], TokenizeCode> {
  if (typeof line !== 'string') return fail('unparseable', 'command line is not a string');
  const maxLength = opts.maxLength ?? MAX_LINE_LENGTH;
  if (line.length > maxLength)
    return fail('unparseable', `command line is ${line.length} characters long; the limit is ${maxLength}`);
  const vars = opts.vars ?? {};

  // Control characters are refused anywhere, even quoted: a newline or NUL in an argument
  // is never what a runbook line means. Tabs only separate words (checked in quotes below).
  const ctl = findControl(line, true);
  if (ctl)
    return fail('refused', `${ctl.what} (${hex(ctl.code)}) at column ${ctl.index + 1} is not allowed in a command line`);

  const stages: Stage[] = [[]];
  let parts: string[] | null = null; // the word being built
  let wordCol = 0;
  let wordQuoted = false;
  let wordLiteral = false; // has something besides unquoted expansions
  let braces: BraceFrame[] = [];
  let expandedTotal = 0;
  const n = line.length;

  const refuse = (token: string, col: number, why: string): Result<Stage[], TokenizeCode> =>
    fail('refused', `\`${token}\` at column ${col}: ${why}`);

  const start = (i: number): string[] => {
    if (parts === null) {
      parts = [];
      wordCol = i + 1;
      wordQuoted = false;
      wordLiteral = false;
      braces = [];
    }
    return parts;
  };
  const append = (p: string[], s: string): void => {
    p.push(s);
  };
  const end = (): void => {
    if (parts === null) return;
    const text = parts.join('');
    // Like a shell, a word made only of unquoted expansions that came out empty disappears.
    if (text !== '' || wordLiteral) stages[stages.length - 1]!.push({ text, col: wordCol, quoted: wordQuoted });
    parts = null;
  };

  /** Expands `$...` at index i. Returns the new index, or a failure. */
  const expand = (i: number, p: string[], inDouble: boolean): number | Result<Stage[], TokenizeCode> => {
    const next = line[i + 1];
    if (next === undefined || next === ' ' || next === '\t' || (inDouble && next === '"')) {
      append(p, '$');
      wordLiteral = true;
      return i + 1;
    }
    if (next === '(') {
      const tok = line[i + 2] === '(' ? '$((' : '$(';
      return refuse(tok, i + 1, 'command substitution and arithmetic are not supported (no shell runs)');
    }
    if (next === "'" || next === '"')
      return refuse(`$${next}`, i + 1, 'ANSI-C and locale quoting are not supported; use plain quotes');
    let name: string;
    let after: number;
    if (next === '{') {
      const close = line.indexOf('}', i + 2);
      if (close === -1) return fail('unparseable', `unterminated \`\${\` at column ${i + 1}`);
      const inner = line.slice(i + 2, close);
      if (!VAR_NAME.test(inner))
        return refuse(`\${${inner.slice(0, 40)}}`, i + 1, 'only plain ${NAME} expansion is supported (no defaults, substrings or special parameters)');
      name = inner;
      after = close + 1;
    } else if (NAME_START.test(next)) {
      let j = i + 2;
      while (j < n && NAME_CHAR.test(line[j]!)) j++;
      name = line.slice(i + 1, j);
      after = j;
    } else if (/[0-9@*#?$!-]/.test(next)) {
      return refuse(`$${next}`, i + 1, 'special parameters do not exist here; only $NAME variables set with `export`');
    } else {
      // `$` before punctuation is literal in a shell too (`ready$/`, `$.`).
      append(p, '$');
      wordLiteral = true;
      return i + 1;
    }
    if (!Object.prototype.hasOwnProperty.call(vars, name))
      return fail('unparseable', `undefined variable $${name} at column ${i + 1} (set it with \`export ${name}=VALUE\` on an earlier line)`);
    const value = vars[name] ?? '';
    const vctl = findControl(value, false);
    if (vctl) return refuse(`$${name}`, i + 1, `its value contains a ${vctl.what} (${hex(vctl.code)})`);
    expandedTotal += value.length;
    if (n + expandedTotal > MAX_EXPANDED_LENGTH)
      return fail('unparseable', `command line is longer than ${MAX_EXPANDED_LENGTH} characters after variable expansion`);
    // Values are one word, never split or globbed: data stays data.
    append(p, value);
    return after;
  };

  let i = 0;
  while (i < n) {
    const ch = line[i]!;
    if (ch === ' ' || ch === '\t') {
      end();
      i++;
      continue;
    }
    if (ch === '#' && parts === null) break; // a comment runs to the end of the line
    if (ch === "'") {
      const p = start(i);
      const close = line.indexOf("'", i + 1);
      if (close === -1) return fail('unparseable', `unterminated single quote at column ${i + 1}`);
      const s = line.slice(i + 1, close);
      const tab = s.indexOf('\t');
      if (tab !== -1) return fail('refused', `tab (U+0009) at column ${i + 2 + tab} is not allowed inside an argument`);
      append(p, s);
      wordQuoted = true;
      wordLiteral = true;
      i = close + 1;
      continue;
    }
    if (ch === '"') {
      const p = start(i);
      wordQuoted = true;
      wordLiteral = true;
      let j = i + 1;
      let closed = false;
      while (j < n) {
        const c = line[j]!;
        if (c === '"') {
          closed = true;
          j++;
          break;
        }
        if (c === '\\') {
          const e = line[j + 1];
          if (e === '"' || e === '\\' || e === '$' || e === '`') {
            append(p, e);
            j += 2;
          } else {
            append(p, '\\');
            j++;
          }
          continue;
        }
        if (c === '`') return refuse('`', j + 1, 'command substitution is not supported, not even inside double quotes');
        if (c === '\t') return fail('refused', `tab (U+0009) at column ${j + 1} is not allowed inside an argument`);
        if (c === '$') {
          const r = expand(j, p, true);
          if (typeof r !== 'number') return r;
          j = r;
          continue;
        }
        // Copy a run of ordinary characters at once.
        let k = j + 1;
        while (k < n) {
          const d = line[k]!;
          if (d === '"' || d === '\\' || d === '`' || d === '$' || d === '\t') break;
          k++;
        }
        append(p, line.slice(j, k));
        j = k;
      }
      if (!closed) return fail('unparseable', `unterminated double quote at column ${i + 1}`);
      i = j;
      continue;
    }
    if (ch === '\\') {
      const e = line[i + 1];
      if (e === undefined) return fail('unparseable', `trailing backslash at column ${i + 1} (join continued lines first)`);
      if (e === '\t') return fail('refused', `tab (U+0009) at column ${i + 2} is not allowed inside an argument`);
      const p = start(i);
      append(p, e);
      wordQuoted = true;
      wordLiteral = true;
      i += 2;
      continue;
    }
    if (ch === '$') {
      const p = start(i);
      const r = expand(i, p, false);
      if (typeof r !== 'number') return r;
      i = r;
      continue;
    }
    if (ch === '|') {
      const nx = line[i + 1];
      if (nx === '|') return refuse('||', i + 1, 'command lists are not supported; write one command per line');
      if (nx === '&') return refuse('|&', i + 1, 'stderr pipes are not supported');
      end();
      if (stages[stages.length - 1]!.length === 0)
        return fail('unparseable', `\`|\` at column ${i + 1} has no command before it`);
      stages.push([]);
      i++;
      continue;
    }
    if (ch === ';') return refuse(';', i + 1, 'command lists are not supported; write one command per line');
    if (ch === '&') {
      const tok = line[i + 1] === '&' ? '&&' : line[i + 1] === '>' ? '&>' : '&';
      return refuse(tok, i + 1, tok === '&&' ? 'command lists are not supported; write one command per line' : tok === '&>' ? 'redirects are not supported; output is captured for you' : 'background jobs are not supported');
    }
    if (ch === '>' || ch === '<') {
      // Name the whole redirect: `2>&1`, `>>`, `<(`...
      let from = i;
      let digits = '';
      if (parts !== null && !wordQuoted && /^\d+$/.test((parts as string[]).join(''))) {
        digits = (parts as string[]).join('');
        from = wordCol - 1;
      }
      let k = i + 1;
      const two = line[k];
      if (two === '>' || two === '&' || two === '|' || two === '(' || (ch === '<' && two === '<')) k++;
      if (line[k - 1] === '&') while (k < n && /[0-9-]/.test(line[k]!)) k++;
      const tok = digits + line.slice(i, k);
      const why = line[i + 1] === '(' ? 'process substitution is not supported' : 'redirects are not supported; output is captured for you';
      return refuse(tok, from + 1, why);
    }
    if (ch === '`') return refuse('`', i + 1, 'command substitution is not supported (no shell runs)');
    if (ch === '(' || ch === ')') return refuse(ch, i + 1, 'subshells and grouping are not supported');
    if (ch === '*' || ch === '?' || ch === '[')
      return refuse(ch, i + 1, 'unquoted glob characters are not expanded here; quote the argument (e.g. \'.items[]\')');
    if (ch === '~') {
      const prev = parts === null ? undefined : line[i - 1];
      if (parts === null || prev === '=' || prev === ':')
        return refuse('~', i + 1, 'tilde expansion is not supported; write the absolute path');
      append(start(i), '~');
      wordLiteral = true;
      i++;
      continue;
    }
    if (ch === '!' && parts === null && (i + 1 >= n || line[i + 1] === ' ' || line[i + 1] === '\t'))
      return refuse('!', i + 1, 'pipeline negation is not supported');
    if (ch === '{') {
      const p = start(i);
      braces.push({ start: i, comma: false, dotdot: false });
      append(p, '{');
      wordLiteral = true;
      i++;
      continue;
    }
    if (ch === '}') {
      const p = start(i);
      const frame = braces.pop();
      if (frame) {
        const body = line.slice(frame.start + 1, i);
        if (frame.comma || (frame.dotdot && body.length <= 64 && SEQUENCE_BRACE.test(body)))
          return refuse(line.slice(frame.start, i + 1).slice(0, 40), frame.start + 1, 'brace expansion is not supported; write each argument out');
      }
      append(p, '}');
      wordLiteral = true;
      i++;
      continue;
    }
    if (ch === ',' || ch === '.') {
      const p = start(i);
      const top = braces[braces.length - 1];
      if (top) {
        if (ch === ',') top.comma = true;
        else if (line[i + 1] === '.') top.dotdot = true;
      }
      append(p, ch);
      wordLiteral = true;
      i++;
      continue;
    }
    // Ordinary characters (including `#`, `=`, `:`, `!` inside a word): copy a run.
    const p = start(i);
    PLAIN.lastIndex = i + 1;
    let k = i + 1;
    while (k < n) {
      PLAIN.lastIndex = k;
      if (!PLAIN.test(line)) break;
      k++;
    }
    append(p, line.slice(i, k));
    wordLiteral = true;
    i = k;
  }
  end();
  const last = stages[stages.length - 1]!;
  if (last.length === 0) {
    if (stages.length === 1) return fail('unparseable', 'empty command line');
    return fail('unparseable', 'nothing after the last `|`');
  }
  return ok(stages);
}

/** Characters that never need quoting (and that the tokenizer reads back literally). */
const SAFE_WORD = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** Quote one word so that `tokenize` reads it back as exactly this text. */
export function quoteWord(text: string): string {
  if (text !== '' && SAFE_WORD.test(text)) return text;
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

/** Quote and join words into a line that tokenizes back to the same words. */
export function joinWords(words: readonly string[]): string {
  return words.map(quoteWord).join(' ');
}
