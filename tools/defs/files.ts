// files: a few coreutils on absolute paths. Paths are normalized here and all listed in
// scope.paths; the executor checks containment in the configured roots after resolving
// symlinks (this layer never touches the file system).

import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import type { Word } from '../tokenize.js';
import type { OpClass, ToolCall } from '../types.js';
import { makeCall, named, ok, parseFlags, refused, unparseable, type FlagTable, type ParseContext, type ParseResult } from './common.js';

export const FILES_CLASSES: Readonly<Record<string, OpClass>> = {
  cat: 'read', ls: 'read', stat: 'read', test: 'read',
  cp: 'mutate', mkdir: 'mutate', chmod: 'mutate', write: 'mutate',
  rm: 'destructive',
};

/** Programs a command line may start with (`write` comes only from file blocks). */
export const FILES_PROGRAMS = ['cat', 'ls', 'stat', 'test', 'cp', 'mkdir', 'chmod', 'rm'] as const;

const TABLES: Readonly<Record<string, FlagTable>> = {
  cat: {},
  ls: { bool: { '-l': 'l', '-a': 'a', '-A': 'A', '-h': 'h', '-d': 'd', '-1': '1', '-R': 'R', '-t': 't', '-r': 'r', '-S': 'S', '-n': 'n', '-i': 'i' } },
  stat: { bool: { '-L': 'dereference', '--dereference': 'dereference', '-t': 'terse', '--terse': 'terse' }, value: { '-c': 'format', '--format': 'format' } },
  cp: { bool: { '-p': 'p', '-a': 'a', '-r': 'r', '-R': 'r', '-n': 'n', '-f': 'f', '-v': 'v', '-b': 'b' } },
  mkdir: { bool: { '-p': 'p', '--parents': 'p', '-v': 'v' }, value: { '-m': 'mode', '--mode': 'mode' } },
  chmod: { bool: { '-R': 'R', '--recursive': 'R', '-v': 'v', '-c': 'c' } },
  rm: { bool: { '-f': 'f', '--force': 'f', '-r': 'r', '-R': 'r', '--recursive': 'r', '-d': 'd', '-v': 'v' } },
};

const TEST_OPS = new Set(['-e', '-f', '-d', '-r', '-w', '-x', '-s', '-L', '-h']);
const MODE = /^(?:[0-7]{3,4}|[ugoa]*[-+=][rwxXst]*(?:,[ugoa]*[-+=][rwxXst]*)*)$/;

/** Normalizes an absolute path; refuses relative paths and `..` segments. */
export function normalizePath(w: Word, tool: string): ParseResult<string> {
  const p = w.text;
  if (!p.startsWith('/')) return refused(`${tool}: ${named(w)} is not an absolute path`);
  if (p.split('/').includes('..')) return refused(`${tool}: ${named(w)} contains \`..\` (path traversal); write the path it means`);
  return ok(posix.normalize(p));
}

export function parseFiles(words: readonly Word[], _ctx: ParseContext): ParseResult<ToolCall> {
  const verb = words[0]!.text;
  const cls = FILES_CLASSES[verb];
  if (cls === undefined || verb === 'write') return unparseable(`files: ${named(words[0])} is not a files command`);

  if (verb === 'test') {
    // Only unary file tests: `test -f /srv/x`.
    const [op, path, extra] = words.slice(1);
    if (op === undefined || !TEST_OPS.has(op.text)) return unparseable(`test: only \`test -e|-f|-d|-r|-w|-x|-s|-L|-h PATH\` is vetted; got ${named(op)}`);
    if (path === undefined) return unparseable('test: needs a path');
    if (extra !== undefined) return refused(`test: unexpected ${named(extra)}; one file test per line`);
    const n = normalizePath(path, 'test');
    if (!n.ok) return n;
    return ok(makeCall({ tool: 'files', verb, program: [verb], args: [op.text, n.value], class: cls, scope: { paths: [n.value] } }));
  }

  const parsed = parseFlags(verb, words.slice(1), TABLES[verb] ?? {});
  if (!parsed.ok) return parsed;
  let operands = parsed.value.positionals;
  if (verb === 'chmod') {
    const mode = operands[0];
    if (mode === undefined || !MODE.test(mode.text)) return unparseable(`chmod: ${named(mode)} is not a mode (e.g. 0644 or g+w)`);
    operands = operands.slice(1);
  }
  const mkMode = parsed.value.flags.get('mode');
  if (typeof mkMode === 'string' && !MODE.test(mkMode)) return refused(`mkdir: mode \`${mkMode}\` is not a mode`);
  const min = verb === 'cp' ? 2 : 1;
  if (operands.length < min) return unparseable(`${verb}: needs ${min === 2 ? 'a source and a destination' : 'a path'} (absolute)`);

  const paths: string[] = [];
  const normalized = new Map<Word, string>();
  for (const o of operands) {
    const n = normalizePath(o, verb);
    if (!n.ok) return n;
    if (verb === 'rm' && n.value.replace(/\/+$/, '') === '') return refused(`rm: ${named(o)} is the root file system`);
    paths.push(n.value);
    normalized.set(o, n.value);
  }
  // Args as written, with each path operand replaced by its normalized form.
  const args: string[] = [];
  let oi = 0;
  for (const t of parsed.value.texts) {
    const o = operands[oi];
    if (o !== undefined && t === o.text && normalized.has(o)) {
      args.push(normalized.get(o)!);
      oi++;
    } else args.push(t);
  }
  return ok(makeCall({ tool: 'files', verb, program: [verb], args, class: cls, scope: { paths } }));
}

/** Largest file block accepted. */
export const MAX_FILE_BLOCK = 1024 * 1024;

/**
 * The call for a task's file block: write `content` to `path` (mutate). Its canonical line
 * carries the content's digest, so an approval binds to these exact bytes.
 */
export function makeFileWriteCall(path: string, content: string): ParseResult<ToolCall> {
  const w: Word = { text: path, col: 1, quoted: false };
  const n = normalizePath(w, 'write');
  if (!n.ok) return n;
  if (n.value.endsWith('/')) return refused(`write: ${named(w)} names a directory`);
  if (content.length > MAX_FILE_BLOCK) return refused(`write: file block for ${path} is larger than ${MAX_FILE_BLOCK} characters`);
  if (content.includes('\0')) return refused(`write: file block for ${path} contains a NUL byte`);
  const digest = createHash('sha256').update(content, 'utf8').digest('hex');
  const call = makeCall({ tool: 'files', verb: 'write', program: ['write'], args: [n.value, `sha256=${digest}`], class: 'mutate', scope: { paths: [n.value] } });
  call.content = content;
  return ok(call);
}
