// Shared plumbing for the per-tool definitions: the parse context, refusal helpers and the
// call builder. Definitions import only this, tools/types.ts, tools/result.ts and the tokenizer.

import { fail, ok, type Result } from '../result.js';
import { joinWords, type Word } from '../tokenize.js';
import type { CallScope, OpClass, Preflight, ToolCall, ToolEnv, ToolName } from '../types.js';

export type ParseCode = 'unparseable' | 'refused';
export type ParseResult<T> = Result<T, ParseCode>;

export interface ParseContext {
  env?: ToolEnv;
  vars: Readonly<Record<string, string>>;
  /** Parses a remote command line with the same catalogue (used by ssh; absent inside ssh). */
  parseRemote?: (line: string) => ParseResult<ToolCall>;
}

/** A tool definition's parser: the whole stage's words, program word(s) included. */
export type ToolParser = (words: readonly Word[], ctx: ParseContext) => ParseResult<ToolCall>;

export function refused(message: string): ParseResult<never> {
  return fail('refused', message);
}

export function unparseable(message: string): ParseResult<never> {
  return fail('unparseable', message);
}

/** `flag` at column N — how every message names an offending token. */
export function named(w: Word | undefined, fallback = 'end of line'): string {
  if (!w) return fallback;
  const text = w.text.length > 60 ? `${w.text.slice(0, 60)}…` : w.text;
  return `\`${text}\` (column ${w.col})`;
}

export interface CallParts {
  tool: ToolName;
  verb: string;
  /** The program prefix as written in the canonical line (`kubectl`, `docker compose`...). */
  program: string[];
  args: string[];
  class: OpClass;
  scope: CallScope;
  preflight?: Preflight;
}

/** Builds a ToolCall whose canonical line is the program prefix plus the quoted args. */
export function makeCall(p: CallParts): ToolCall {
  const call: ToolCall = {
    tool: p.tool,
    verb: p.verb,
    args: p.args,
    class: p.class,
    scope: p.scope,
    canonical: joinWords([...p.program, ...p.args]),
    pipeline: [],
  };
  if (p.preflight) call.preflight = p.preflight;
  return call;
}

export { ok };

/** Splits `--name=value` into its parts (value undefined without `=`). */
export function splitLong(text: string): { name: string; value: string | undefined } {
  const eq = text.indexOf('=');
  return eq === -1 ? { name: text, value: undefined } : { name: text.slice(0, eq), value: text.slice(eq + 1) };
}

/** Lists names for messages: `a, b, c`. */
export function list(names: Iterable<string>): string {
  return [...names].join(', ');
}

/**
 * A table of flags for getopt/pflag-style tools. Keys are spellings (`-a`, `--all`); values
 * are the key the parser records. Unknown flags are refused: a whitelist, so no flag can
 * slip a value past us that we would then read as a positional.
 */
export interface FlagTable {
  bool?: Readonly<Record<string, string>>;
  value?: Readonly<Record<string, string>>;
  refused?: Readonly<Record<string, string>>;
}

export interface ParsedFlags {
  flags: Map<string, string | true>;
  positionals: Word[];
  /** The words as written (flags and positionals, in order), minus nothing. */
  texts: string[];
}

/** Parses flags anywhere among positionals; `--` ends flags. */
export function parseFlags(tool: string, words: readonly Word[], table: FlagTable): ParseResult<ParsedFlags> {
  const out: ParsedFlags = { flags: new Map(), positionals: [], texts: [] };
  const bool = table.bool ?? {};
  const value = table.value ?? {};
  const refusedFlags = table.refused ?? {};
  const allowed = (): string => list([...Object.keys(bool), ...Object.keys(value)]);
  let endOfFlags = false;
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    const text = w.text;
    if (endOfFlags || text === '-' || !text.startsWith('-')) {
      out.positionals.push(w);
      out.texts.push(text);
      continue;
    }
    if (text === '--') {
      endOfFlags = true;
      out.texts.push(text);
      continue;
    }
    if (text.startsWith('--')) {
      const { name, value: v } = splitLong(text);
      const why = refusedFlags[name];
      if (why !== undefined) return refused(`${tool}: ${named(w)} is refused: ${why}`);
      const bkey = bool[name];
      const vkey = value[name];
      if (bkey !== undefined) {
        if (v !== undefined && v !== 'true' && v !== 'false') return refused(`${tool}: ${named(w)} takes no value`);
        out.flags.set(bkey, v ?? true);
        out.texts.push(text);
      } else if (vkey !== undefined) {
        let val = v;
        out.texts.push(text);
        if (val === undefined) {
          const next = words[i + 1];
          if (next === undefined) return refused(`${tool}: ${named(w)} needs a value`);
          val = next.text;
          out.texts.push(val);
          i++;
        }
        out.flags.set(vkey, val);
      } else return refused(`${tool}: unknown flag ${named(w)}; vetted flags: ${allowed()}`);
      continue;
    }
    // Short flags, possibly bundled (`-la`) or with an attached value (`-n50`).
    out.texts.push(text);
    for (let j = 1; j < text.length; j++) {
      const spelling = `-${text[j]!}`;
      const why = refusedFlags[spelling];
      if (why !== undefined) return refused(`${tool}: \`${spelling}\` in ${named(w)} is refused: ${why}`);
      const bkey = bool[spelling];
      if (bkey !== undefined) {
        out.flags.set(bkey, true);
        continue;
      }
      const vkey = value[spelling];
      if (vkey === undefined) return refused(`${tool}: unknown flag \`${spelling}\` in ${named(w)}; vetted flags: ${allowed()}`);
      let val = text.slice(j + 1).replace(/^=/, '');
      if (val === '') {
        const next = words[i + 1];
        if (next === undefined) return refused(`${tool}: \`${spelling}\` in ${named(w)} needs a value`);
        val = next.text;
        out.texts.push(val);
        i++;
      }
      out.flags.set(vkey, val);
      break;
    }
  }
  return ok(out);
}
