// vault: `vault kv ...` lines, executed against the KV v2 HTTP API by the vault executor
// (which reuses parseVaultArgs). The address and token come only from the config/env.

import { fail, type Result } from '../result.js';
import type { Word } from '../tokenize.js';
import type { OpClass, ToolCall } from '../types.js';
import { list, makeCall, named, ok, refused, unparseable, type ParseContext, type ParseResult } from './common.js';

export const VAULT_CLASSES: Readonly<Record<string, OpClass>> = {
  'kv get': 'sensitive-read',
  'kv list': 'read',
  'kv metadata get': 'read',
  'kv put': 'mutate',
  'kv patch': 'mutate',
  'kv undelete': 'mutate',
  'kv delete': 'destructive',
  'kv destroy': 'destructive',
  'kv metadata delete': 'destructive',
};

export const GENERATE_KINDS = ['hex32', 'hex16', 'base64-32', 'alnum24'] as const;

/** Flags each operation accepts (Go-style: `-name=value`, `-name value`, `--name=value`). */
const OP_FLAGS: Readonly<Record<string, readonly string[]>> = {
  'kv get': ['mount', 'field', 'format', 'version'],
  'kv list': ['mount', 'format'],
  'kv metadata get': ['mount', 'format'],
  'kv put': ['mount', 'format', 'cas'],
  'kv patch': ['mount', 'format', 'cas', 'method'],
  'kv undelete': ['mount', 'format', 'versions'],
  'kv delete': ['mount', 'format', 'versions'],
  'kv destroy': ['mount', 'format', 'versions'],
  'kv metadata delete': ['mount', 'format'],
};

const REFUSED_FLAGS: Readonly<Record<string, string>> = {
  address: 'redirects the Vault server; it comes from the config',
  'agent-address': 'redirects the Vault server; it comes from the config',
  token: 'passes a credential; the token comes from the environment',
  namespace: 'redirects the Vault namespace; it comes from the config',
  ns: 'redirects the Vault namespace; it comes from the config',
  'ca-cert': 'redirects trust', 'ca-path': 'redirects trust', 'client-cert': 'redirects credentials',
  'client-key': 'redirects credentials', 'tls-skip-verify': 'turns off server verification',
  'tls-server-name': 'redirects server verification', header: 'adds request headers', 'wrap-ttl': 'wraps responses; not vetted',
  'output-curl-string': 'prints the token', 'output-policy': 'not vetted', mfa: 'not vetted', 'policy-override': 'not vetted',
};

const FORMATS = new Set(['json', 'table', 'yaml']);
const SEGMENT = /^[A-Za-z0-9_.@:+=-]+$/;
const KEY = /^[A-Za-z0-9_.-]+$/;
const HANDLE = /\{\{([^{}]*)\}\}/g;
const VALID_HANDLE = new RegExp(`^(?:generate:(?:${GENERATE_KINDS.join('|')})|secret:vault:[A-Za-z0-9_.@:+=/-]+#[A-Za-z0-9_.-]+)$`);

export interface VaultRequest {
  /** `kv get`, `kv put`, `kv metadata delete`... */
  op: string;
  /** The KV v2 mount (`kv`), from -mount= or the path's first segment. */
  mount: string;
  /** The path inside the mount (`deploy/app`). */
  path: string;
  /** mount/path — what scopes check. */
  vaultPath: string;
  field?: string;
  format?: string;
  version?: number;
  versions?: number[];
  cas?: number;
  method?: string;
  /** put/patch pairs; values may hold `{{generate:KIND}}` / `{{secret:vault:PATH#FIELD}}` handles. */
  pairs: Array<[string, string]>;
}

type R<T> = Result<T, 'unparseable' | 'refused'>;

/** Reads the words after `vault` (`kv get -mount=kv deploy`). */
export function parseVaultWords(words: readonly Word[]): R<VaultRequest> {
  const kv = words[0];
  if (kv === undefined) return fail('unparseable', 'vault: only `vault kv get|list|put|patch|delete|destroy|undelete|metadata get|metadata delete` is vetted');
  if (kv.text.startsWith('-')) {
    const name = kv.text.replace(/^--?/, '').split('=')[0]!;
    return fail('refused', `vault: ${named(kv)} is refused${REFUSED_FLAGS[name] ? `: ${REFUSED_FLAGS[name]}` : ''}`);
  }
  if (kv.text !== 'kv') return fail('unparseable', `vault: ${named(kv)} is not vetted; only \`vault kv ...\` is`);
  const sub = words[1];
  if (sub === undefined) return fail('unparseable', `vault kv: no operation; vetted: ${list(Object.keys(VAULT_CLASSES).map((o) => o.slice(3)))}`);
  let op = `kv ${sub.text}`;
  let k = 2;
  if (sub.text === 'metadata') {
    const sub2 = words[2];
    op = `kv metadata ${sub2?.text ?? ''}`;
    k = 3;
  }
  if (!(op in VAULT_CLASSES)) {
    const bad = sub.text === 'metadata' ? words[2] : sub;
    return fail('unparseable', `vault: unknown or unvetted operation ${named(bad)}; vetted: ${list(Object.keys(VAULT_CLASSES).map((o) => `vault ${o}`))}`);
  }
  const allowed = OP_FLAGS[op] ?? [];
  const req: VaultRequest = { op, mount: '', path: '', vaultPath: '', pairs: [] };
  let mount: string | undefined;
  const positionals: Word[] = [];
  for (let i = k; i < words.length; i++) {
    const w = words[i]!;
    const text = w.text;
    if (text.startsWith('-') && text.length > 1) {
      if (positionals.length > 0) return fail('refused', `vault: flag ${named(w)} after the path; flags must come before it`);
      const body = text.replace(/^--?/, '');
      const eq = body.indexOf('=');
      const name = eq === -1 ? body : body.slice(0, eq);
      const why = REFUSED_FLAGS[name];
      if (why !== undefined) return fail('refused', `vault: ${named(w)} is refused: ${why}`);
      if (!allowed.includes(name)) return fail('refused', `vault ${op.slice(3)}: unknown flag ${named(w)}; vetted: ${allowed.map((f) => `-${f}=`).join(' ')}`);
      let value: string;
      if (eq !== -1) value = body.slice(eq + 1);
      else {
        const next = words[i + 1];
        if (next === undefined) return fail('refused', `vault: ${named(w)} needs a value`);
        value = next.text;
        i++;
      }
      switch (name) {
        case 'mount':
          if (!SEGMENT.test(value)) return fail('refused', `vault: ${named(w)}: \`${value}\` is not a mount name`);
          mount = value;
          break;
        case 'field':
          if (!KEY.test(value)) return fail('refused', `vault: ${named(w)}: \`${value}\` is not a field name`);
          req.field = value;
          break;
        case 'format':
          if (!FORMATS.has(value)) return fail('refused', `vault: ${named(w)}: format must be json, table or yaml`);
          req.format = value;
          break;
        case 'version':
        case 'cas':
          if (!/^\d{1,9}$/.test(value)) return fail('refused', `vault: ${named(w)}: \`${value}\` is not a number`);
          req[name] = Number(value);
          break;
        case 'versions':
          if (!/^\d{1,9}(?:,\d{1,9})*$/.test(value)) return fail('refused', `vault: ${named(w)}: \`${value}\` is not a list of versions`);
          req.versions = value.split(',').map(Number);
          break;
        case 'method':
          if (value !== 'patch' && value !== 'rw') return fail('refused', `vault: ${named(w)}: method must be patch or rw`);
          req.method = value;
          break;
      }
      continue;
    }
    positionals.push(w);
  }
  const [pathWord, ...pairs] = positionals;
  if (pathWord === undefined) return fail('unparseable', `vault ${op.slice(3)}: needs a path (mount/...)`);
  const segments = pathWord.text.replace(/\/+$/, '').split('/');
  if (pathWord.text.startsWith('/') || segments.some((s) => s === '' || s === '.' || s === '..' || !SEGMENT.test(s)))
    return fail('refused', `vault: ${named(pathWord)} is not a KV path (mount/name, no empty, . or .. segments)`);
  if (mount === undefined) {
    if (segments.length < 2 && op !== 'kv list') return fail('refused', `vault: ${named(pathWord)} must start with its mount (e.g. kv/${pathWord.text}) or use -mount=`);
    mount = segments[0]!;
    req.path = segments.slice(1).join('/');
  } else req.path = segments.join('/');
  req.mount = mount;
  req.vaultPath = req.path === '' ? mount : `${mount}/${req.path}`;
  if (op !== 'kv list' && req.path === '') return fail('refused', `vault: ${named(pathWord)} names only a mount`);

  const writes = op === 'kv put' || op === 'kv patch';
  if (!writes && pairs.length > 0) return fail('refused', `vault ${op.slice(3)}: unexpected argument ${named(pairs[0])}`);
  if (writes && pairs.length === 0) return fail('unparseable', `vault ${op.slice(3)}: needs KEY=VALUE pairs`);
  for (const p of pairs) {
    const eq = p.text.indexOf('=');
    if (p.text === '-') return fail('refused', `vault: ${named(p)} reads stdin; pass KEY=VALUE pairs`);
    if (eq <= 0) return fail('refused', `vault: ${named(p)} is not KEY=VALUE`);
    const key = p.text.slice(0, eq);
    const value = p.text.slice(eq + 1);
    if (!KEY.test(key)) return fail('refused', `vault: ${named(p)}: \`${key}\` is not a key name`);
    if (value === '-') return fail('refused', `vault: ${named(p)}: \`${key}=-\` reads stdin; give the value or a {{generate:KIND}} handle`);
    if (value.startsWith('@')) return fail('refused', `vault: ${named(p)}: \`${key}=@file\` reads a local file; give the value or a handle`);
    const bad = badHandle(value);
    if (bad !== undefined) return fail('refused', `vault: ${named(p)}: \`${bad}\` is not a handle (use {{generate:${GENERATE_KINDS.join('|')}}} or {{secret:vault:PATH#FIELD}})`);
    req.pairs.push([key, value]);
  }
  return { ok: true, value: req };
}

/** The first malformed `{{...}}` in a value, if any. */
function badHandle(value: string): string | undefined {
  for (const m of value.matchAll(HANDLE)) {
    if (!VALID_HANDLE.test(m[1]!)) return m[0];
  }
  const stripped = value.replace(HANDLE, '');
  if (stripped.includes('{{') || stripped.includes('}}')) return value.length > 60 ? `${value.slice(0, 60)}…` : value;
  return undefined;
}

/** Re-reads the args of a vault ToolCall (as the executor needs them). */
export function parseVaultArgs(args: readonly string[]): R<VaultRequest> {
  return parseVaultWords(args.map((text, i) => ({ text, col: i + 1, quoted: false })));
}

export function parseVault(words: readonly Word[], _ctx: ParseContext): ParseResult<ToolCall> {
  if (words[0]?.text !== 'vault') return unparseable('vault: lines start with `vault kv`');
  const r = parseVaultWords(words.slice(1));
  if (!r.ok) return r;
  const req = r.value;
  const cls = VAULT_CLASSES[req.op];
  if (cls === undefined) return refused(`vault: ${req.op} is not vetted`);
  // Canonical args: the operation, flags in `-name=value` form, then mount/path (the mount is its
  // first segment, which is how parseVaultWords reads it back), then the pairs.
  const args = req.op.split(' ');
  if (req.field !== undefined) args.push(`-field=${req.field}`);
  if (req.format !== undefined) args.push(`-format=${req.format}`);
  if (req.version !== undefined) args.push(`-version=${req.version}`);
  if (req.versions !== undefined) args.push(`-versions=${req.versions.join(',')}`);
  if (req.cas !== undefined) args.push(`-cas=${req.cas}`);
  if (req.method !== undefined) args.push(`-method=${req.method}`);
  args.push(req.vaultPath, ...req.pairs.map(([k, v]) => `${k}=${v}`));
  return ok(makeCall({ tool: 'vault', verb: req.op, program: ['vault'], args, class: cls, scope: { vaultPath: req.vaultPath } }));
}
