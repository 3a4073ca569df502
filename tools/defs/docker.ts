// docker: read-only inspection only. Changes go through compose, the vetted path.

import type { Word } from '../tokenize.js';
import type { OpClass, ToolCall } from '../types.js';
import { list, makeCall, named, ok, parseFlags, refused, unparseable, type FlagTable, type ParseContext, type ParseResult } from './common.js';

export const DOCKER_CLASSES: Readonly<Record<string, OpClass>> = {
  ps: 'read',
  logs: 'read',
  inspect: 'read',
  stats: 'read',
};

const SUB: Readonly<Record<string, FlagTable>> = {
  ps: {
    bool: { '-a': 'all', '--all': 'all', '-q': 'quiet', '--quiet': 'quiet', '--no-trunc': 'no-trunc', '-s': 'size', '--size': 'size', '-l': 'latest', '--latest': 'latest' },
    value: { '--format': 'format', '-f': 'filter', '--filter': 'filter', '-n': 'last', '--last': 'last' },
  },
  logs: {
    bool: { '-t': 'timestamps', '--timestamps': 'timestamps', '--details': 'details' },
    value: { '-n': 'tail', '--tail': 'tail', '--since': 'since', '--until': 'until' },
    refused: { '-f': 'never ends; use --tail N', '--follow': 'never ends; use --tail N' },
  },
  inspect: { bool: { '-s': 'size', '--size': 'size' }, value: { '-f': 'format', '--format': 'format', '--type': 'type' } },
  stats: { bool: { '--no-stream': 'no-stream', '-a': 'all', '--all': 'all', '--no-trunc': 'no-trunc' }, value: { '--format': 'format' } },
};

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.:/@-]*$/;
const HINT = '`docker compose` is the vetted path for changes; docker itself only runs ps, logs, inspect, stats --no-stream';

export function parseDocker(words: readonly Word[], _ctx: ParseContext): ParseResult<ToolCall> {
  const subWord = words[1];
  if (subWord === undefined) return unparseable(`docker: no subcommand; ${HINT}`);
  if (subWord.text.startsWith('-'))
    return refused(`docker: global flag ${named(subWord)} is refused (the engine and its credentials come from the config); ${HINT}`);
  const sub = subWord.text;
  const cls = DOCKER_CLASSES[sub];
  const table = SUB[sub];
  if (cls === undefined || table === undefined) return refused(`docker: ${named(subWord)} is not vetted; ${HINT}`);
  const parsed = parseFlags(`docker ${sub}`, words.slice(2), table);
  if (!parsed.ok) return parsed;
  const { flags, positionals } = parsed.value;
  for (const p of positionals) {
    if (!NAME.test(p.text)) return refused(`docker ${sub}: ${named(p)} is not a container or object name`);
  }
  if (sub === 'ps' && positionals.length > 0) return refused(`docker ps: unexpected argument ${named(positionals[0])}`);
  if (sub === 'logs' && positionals.length !== 1) return unparseable('docker logs: name exactly one container');
  if (sub === 'inspect' && positionals.length === 0) return unparseable('docker inspect: name at least one object');
  if (sub === 'stats' && !flags.has('no-stream')) return refused('docker stats: without --no-stream it never ends; add --no-stream');
  const format = flags.get('format');
  const klass: OpClass = sub === 'inspect' && !(typeof format === 'string' && safeInspectFormat(format)) ? 'sensitive-read' : cls;
  return ok(makeCall({ tool: 'docker', verb: sub, program: ['docker'], args: [sub, ...parsed.value.texts], class: klass, scope: {} }));
}

// `docker inspect` prints a container's environment (Config.Env), where secrets live: it is a
// sensitive read, except with a -f template that only reads fields from these roots (state,
// identity, networking, mounts), as health checks do. (docker keeps the last -f, as this map does.)
const SAFE_INSPECT_ROOTS = new Set(['State', 'Name', 'Id', 'Created', 'RestartCount', 'Image', 'Platform', 'Driver', 'NetworkSettings', 'Mounts']);
const INSPECT_ACTION = /^\s*(?:json\s+)?\.([A-Z][A-Za-z0-9]*)(?:\.[A-Za-z0-9]+)*\s*$/;

/** True when every {{action}} of the template is `.Root.Field…` (or `json .Root…`) with a safe root. */
export function safeInspectFormat(template: string): boolean {
  const actions = [...template.matchAll(/\{\{(.*?)\}\}/g)];
  if (actions.length === 0) return false;
  const outside = template.replace(/\{\{.*?\}\}/g, '');
  if (outside.includes('{{') || outside.includes('}}')) return false;
  return actions.every((a) => {
    const m = INSPECT_ACTION.exec(a[1] ?? '');
    return m !== null && SAFE_INSPECT_ROOTS.has(m[1] ?? '');
  });
}

export function dockerVerbs(): string {
  return list(Object.keys(DOCKER_CLASSES));
}
