// The workspace config (`opscrew.config.yaml`, DESIGN §10): read once at start, validated with
// zod, `~` expanded, durations parsed, defaults applied. A wrong config fails at start with the
// file, the key path, the line and the fix. Secrets never live here: the Vault address and
// token are read from the environment variables the config names.
import * as nodeFs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import type { ToolEnv } from '../../tools/types.js';
import { fail, formatIssue, ok, type Issue, type Result } from './errors.js';
import { parseDuration } from './duration.js';
import { parseYamlDocument } from './yaml.js';

export const CONFIG_FILE = 'opscrew.config.yaml';

export const MODES = ['read-only', 'standard', 'full'] as const;
export type Mode = (typeof MODES)[number];
export const BRAINS = ['runbook', 'claude'] as const;
export type Brain = (typeof BRAINS)[number];

/** The validated config. Durations are milliseconds; paths are absolute (`~` expanded). */
export interface Config {
  mode: Mode;
  brain: Brain;
  /** Workers in one daemon. */
  concurrency: number;
  /** Default `max_attempts` for tasks that do not set it. */
  max_attempts: number;
  /** Bytes kept of each of a command's stdout and stderr. */
  output_cap: number;
  /** Characters of stdout/stderr kept in an audit row (after scrubbing). */
  audit_excerpt: number;
  timeouts: {
    /** Per command, ms. */
    command: number;
    /** Whole task when the task sets no `timeout`, ms. Task-file approvals expire with it. */
    task: number;
    /** How long a pending approval request waits for a person, ms. */
    approval: number;
    /** Crew lease on a claimed task, renewed by heartbeat; unset = the queue's default (5 min). */
    lease?: number;
    /** How long running tasks may finish after SIGTERM/SIGINT before they are released; unset = 30 s. */
    grace?: number;
  };
  kubernetes: {
    /** Passed to kubectl as KUBECONFIG. Default: $KUBECONFIG, else ~/.kube/config. */
    kubeconfig: string;
    /** The context used when a command names none; unset = every command must name one. */
    default_context?: string;
    contexts: Record<string, { namespaces: string[] }>;
  };
  compose: {
    /** Default: $DOCKER_HOST, else the engine's default. */
    docker_host?: string;
    projects: Record<string, { file: string }>;
  };
  ssh: {
    hosts: Record<string, { host: string; port: number; user: string; identity_file?: string; known_hosts?: string }>;
  };
  vault: {
    /** Names of environment variables, never the values. */
    address_env: string;
    token_env: string;
    /** KV path prefixes (no leading/trailing slash). */
    paths: string[];
  };
  files: { roots: string[] };
  http: { allow: string[] };
  /** Where the config came from (not a YAML key). */
  source: { file: string | null; workspaceDir: string };
}

// ---------------------------------------------------------------- schema (raw YAML shape)

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
const NAME_FIX = 'names start with a letter or digit and use only letters, digits, "_", "." and "-"';
const name = z.string().regex(NAME_RE, 'is not a valid name');
// A namespace is a DNS label; '*' means every namespace (and allows -A).
const NAMESPACE_RE = /^(\*|[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)$/;
const ENV_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
// Host names and IP literals only: no spaces, no leading '-' (it would become an ssh option).
const HOST_RE = /^(\[[0-9A-Fa-f:.]+\]|[0-9A-Fa-f:]*:[0-9A-Fa-f:.]+|[A-Za-z0-9]([A-Za-z0-9.-]{0,252}))$/;
const USER_RE = /^[A-Za-z_][A-Za-z0-9_.-]{0,31}$/;
const HOST_PATTERN_RE = /^(\*\.)?[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$|^\[?[0-9A-Fa-f:.]+\]?$/;
const VAULT_PATH_RE = /^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*\/?$/;

const duration = z
  .string({ error: 'must be a duration' })
  .refine((s) => parseDuration(s) !== null, { message: 'is not a duration' });
const pathString = z.string().min(1).refine((s) => !s.includes('\0') && !s.includes('\n'), { message: 'is not a path' });

const rawSchema = z.strictObject({
  mode: z.enum(MODES).default('standard'),
  brain: z.enum(BRAINS).default('runbook'),
  concurrency: z.number().int().min(1).max(64).default(2),
  max_attempts: z.number().int().min(1).max(20).default(2),
  output_cap: z.number().int().min(1024).max(64 * 1024 * 1024).default(1024 * 1024),
  audit_excerpt: z.number().int().min(0).max(100_000).default(2000),
  timeouts: z
    .strictObject({
      command: duration.default('2m'),
      task: duration.default('30m'),
      approval: duration.default('15m'),
      // Optional: a short lease makes peers reclaim a dead daemon's tasks sooner.
      lease: duration.refine((s) => (parseDuration(s) ?? 1000) >= 1000, { message: 'must be at least 1s' }).optional(),
      grace: duration.optional(),
    })
    .default({ command: '2m', task: '30m', approval: '15m' }),
  kubernetes: z
    .strictObject({
      kubeconfig: pathString.optional(),
      default_context: name.optional(),
      contexts: z
        .record(name, z.strictObject({ namespaces: z.array(z.string().regex(NAMESPACE_RE, 'is not a namespace name')).min(1) }))
        .default({}),
    })
    .default({ contexts: {} }),
  compose: z
    .strictObject({
      docker_host: z.string().regex(/^(unix|tcp|ssh|npipe):\/\/\S+$/, 'is not a docker host URL').optional(),
      projects: z.record(name, z.strictObject({ file: pathString })).default({}),
    })
    .default({ projects: {} }),
  ssh: z
    .strictObject({
      hosts: z
        .record(
          name,
          z.strictObject({
            host: z.string().regex(HOST_RE, 'is not a host name or IP address'),
            port: z.number().int().min(1).max(65535).default(22),
            user: z.string().regex(USER_RE, 'is not a user name'),
            identity_file: pathString.optional(),
            known_hosts: pathString.optional(),
          }),
        )
        .default({}),
    })
    .default({ hosts: {} }),
  vault: z
    .strictObject({
      address_env: z.string().regex(ENV_RE, 'is not an environment variable name').default('VAULT_ADDR'),
      token_env: z.string().regex(ENV_RE, 'is not an environment variable name').default('VAULT_TOKEN'),
      paths: z.array(z.string().regex(VAULT_PATH_RE, 'is not a Vault KV path').refine((p) => !p.split('/').includes('..'), { message: 'must not contain ".."' })).default([]),
    })
    .default({ address_env: 'VAULT_ADDR', token_env: 'VAULT_TOKEN', paths: [] }),
  files: z.strictObject({ roots: z.array(pathString).default([]) }).default({ roots: [] }),
  http: z
    .strictObject({ allow: z.array(z.string().regex(HOST_PATTERN_RE, 'is not a host name or "*.domain" pattern')).default([]) })
    .default({ allow: [] }),
});

type RawConfig = z.output<typeof rawSchema>;

/** What to write, per key (path segments; `*` = any record key). Used in the fix of an error. */
const HINTS: Array<[string, string]> = [
  ['mode', 'one of read-only, standard, full'],
  ['brain', 'one of runbook, claude'],
  ['concurrency', 'a whole number of workers from 1 to 64, e.g. `concurrency: 2`'],
  ['max_attempts', 'a whole number from 1 to 20, e.g. `max_attempts: 2`'],
  ['output_cap', 'a number of bytes from 1024 to 67108864, e.g. `output_cap: 1048576`'],
  ['audit_excerpt', 'a number of characters from 0 to 100000, e.g. `audit_excerpt: 2000`'],
  ['timeouts', 'a section: `timeouts: { command: 2m, task: 30m, approval: 15m }` (optional: `lease: 5m`, `grace: 30s`)'],
  ['timeouts.*', 'a duration such as 90s, 2m, 1h or 1h30m'],
  ['kubernetes', 'a section: `kubernetes: { contexts: { NAME: { namespaces: [default] } } }`'],
  ['kubernetes.contexts', 'a mapping of context names, e.g. `contexts: { minikube: { namespaces: [default] } }`'],
  ['compose', 'a section: `compose: { projects: { NAME: { file: /srv/NAME/docker-compose.yml } } }`'],
  ['compose.projects', 'a mapping of project names, e.g. `projects: { shop: { file: /srv/shop/docker-compose.yml } }`'],
  ['ssh', 'a section: `ssh: { hosts: { NAME: { host: 10.0.0.5, user: ops } } }`'],
  ['ssh.hosts', 'a mapping of host names, e.g. `hosts: { edge-1: { host: 10.0.0.5, user: ops } }`'],
  ['vault', 'a section: `vault: { paths: [kv/deploy] }`'],
  ['files', 'a section: `files: { roots: [/srv] }`'],
  ['http', 'a section: `http: { allow: [127.0.0.1] }`'],
  ['kubernetes.kubeconfig', 'a path such as ~/.kube/config'],
  ['kubernetes.default_context', `the name of a context listed under kubernetes.contexts; ${NAME_FIX}`],
  ['kubernetes.contexts.*', 'each context as `NAME: { namespaces: [ns1, ns2] }`'],
  ['kubernetes.contexts.*.namespaces', 'a list of namespace names, e.g. `[default, shop]`, or `["*"]` for every namespace'],
  ['compose.docker_host', 'a URL such as unix:///run/podman/podman.sock or tcp://127.0.0.1:2375'],
  ['compose.projects.*', 'each project as `NAME: { file: /path/to/docker-compose.yml }`'],
  ['compose.projects.*.file', 'the path of the project\'s compose file'],
  ['ssh.hosts.*', 'each host as `NAME: { host: 10.0.0.5, port: 22, user: ops }`'],
  ['ssh.hosts.*.host', 'a host name or IP address, e.g. 10.0.0.5'],
  ['ssh.hosts.*.port', 'a port number from 1 to 65535, e.g. `port: 22`'],
  ['ssh.hosts.*.user', 'a login name, e.g. `user: ops`'],
  ['ssh.hosts.*.identity_file', 'the path of a private key, e.g. ~/.ssh/id_ed25519'],
  ['ssh.hosts.*.known_hosts', 'the path of a known_hosts file, e.g. ~/.ssh/known_hosts'],
  ['vault.address_env', 'the NAME of the environment variable holding the Vault address, e.g. VAULT_ADDR (never the address itself)'],
  ['vault.token_env', 'the NAME of the environment variable holding the Vault token, e.g. VAULT_TOKEN (never the token itself)'],
  ['vault.paths', 'a list of KV path prefixes, e.g. `[kv/deploy]`'],
  ['files.roots', 'a list of directories, e.g. `[/srv, /etc/systemd/system]`'],
  ['http.allow', 'a list of hosts or patterns, e.g. `[127.0.0.1, "*.example.org"]`'],
];

function hintFor(keyPath: PropertyKey[]): string | undefined {
  // Array indexes do not change what a list element must be.
  const segs = keyPath.filter((k) => typeof k !== 'number').map(String);
  for (const [pattern, hint] of HINTS) {
    const p = pattern.split('.');
    if (p.length === segs.length && p.every((s, i) => s === '*' || s === segs[i])) return hint;
  }
  return undefined;
}

/** The keys valid at an object path of the schema (record keys are free). */
function validKeysAt(keyPath: PropertyKey[]): string[] {
  let s: z.ZodType = rawSchema;
  for (const k of keyPath) {
    s = unwrap(s);
    const def = (s as unknown as { _zod: { def: { type: string; shape?: Record<string, z.ZodType>; valueType?: z.ZodType; element?: z.ZodType } } })._zod.def;
    if (def.type === 'object' && def.shape) {
      const next = def.shape[String(k)];
      if (!next) return [];
      s = next;
    } else if (def.type === 'record' && def.valueType) s = def.valueType;
    else if (def.type === 'array' && def.element) s = def.element;
    else return [];
  }
  s = unwrap(s);
  const def = (s as unknown as { _zod: { def: { type: string; shape?: Record<string, unknown> } } })._zod.def;
  return def.type === 'object' && def.shape ? Object.keys(def.shape) : [];
}

function unwrap(s: z.ZodType): z.ZodType {
  let cur = s;
  for (let i = 0; i < 10; i++) {
    const def = (cur as unknown as { _zod: { def: { type: string; innerType?: z.ZodType } } })._zod.def;
    if ((def.type === 'default' || def.type === 'optional' || def.type === 'prefault' || def.type === 'nullable') && def.innerType) cur = def.innerType;
    else break;
  }
  return cur;
}

function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j]!;
      prev[j] = Math.min(prev[j]! + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length]!;
}

function closest(word: string, options: string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const o of options) {
    const d = editDistance(word.toLowerCase(), o.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = o;
    }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

export function keyPathString(keyPath: readonly PropertyKey[]): string {
  let out = '';
  for (const k of keyPath) {
    if (typeof k === 'number') out += `[${k}]`;
    else out += out ? `.${String(k)}` : String(k);
  }
  return out;
}

// ---------------------------------------------------------------- locating keys in the YAML text

/**
 * The 1-based line of a key path in block-style YAML (flow maps on one line included), or of
 * its deepest ancestor found; 0 when not even the first key is found. A heuristic on purpose:
 * it only has to point a person at the right line, never to parse.
 */
export function locateKeyLine(text: string, keyPath: readonly PropertyKey[]): number {
  const lines = text.split(/\r?\n/);
  let line = 0; // best line so far (1-based), 0 = none
  let parentIndent = -1;
  for (const k of keyPath) {
    const cur = line > 0 ? lines[line - 1]! : '';
    const restOfLine = cur.slice(cur.indexOf(':') + 1).trim();
    if (typeof k === 'number') {
      // A flow list stays on its line; a block list has one `- ` line per item.
      if (line > 0 && restOfLine.startsWith('[')) return line;
      let seen = -1;
      let found = -1;
      for (let i = line; i < lines.length; i++) {
        const l = lines[i]!;
        const t = l.trim();
        if (!t || t.startsWith('#')) continue;
        const ind = l.length - l.trimStart().length;
        const item = t.startsWith('- ') || t === '-';
        if (ind < parentIndent || (ind === parentIndent && !item)) break;
        if (item && ++seen === k) {
          found = i;
          break;
        }
      }
      if (found < 0) return line;
      line = found + 1;
      continue;
    }
    const key = escapeRe(String(k));
    // A flow map on the parent's line: `edge-1: { host: x, port: 22 }`.
    if (line > 0 && restOfLine.startsWith('{')) {
      return line;
    }
    const keyRe = new RegExp(`^\\s*(-\\s+)?(["']?)${key}\\2\\s*:(\\s|$)`);
    let found = -1;
    for (let i = line; i < lines.length; i++) {
      const l = lines[i]!;
      const t = l.trim();
      if (!t || t.startsWith('#')) continue;
      const ind = l.length - l.trimStart().length;
      if (line > 0 && ind <= parentIndent) break;
      if (line === 0 && ind > 0) continue; // the first key is a top-level one
      if (keyRe.test(l)) {
        found = i;
        break;
      }
    }
    if (found < 0) return line;
    const l = lines[found]!;
    parentIndent = l.length - l.trimStart().length;
    line = found + 1;
  }
  return line;
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

// ---------------------------------------------------------------- loading

/** The file-system calls loadConfig needs (tests pass a fake). */
export interface ConfigFs {
  readFileSync(path: string, encoding: 'utf8'): string;
  existsSync(path: string): boolean;
}

export interface LoadConfigOptions {
  workspaceDir: string;
  env?: NodeJS.ProcessEnv;
  fs?: ConfigFs;
  /** Another file name than `opscrew.config.yaml` (absolute or relative to the workspace). */
  file?: string;
}

/** The failure of loadConfig carries the located problems as `cause`. */
export type ConfigFailureCause = { issues: Issue[] };

/**
 * Load `opscrew.config.yaml` from the workspace. A missing file means the defaults (empty
 * scopes: nothing but HTTP reads and docker reads is reachable). Failure code `config-invalid`
 * with `cause: { issues }`, each issue naming file, line, key path and fix.
 */
export function loadConfig(options: LoadConfigOptions): Result<Config> {
  const env = options.env ?? process.env;
  const fs = options.fs ?? nodeFs;
  const workspaceDir = path.resolve(options.workspaceDir);
  const file = path.resolve(workspaceDir, options.file ?? CONFIG_FILE);
  if (!fs.existsSync(file)) {
    if (options.file !== undefined) {
      return configFailure([{ file, line: 0, message: 'config file not found', fix: `create ${file} or drop the explicit file name` }]);
    }
    return parseConfig(undefined, { file: null, workspaceDir, env });
  }
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (cause) {
    return configFailure([{ file, line: 0, message: `cannot read the config: ${String(cause)}`, fix: 'check the file permissions' }]);
  }
  return parseConfigText(text, { file, workspaceDir, env });
}

/** Parse config YAML text (the file name is only for messages). */
export function parseConfigText(text: string, ctx: { file: string; workspaceDir: string; env: NodeJS.ProcessEnv }): Result<Config> {
  const doc = parseYamlDocument(text, ctx.file);
  if (!doc.ok) return configFailure([doc.issue]);
  const data = doc.data ?? {};
  if (typeof data !== 'object' || Array.isArray(data)) {
    return configFailure([{ file: ctx.file, line: 1, message: 'the config must be a mapping of keys', fix: 'start with `mode: standard` and the sections of examples/opscrew.config.yaml' }]);
  }
  return parseConfig(data, { ...ctx, text });
}

function parseConfig(
  data: unknown,
  ctx: { file: string | null; workspaceDir: string; env: NodeJS.ProcessEnv; text?: string },
): Result<Config> {
  const fileLabel = ctx.file ?? path.join(ctx.workspaceDir, CONFIG_FILE);
  const parsed = rawSchema.safeParse(data ?? {});
  if (!parsed.success) {
    const issues: Issue[] = [];
    for (const zi of parsed.error.issues) issues.push(...zodIssueToIssues(zi, fileLabel, ctx.text ?? ''));
    return configFailure(issues);
  }
  const raw = parsed.data;
  const issues = crossCheck(raw, fileLabel, ctx.text ?? '');
  if (issues.length) return configFailure(issues);
  return ok(finish(raw, ctx));
}

function zodIssueToIssues(zi: z.core.$ZodIssue, file: string, text: string): Issue[] {
  const keyPath = zi.path as PropertyKey[];
  if (zi.code === 'unrecognized_keys') {
    const valid = validKeysAt(keyPath);
    return zi.keys.map((k) => {
      const full = [...keyPath, k];
      const guess = closest(k, valid);
      const fix =
        (guess ? `did you mean \`${guess}\`? ` : '') +
        (valid.length ? `valid keys here: ${valid.join(', ')}` : 'remove the key');
      return { file, line: locateKeyLine(text, full), field: keyPathString(full), message: `unknown key "${k}"`, fix };
    });
  }
  const hint = hintFor(keyPath);
  let message = zi.message;
  let fix = hint ? `write ${hint}` : 'see examples/opscrew.config.yaml for the expected shape';
  if (zi.code === 'invalid_value' && 'values' in zi) {
    message = `must be one of ${zi.values.map(String).join(', ')}`;
    fix = `use one of: ${zi.values.map(String).join(', ')}`;
  } else if (zi.code === 'invalid_type') {
    const got = describeValue(valueAt(keyPath, text));
    const expected = hint?.startsWith('a duration') ? 'a duration' : (EXPECTED_WORDS[zi.expected] ?? zi.expected);
    message = `expected ${expected}${got ? `, got ${got}` : ''}`;
    if (zi.expected === 'object' && got === 'nothing') message = 'is empty';
  } else if (zi.code === 'invalid_key') {
    message = 'is not a valid name';
    fix = NAME_FIX;
  } else if (zi.code === 'invalid_format' || zi.code === 'custom') {
    message = zi.message;
  }
  return [{ file, line: locateKeyLine(text, keyPath), field: keyPathString(keyPath), message, fix }];
}

// Only for the "got ..." part of a message; re-parses the document once per bad key.
function valueAt(keyPath: PropertyKey[], text: string): unknown {
  if (!text) return undefined;
  const doc = parseYamlDocument(text, '');
  if (!doc.ok) return undefined;
  let cur: unknown = doc.data;
  for (const k of keyPath) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[k as string];
  }
  return cur;
}

const EXPECTED_WORDS: Record<string, string> = {
  object: 'a mapping (key: value)',
  array: 'a list',
  string: 'text',
  number: 'a number',
  boolean: 'true or false',
};

function describeValue(v: unknown): string {
  if (v === undefined || v === null) return 'nothing';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'string') return `the text "${v.length > 40 ? v.slice(0, 40) + '…' : v}"`;
  if (typeof v === 'object') return 'a mapping';
  return `${typeof v} ${String(v)}`;
}

/** Checks that span keys (zod sees one value at a time). */
function crossCheck(raw: RawConfig, file: string, text: string): Issue[] {
  const issues: Issue[] = [];
  const dc = raw.kubernetes.default_context;
  if (dc !== undefined && !(dc in raw.kubernetes.contexts)) {
    const keyPath = ['kubernetes', 'default_context'];
    issues.push({
      file,
      line: locateKeyLine(text, keyPath),
      field: keyPathString(keyPath),
      message: `context "${dc}" is not listed under kubernetes.contexts`,
      fix: `add \`${dc}: { namespaces: [...] }\` under kubernetes.contexts or name one of: ${Object.keys(raw.kubernetes.contexts).join(', ') || '(none configured)'}`,
    });
  }
  for (const [ctxName, c] of Object.entries(raw.kubernetes.contexts)) {
    if (c.namespaces.includes('*') && c.namespaces.length > 1) {
      const keyPath = ['kubernetes', 'contexts', ctxName, 'namespaces'];
      issues.push({
        file,
        line: locateKeyLine(text, keyPath),
        field: keyPathString(keyPath),
        message: '"*" already means every namespace; it cannot be mixed with names',
        fix: 'write either `["*"]` or a list of namespace names',
      });
    }
  }
  return issues;
}

function configFailure(issues: Issue[]): Result<Config> {
  const message = `invalid config:\n${issues.map((i) => '  ' + formatIssue(i)).join('\n')}`;
  return fail('config-invalid', message, { issues } satisfies ConfigFailureCause);
}

/** `~` and `~/x` → HOME; relative paths → against the workspace. */
export function expandPath(p: string, home: string, workspaceDir: string): string {
  let out = p;
  if (out === '~') out = home;
  else if (out.startsWith('~/')) out = path.join(home, out.slice(2));
  return path.resolve(workspaceDir, out);
}

function finish(raw: RawConfig, ctx: { file: string | null; workspaceDir: string; env: NodeJS.ProcessEnv }): Config {
  const home = ctx.env.HOME ?? process.env.HOME ?? '/';
  const ex = (p: string): string => expandPath(p, home, ctx.workspaceDir);
  const dur = (s: string): number => parseDuration(s) ?? 0; // validated above
  const kubeconfig = raw.kubernetes.kubeconfig !== undefined
    ? ex(raw.kubernetes.kubeconfig)
    : ctx.env.KUBECONFIG
      ? ctx.env.KUBECONFIG
      : path.join(home, '.kube', 'config');
  const dockerHost = raw.compose.docker_host ?? (ctx.env.DOCKER_HOST || undefined);
  const hosts: Config['ssh']['hosts'] = {};
  for (const [n, h] of Object.entries(raw.ssh.hosts)) {
    hosts[n] = {
      host: h.host.replace(/^\[(.*)\]$/, '$1'),
      port: h.port,
      user: h.user,
      ...(h.identity_file !== undefined ? { identity_file: ex(h.identity_file) } : {}),
      ...(h.known_hosts !== undefined ? { known_hosts: ex(h.known_hosts) } : {}),
    };
  }
  const projects: Config['compose']['projects'] = {};
  for (const [n, p] of Object.entries(raw.compose.projects)) projects[n] = { file: ex(p.file) };
  const contexts: Config['kubernetes']['contexts'] = {};
  for (const [n, c] of Object.entries(raw.kubernetes.contexts)) contexts[n] = { namespaces: [...c.namespaces] };
  return {
    mode: raw.mode,
    brain: raw.brain,
    concurrency: raw.concurrency,
    max_attempts: raw.max_attempts,
    output_cap: raw.output_cap,
    audit_excerpt: raw.audit_excerpt,
    timeouts: {
      command: dur(raw.timeouts.command),
      task: dur(raw.timeouts.task),
      approval: dur(raw.timeouts.approval),
      ...(raw.timeouts.lease !== undefined ? { lease: dur(raw.timeouts.lease) } : {}),
      ...(raw.timeouts.grace !== undefined ? { grace: dur(raw.timeouts.grace) } : {}),
    },
    kubernetes: {
      kubeconfig,
      ...(raw.kubernetes.default_context !== undefined ? { default_context: raw.kubernetes.default_context } : {}),
      contexts,
    },
    compose: { ...(dockerHost !== undefined ? { docker_host: dockerHost } : {}), projects },
    ssh: { hosts },
    vault: {
      address_env: raw.vault.address_env,
      token_env: raw.vault.token_env,
      paths: raw.vault.paths.map((p) => p.replace(/\/+$/, '')),
    },
    files: { roots: raw.files.roots.map((r) => ex(r)) },
    http: { allow: [...raw.http.allow] },
    source: { file: ctx.file, workspaceDir: ctx.workspaceDir },
  };
}

/** The defaults a workspace without a config file gets. */
export function defaultConfig(workspaceDir: string, env: NodeJS.ProcessEnv = process.env): Config {
  const r = parseConfig(undefined, { file: null, workspaceDir: path.resolve(workspaceDir), env });
  if (!r.ok) throw new Error(`the built-in defaults are invalid: ${r.message}`);
  return r.value;
}

/**
 * What the tools need from the config. The Vault address and token come from the environment
 * variables the config names — never from the config file and never from a call.
 */
export function toToolEnv(config: Config, env: NodeJS.ProcessEnv = process.env): ToolEnv {
  const hosts: NonNullable<ToolEnv['ssh']>['hosts'] = {};
  for (const [n, h] of Object.entries(config.ssh.hosts)) {
    hosts[n] = {
      host: h.host,
      port: h.port,
      user: h.user,
      ...(h.identity_file !== undefined ? { identityFile: h.identity_file } : {}),
      ...(h.known_hosts !== undefined ? { knownHosts: h.known_hosts } : {}),
    };
  }
  const address = env[config.vault.address_env];
  const token = env[config.vault.token_env];
  const baseEnv: Record<string, string> = {};
  // The ssh agent socket is how keys without an identity_file are offered.
  if (env.SSH_AUTH_SOCK) baseEnv.SSH_AUTH_SOCK = env.SSH_AUTH_SOCK;
  return {
    kubernetes: {
      kubeconfig: config.kubernetes.kubeconfig,
      contexts: Object.fromEntries(Object.entries(config.kubernetes.contexts).map(([n, c]) => [n, { namespaces: [...c.namespaces] }])),
      ...(config.kubernetes.default_context !== undefined ? { defaultContext: config.kubernetes.default_context } : {}),
    },
    compose: {
      ...(config.compose.docker_host !== undefined ? { dockerHost: config.compose.docker_host } : {}),
      projects: Object.fromEntries(Object.entries(config.compose.projects).map(([n, p]) => [n, { file: p.file }])),
    },
    ssh: { hosts },
    vault: {
      ...(address ? { address } : {}),
      ...(token ? { token } : {}),
      paths: [...config.vault.paths],
    },
    files: { roots: [...config.files.roots] },
    http: { allow: [...config.http.allow] },
    baseEnv,
  };
}
