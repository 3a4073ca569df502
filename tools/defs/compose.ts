// compose: `docker compose` (v2) and `docker-compose` (v1) are the same tool. Only configured
// projects; the canonical form always names the project (and its file when the config has it)
// so the executor runs exactly what the policy saw, whichever binary the machine has.

import type { Word } from '../tokenize.js';
import type { OpClass, ToolCall } from '../types.js';
import { list, makeCall, named, ok, parseFlags, refused, unparseable, type FlagTable, type ParseContext, type ParseResult } from './common.js';

export const COMPOSE_CLASSES: Readonly<Record<string, OpClass>> = {
  ps: 'read', logs: 'read', config: 'read', images: 'read', top: 'read',
  up: 'mutate', restart: 'mutate', start: 'mutate', pull: 'mutate', create: 'mutate',
  down: 'destructive', rm: 'destructive', kill: 'destructive', stop: 'destructive',
};

const REFUSED_SUBCOMMANDS: Readonly<Record<string, string>> = {
  run: 'starts arbitrary containers (and mounts); put the service in the project file and use up -d',
  exec: 'is interactive / arbitrary execution in a container',
  cp: 'copies files between containers and this machine',
  attach: 'is interactive',
  build: 'builds images from local Dockerfiles; not vetted',
  push: 'publishes images; not vetted',
  watch: 'never ends',
  events: 'never ends',
};

const GLOBAL: FlagTable = {
  value: {
    '-p': 'project', '--project-name': 'project', '-f': 'file', '--file': 'file', '--profile': 'profile',
    '--ansi': 'ansi', '--progress': 'progress', '--parallel': 'parallel',
  },
  bool: { '--compatibility': 'compatibility', '--dry-run': 'dry-run' },
  refused: {
    '-H': 'redirects the container engine; it comes from the config', '--host': 'redirects the container engine; it comes from the config',
    '-c': 'redirects the container engine', '--context': 'redirects the container engine',
    '--env-file': 'reads a local env file', '--project-directory': 'redirects the project',
    '--tlsverify': 'redirects the engine connection', '--tlscacert': 'redirects the engine connection',
    '--tlscert': 'redirects the engine connection', '--tlskey': 'redirects the engine connection',
  },
};

const SUB: Readonly<Record<string, FlagTable>> = {
  ps: { bool: { '-a': 'all', '--all': 'all', '-q': 'quiet', '--quiet': 'quiet', '--services': 'services' }, value: { '--format': 'format', '--status': 'status', '--filter': 'filter' } },
  logs: {
    bool: { '-t': 'timestamps', '--timestamps': 'timestamps', '--no-color': 'no-color', '--no-log-prefix': 'no-log-prefix' },
    value: { '-n': 'tail', '--tail': 'tail', '--since': 'since', '--until': 'until' },
    refused: { '-f': 'never ends; use --tail N', '--follow': 'never ends; use --tail N' },
  },
  config: {
    bool: { '-q': 'quiet', '--quiet': 'quiet', '--services': 'services', '--volumes': 'volumes', '--images': 'images', '--no-interpolate': 'no-interpolate', '--resolve-image-digests': 'resolve-image-digests' },
    value: { '--format': 'format' },
    refused: { '-o': 'writes a local file', '--output': 'writes a local file' },
  },
  images: { bool: { '-q': 'quiet', '--quiet': 'quiet' }, value: { '--format': 'format' } },
  top: {},
  up: {
    bool: {
      '-d': 'detach', '--detach': 'detach', '--no-deps': 'no-deps', '--force-recreate': 'force-recreate', '--no-recreate': 'no-recreate',
      '--remove-orphans': 'remove-orphans', '--wait': 'wait', '--no-start': 'no-start', '--quiet-pull': 'quiet-pull',
      '--always-recreate-deps': 'always-recreate-deps', '-V': 'renew-anon-volumes', '--renew-anon-volumes': 'renew-anon-volumes', '--no-build': 'no-build',
    },
    value: { '-t': 'timeout', '--timeout': 'timeout', '--wait-timeout': 'wait-timeout', '--pull': 'pull', '--scale': 'scale' },
    refused: { '--build': 'builds images from local Dockerfiles; not vetted', '--abort-on-container-exit': 'runs attached and never returns on its own', '--attach': 'runs attached' },
  },
  restart: { bool: { '--no-deps': 'no-deps' }, value: { '-t': 'timeout', '--timeout': 'timeout' } },
  start: {},
  stop: { value: { '-t': 'timeout', '--timeout': 'timeout' } },
  pull: { bool: { '-q': 'quiet', '--quiet': 'quiet', '--ignore-pull-failures': 'ignore-pull-failures', '--include-deps': 'include-deps' }, value: { '--policy': 'policy' } },
  create: { bool: { '--force-recreate': 'force-recreate', '--no-recreate': 'no-recreate', '--remove-orphans': 'remove-orphans' }, value: { '--pull': 'pull' } },
  down: { bool: { '--remove-orphans': 'remove-orphans', '-v': 'volumes', '--volumes': 'volumes' }, value: { '--rmi': 'rmi', '-t': 'timeout', '--timeout': 'timeout' } },
  rm: { bool: { '-f': 'force', '--force': 'force', '-s': 'stop', '--stop': 'stop', '-v': 'volumes', '--volumes': 'volumes' } },
  kill: { bool: { '--remove-orphans': 'remove-orphans' }, value: { '-s': 'signal', '--signal': 'signal' } },
};

const SERVICE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const PROJECT = /^[a-z0-9][a-z0-9_-]*$/;
/** A bind mount of the host's `/` (`/:/host`, `-v=/:/x`, `source=/,`...). */
const ROOT_MOUNT = /(?:^|[=,\s])\/(?::|,|$)/;

export function parseCompose(words: readonly Word[], ctx: ParseContext): ParseResult<ToolCall> {
  const first = words[0]?.text;
  const skip = first === 'docker-compose' ? 1 : 2;
  const rest = words.slice(skip);

  // Belt and braces: no word of a compose call may mount the host's root.
  for (const w of rest) {
    if (ROOT_MOUNT.test(w.text)) return refused(`compose: ${named(w)} mounts the host's \`/\`; volume mounts of / are refused`);
  }

  // Global flags come before the subcommand.
  let k = 0;
  while (k < rest.length && rest[k]!.text.startsWith('-')) {
    const t = rest[k]!.text;
    const isValue = GLOBAL.value?.[t.split('=')[0]!] !== undefined && !t.includes('=') && !/^-[a-z]./.test(t);
    k += isValue ? 2 : 1;
  }
  const globals = parseFlags('compose', rest.slice(0, Math.min(k, rest.length)), GLOBAL);
  if (!globals.ok) return globals;
  if (globals.value.positionals.length > 0) return refused(`compose: unexpected ${named(globals.value.positionals[0])} before the subcommand`);
  const subWord = rest[k];
  if (subWord === undefined) return unparseable(`compose: no subcommand; vetted: ${list(Object.keys(COMPOSE_CLASSES))}`);
  const sub = subWord.text;
  const why = REFUSED_SUBCOMMANDS[sub];
  if (why !== undefined) return refused(`compose: ${named(subWord)} is refused: it ${why}`);
  const cls = COMPOSE_CLASSES[sub];
  const table = SUB[sub];
  if (cls === undefined || table === undefined)
    return unparseable(`compose: unknown or unvetted subcommand ${named(subWord)}; vetted: ${list(Object.keys(COMPOSE_CLASSES))}`);
  const subArgs = parseFlags(`compose ${sub}`, rest.slice(k + 1), table);
  if (!subArgs.ok) return subArgs;
  for (const s of subArgs.value.positionals) {
    if (!SERVICE.test(s.text)) return refused(`compose ${sub}: ${named(s)} is not a service name`);
  }
  if (sub === 'up' && !subArgs.value.flags.has('detach'))
    return refused('compose: attached `up` never returns; use `up -d` (add --wait to wait for health)');

  // The project: -p NAME, or the configured project whose file is -f FILE.
  const projects = ctx.env?.compose?.projects;
  const gflags = globals.value.flags;
  const pName = gflags.get('project');
  const pFile = gflags.get('file');
  let project = typeof pName === 'string' ? pName : undefined;
  if (typeof pFile === 'string') {
    const match = projects ? Object.entries(projects).find(([, p]) => p.file === pFile) : undefined;
    if (!match) return refused(`compose: -f ${pFile} is not a configured project's file${projects ? ` (configured: ${list(Object.values(projects).map((p) => p.file))})` : ' (no compose projects are configured)'}`);
    if (project !== undefined && project !== match[0]) return refused(`compose: -f ${pFile} belongs to project ${match[0]}, not ${project}`);
    project = match[0];
  }
  if (project === undefined)
    return unparseable(`compose: name the project with -p NAME${projects ? ` (configured: ${list(Object.keys(projects))})` : ''}`);
  if (!PROJECT.test(project)) return refused(`compose: \`${project}\` is not a project name`);
  if (projects && !(project in projects)) return refused(`compose: project \`${project}\` is not configured (configured: ${list(Object.keys(projects))})`);

  const args: string[] = [];
  const file = projects?.[project]?.file;
  if (file !== undefined) args.push('-f', file);
  args.push('-p', project);
  for (const [key, v] of gflags) {
    if (key === 'project' || key === 'file') continue;
    args.push(v === true ? `--${key}` : `--${key}=${v}`);
  }
  args.push(sub, ...subArgs.value.texts);

  return ok(
    makeCall({
      tool: 'compose',
      verb: sub,
      program: ['docker', 'compose'],
      args,
      class: configClass(sub, subArgs.value.flags) ?? cls,
      scope: { project },
      ...(sub === 'up' ? { preflight: 'compose-config' as const } : {}),
    }),
  );
}

// `config` prints the project resolved, its environment interpolated (secrets from .env): a
// sensitive read, except when it prints only names (--services, --volumes, --images) or nothing
// (-q, the check before every `up`).
function configClass(sub: string, flags: ReadonlyMap<string, string | true>): OpClass | null {
  if (sub !== 'config') return null;
  return ['quiet', 'services', 'volumes', 'images'].some((f) => flags.get(f) === true) ? null : 'sensitive-read';
}
