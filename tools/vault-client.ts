// The vault tool: `vault kv …` spoken directly to the KV v2 HTTP API (no vault binary).
// The address and token come only from ToolEnv (config/environment), never from the call.
// Every secret value read comes back as a handle registered with the broker; values written
// (put/patch) are revealed from handles or `{{generate:KIND}}` at send time only. Output
// imitates the vault CLI (tables, -field, -format=json) so runbook checks read the same.
import * as http from 'node:http';
import * as https from 'node:https';
import type { ExecOutcome, ToolCall, ToolContext } from './types.js';

/** Largest Vault response read; KV answers are small, anything bigger is a broken server. */
const MAX_RESPONSE_BYTES = 8 * 1024 * 1024;

export type VaultOp =
  | 'kv get'
  | 'kv put'
  | 'kv patch'
  | 'kv list'
  | 'kv metadata get'
  | 'kv delete'
  | 'kv undelete'
  | 'kv destroy'
  | 'kv metadata delete';

const OPS: readonly VaultOp[] = [
  'kv get',
  'kv put',
  'kv patch',
  'kv list',
  'kv metadata get',
  'kv delete',
  'kv undelete',
  'kv destroy',
  'kv metadata delete',
];

/** Flags each op accepts (all take a value, `-name=value` or `-name value`). */
const OP_FLAGS: Record<VaultOp, readonly string[]> = {
  'kv get': ['field', 'format', 'mount', 'version'],
  'kv put': ['field', 'format', 'mount', 'cas'],
  'kv patch': ['field', 'format', 'mount', 'cas', 'method'],
  'kv list': ['format', 'mount'],
  'kv metadata get': ['field', 'format', 'mount'],
  'kv delete': ['mount', 'versions'],
  'kv undelete': ['mount', 'versions'],
  'kv destroy': ['mount', 'versions'],
  'kv metadata delete': ['mount'],
};

/** Flags that would redirect the target or credentials: never from a call. */
const REDIRECTING = new Set(['address', 'token', 'namespace', 'ns', 'ca-cert', 'ca-path', 'client-cert', 'client-key', 'tls-skip-verify', 'tls-server-name', 'agent-address', 'wrap-ttl', 'output-curl-string', 'output-policy', 'header', 'policy-override', 'unlock-key', 'mfa']);

export interface VaultArgs {
  op: VaultOp;
  mount: string;
  /** Path inside the mount, no leading/trailing slashes. */
  path: string;
  flags: Record<string, string>;
  /** put/patch KEY=VALUE pairs (values still holding handles). */
  pairs: Array<[string, string]>;
}

type Parsed = { ok: true; value: VaultArgs } | { ok: false; code: string; message: string };

function normalizeOp(verb: string): VaultOp | undefined {
  const v = verb.trim().replace(/\s+/g, ' ').replace(/^vault /, '');
  const withKv = v.startsWith('kv ') ? v : `kv ${v}`;
  return OPS.find((o) => o === withKv);
}

/** Reads the arguments after `vault kv VERB` (a leading copy of the verb words is tolerated). */
export function parseVaultArgs(verb: string, args: readonly string[], scopePath?: string): Parsed {
  const bad = (message: string): Parsed => ({ ok: false, code: 'vault-bad-args', message });
  const op = normalizeOp(verb);
  if (!op) return bad(`unsupported vault verb ${JSON.stringify(verb)}: supported are ${OPS.join(', ')}`);
  let rest = [...args];
  if (rest[0] === 'vault') rest = rest.slice(1);
  const verbWords = op.split(' ');
  if (verbWords.every((w, i) => rest[i] === w)) rest = rest.slice(verbWords.length);
  else if (rest[0] !== 'kv' && verbWords.slice(1).every((w, i) => rest[i] === w)) rest = rest.slice(verbWords.length - 1);

  const flags: Record<string, string> = {};
  const positionals: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i] as string;
    if (a.startsWith('-') && a.length > 1 && positionals.length === 0) {
      const body = a.replace(/^--?/, '');
      const eq = body.indexOf('=');
      const name = eq >= 0 ? body.slice(0, eq) : body;
      if (REDIRECTING.has(name)) {
        return { ok: false, code: 'vault-flag-refused', message: `-${name} is refused: the Vault address and token come only from the config/environment` };
      }
      if (!OP_FLAGS[op].includes(name)) return bad(`unsupported flag -${name} for vault ${op}`);
      let value: string;
      if (eq >= 0) value = body.slice(eq + 1);
      else {
        if (i + 1 >= rest.length) return bad(`-${name} needs a value`);
        value = rest[++i] as string;
      }
      flags[name] = value;
      continue;
    }
    positionals.push(a);
  }
  const rawPath = positionals[0] ?? scopePath;
  if (!rawPath) return bad(`vault ${op} needs a path`);
  const clean = rawPath.replace(/^\/+|\/+$/g, '');
  let mount: string;
  let path: string;
  if (flags.mount !== undefined) {
    mount = flags.mount.replace(/^\/+|\/+$/g, '');
    path = clean;
  } else {
    const slash = clean.indexOf('/');
    mount = slash >= 0 ? clean.slice(0, slash) : clean;
    path = slash >= 0 ? clean.slice(slash + 1) : '';
  }
  if (!mount || /(^|\/)\.\.?(\/|$)/.test(`${mount}/${path}`)) return bad(`bad vault path ${JSON.stringify(rawPath)}`);
  if (path === '' && op !== 'kv list') return bad(`vault ${op} needs a secret path under the mount, got ${JSON.stringify(rawPath)}`);

  const pairs: Array<[string, string]> = [];
  const extra = positionals.slice(1);
  if (op === 'kv put' || op === 'kv patch') {
    if (extra.length === 0) return bad('Must supply data');
    for (const p of extra) {
      const eq = p.indexOf('=');
      if (eq <= 0) return bad(`expected KEY=VALUE, got ${JSON.stringify(p)}`);
      const value = p.slice(eq + 1);
      if (value === '-' || value.startsWith('@')) return bad(`${p}: reading values from files or stdin is not supported`);
      pairs.push([p.slice(0, eq), value]);
    }
  } else if (extra.length > 0) {
    return bad(`unexpected argument ${JSON.stringify(extra[0])} for vault ${op}`);
  }
  if (flags.format !== undefined && !['table', 'json'].includes(flags.format)) return bad(`-format=${flags.format}: supported are table, json`);
  if (flags.method !== undefined && flags.method !== 'patch') return bad('-method: only patch is supported');
  if ((op === 'kv destroy') && flags.versions === undefined) return bad('vault kv destroy needs -versions=N[,N...]');
  if (flags.versions !== undefined && !/^\d+(,\d+)*$/.test(flags.versions)) return bad(`-versions=${flags.versions}: expected N[,N...]`);
  for (const n of ['version', 'cas'] as const) {
    if (flags[n] !== undefined && !/^\d+$/.test(flags[n])) return bad(`-${n}=${flags[n]}: expected a number`);
  }
  return { ok: true, value: { op, mount, path, flags, pairs } };
}

/** True when MOUNT/PATH is one of the configured prefixes or below one (segment-wise). */
export function vaultPathInScope(full: string, prefixes: readonly string[]): boolean {
  const f = full.replace(/^\/+|\/+$/g, '');
  return prefixes.some((p) => {
    const q = p.replace(/^\/+|\/+$/g, '');
    return q !== '' && (f === q || f.startsWith(`${q}/`));
  });
}

// ---------------------------------------------------------------- CLI-like formatting

/** Vault's section titles: `==== Title ====` centred over the table below. */
function padEqualSigns(header: string, width: number): string {
  let n = width - (header.length + 2);
  if (n < 3) n = 3;
  if (n % 2 !== 0) n -= 1;
  return `${'='.repeat(n / 2)} ${header} ${'='.repeat(n / 2)}`;
}

function kvTable(rows: Array<[string, string]>, head: [string, string] = ['Key', 'Value']): string[] {
  const all: Array<[string, string]> = [head, ['-'.repeat(head[0].length), '-'.repeat(head[1].length)], ...rows];
  const w = Math.max(...all.map(([k]) => k.length));
  return all.map(([k, v]) => `${k.padEnd(w)}    ${v}`.trimEnd());
}

/** A titled block; the title width follows the CLI (path length, or longest key + 9 for tables). */
function section(title: string, lines: string[], keys?: string[]): string {
  const width = keys ? Math.max(0, ...keys.map((k) => k.length)) + 9 : Math.max(...lines.map((l) => l.length));
  return [padEqualSigns(title, width), ...lines].join('\n');
}

function tableSection(title: string, rows: Array<[string, string]>): string {
  return section(title, kvTable(rows), rows.map(([k]) => k));
}

function display(v: unknown): string {
  if (v === null || v === undefined) return '<nil>';
  if (typeof v === 'string') return v;
  if (typeof v === 'object') {
    if (Array.isArray(v)) return `[${v.map(display).join(' ')}]`;
    return `map[${Object.entries(v as Record<string, unknown>)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, x]) => `${k}:${display(x)}`)
      .join(' ')}]`;
  }
  return String(v);
}

function metaRows(meta: Record<string, unknown>): Array<[string, string]> {
  return Object.keys(meta)
    .sort()
    .map((k) => {
      const v = meta[k];
      if (k === 'deletion_time' && v === '') return [k, 'n/a'];
      return [k, display(v)];
    });
}

// ---------------------------------------------------------------- HTTP

interface VaultResponse {
  status: number;
  json: unknown;
  text: string;
}

class VaultTransportError {
  constructor(
    readonly message: string,
    readonly timedOut: boolean,
    readonly aborted: boolean,
  ) {}
}

function vaultRequest(
  address: string,
  token: string,
  method: string,
  apiPath: string,
  body: unknown,
  contentType: string,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<VaultResponse> {
  return new Promise((resolve, reject) => {
    let url: URL;
    try {
      url = new URL(`${address.replace(/\/+$/, '')}${apiPath}`);
    } catch {
      reject(new VaultTransportError(`bad Vault address ${JSON.stringify(address)}`, false, false));
      return;
    }
    const mod = url.protocol === 'https:' ? https : http;
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body), 'utf8');
    const headers: Record<string, string> = { 'X-Vault-Token': token, 'X-Vault-Request': 'true' };
    if (payload) {
      headers['Content-Type'] = contentType;
      headers['Content-Length'] = String(payload.length);
    }
    let done = false;
    const settle = (fn: () => void): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      fn();
    };
    const req = mod.request(url, { method, headers, agent: false });
    const timer = setTimeout(() => {
      settle(() => reject(new VaultTransportError(`${method} "${url.href}": timed out after ${timeoutMs} ms`, true, false)));
      req.destroy();
    }, timeoutMs);
    const onAbort = (): void => {
      settle(() => reject(new VaultTransportError('aborted', false, true)));
      req.destroy();
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    req.on('error', (e: NodeJS.ErrnoException) =>
      settle(() => reject(new VaultTransportError(`${method} "${url.href}": ${e.code ?? ''} ${e.message}`.trim(), false, false))),
    );
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_RESPONSE_BYTES) {
          settle(() => reject(new VaultTransportError(`response larger than ${MAX_RESPONSE_BYTES} bytes`, false, false)));
          res.destroy();
          return;
        }
        chunks.push(c);
      });
      res.on('end', () =>
        settle(() => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown = undefined;
          try {
            json = text ? JSON.parse(text) : undefined;
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, json, text });
        }),
      );
      res.on('error', (e) => settle(() => reject(new VaultTransportError(e.message, false, false))));
    });
    if (payload) req.end(payload);
    else req.end();
  });
}

function apiErrors(r: VaultResponse): string[] {
  const errs = (r.json as { errors?: unknown } | undefined)?.errors;
  return Array.isArray(errs) ? errs.map(String) : r.text ? [r.text.slice(0, 500)] : [];
}

function apiErrorText(what: string, method: string, url: string, r: VaultResponse): string {
  const errs = apiErrors(r);
  return `${what}: Error making API request.\n\nURL: ${method} ${url}\nCode: ${r.status}. Errors:\n\n${errs.map((e) => `* ${e}`).join('\n')}\n`;
}

function encodePath(p: string): string {
  return p.split('/').filter(Boolean).map(encodeURIComponent).join('/');
}

/** The broker ref of a field: `vault:MOUNT/PATH#FIELD` (characters a handle cannot hold are %-escaped). */
export function vaultRef(mount: string, path: string, field: string, version?: string): string {
  const esc = (s: string) => s.replace(/[\s{}%]/g, (c) => encodeURIComponent(c));
  return `vault:${esc(mount)}/${esc(path)}#${esc(field)}${version ? `@v${version}` : ''}`;
}

// ---------------------------------------------------------------- the tool

/** Runs a parsed `vault kv …` call against the configured Vault. Never throws for expected outcomes. */
export async function runVaultCall(call: ToolCall, ctx: ToolContext): Promise<ExecOutcome> {
  const started = Date.now();
  const outcome = (exitCode: number | null, stdout: string, stderr: string, extra: Partial<ExecOutcome> = {}): ExecOutcome => {
    const out = ctx.secrets.scrub(stdout);
    const err = ctx.secrets.scrub(stderr);
    return {
      exitCode,
      stdout: out.slice(0, ctx.outputCap),
      stderr: err.slice(0, ctx.outputCap),
      durationMs: Date.now() - started,
      timedOut: false,
      truncated: out.length > ctx.outputCap || err.length > ctx.outputCap,
      ...extra,
    };
  };
  const refuse = (code: string, message: string): ExecOutcome =>
    outcome(null, '', `refused: ${message}\n`, { refused: { code, message: ctx.secrets.scrub(message) } });

  const parsed = parseVaultArgs(call.verb, call.args, call.scope.vaultPath);
  if (!parsed.ok) return refuse(parsed.code, parsed.message);
  const { op, mount, path, flags, pairs } = parsed.value;
  const cfg = ctx.env.vault;
  if (!cfg?.address || !cfg.token) {
    return refuse('vault-not-configured', 'no Vault address/token configured (vault.address_env / vault.token_env)');
  }
  const full = path ? `${mount}/${path}` : mount;
  if (!vaultPathInScope(full, cfg.paths)) {
    return refuse('vault-path-out-of-scope', `${full} is outside the configured Vault paths (${cfg.paths.join(', ') || 'none'})`);
  }

  const address = cfg.address;
  const token = cfg.token;
  const p = encodePath(path);
  const json = flags.format === 'json';
  const call_ = async (method: string, api: string, body?: unknown, ct = 'application/json'): Promise<VaultResponse> =>
    vaultRequest(address, token, method, api, body, ct, ctx.timeoutMs, ctx.signal);
  const urlOf = (api: string) => `${address.replace(/\/+$/, '')}${api}`;

  try {
    switch (op) {
      case 'kv get': {
        const api = `/v1/${mount}/data/${p}${flags.version ? `?version=${flags.version}` : ''}`;
        const r = await call_('GET', api);
        if (r.status === 404) return outcome(2, '', `No value found at ${mount}/data/${path}\n`);
        if (r.status !== 200) return outcome(2, '', apiErrorText(`Error reading ${mount}/data/${path}`, 'GET', urlOf(api), r));
        const env = r.json as { data?: { data?: Record<string, unknown> | null; metadata?: Record<string, unknown> } } & Record<string, unknown>;
        const data = env.data?.data ?? {};
        const meta = env.data?.metadata ?? {};
        // Values become handles here, before anything is formatted.
        const handles: Record<string, string> = {};
        for (const k of Object.keys(data).sort()) {
          const v = data[k];
          handles[k] = ctx.secrets.register(vaultRef(mount, path, k, flags.version), typeof v === 'string' ? v : JSON.stringify(v));
        }
        if (flags.field !== undefined) {
          const h = handles[flags.field];
          if (h === undefined) return outcome(1, '', `Field "${flags.field}" not present in secret\n`);
          return outcome(0, json ? `${JSON.stringify(h)}\n` : h, '');
        }
        if (json) {
          const shown = {
            request_id: env.request_id ?? '',
            lease_id: env.lease_id ?? '',
            lease_duration: env.lease_duration ?? 0,
            renewable: env.renewable ?? false,
            data: { data: handles, metadata: meta },
            warnings: env.warnings ?? null,
          };
          return outcome(0, `${JSON.stringify(shown, null, 2)}\n`, '');
        }
        const blocks = [
          section('Secret Path', [`${mount}/data/${path}`]),
          tableSection('Metadata', metaRows(meta)),
          tableSection('Data', Object.entries(handles)),
        ];
        return outcome(0, `${blocks.join('\n\n')}\n`, '');
      }

      case 'kv put':
      case 'kv patch': {
        const data: Record<string, string> = {};
        try {
          for (const [k, v] of pairs) data[k] = ctx.secrets.reveal(v);
        } catch (e) {
          const code = e && typeof e === 'object' && 'code' in e ? String((e as { code: unknown }).code) : 'secret-reveal-failed';
          return refuse(code, e instanceof Error ? e.message : String(e));
        }
        const api = `/v1/${mount}/data/${p}`;
        const body: Record<string, unknown> = { data, options: flags.cas !== undefined ? { cas: Number(flags.cas) } : {} };
        const method = op === 'kv put' ? 'POST' : 'PATCH';
        const r = await call_(method, api, body, op === 'kv put' ? 'application/json' : 'application/merge-patch+json');
        if (r.status === 404 && op === 'kv patch') return outcome(2, '', `No value found at ${mount}/data/${path}\n`);
        if (r.status !== 200 && r.status !== 204) {
          return outcome(2, '', apiErrorText(`Error writing data to ${mount}/data/${path}`, method, urlOf(api), r));
        }
        const env = (r.json ?? {}) as { data?: Record<string, unknown> } & Record<string, unknown>;
        const meta = env.data ?? {};
        if (flags.field !== undefined) {
          if (!(flags.field in meta)) return outcome(1, '', `Field "${flags.field}" not present in secret\n`);
          return outcome(0, json ? `${JSON.stringify(meta[flags.field])}\n` : display(meta[flags.field]), '');
        }
        if (json) return outcome(0, `${JSON.stringify({ request_id: env.request_id ?? '', data: meta, warnings: env.warnings ?? null }, null, 2)}\n`, '');
        return outcome(0, `${[section('Secret Path', [`${mount}/data/${path}`]), tableSection('Metadata', metaRows(meta))].join('\n\n')}\n`, '');
      }

      case 'kv list': {
        const api = `/v1/${mount}/metadata/${p}${p ? '/' : ''}?list=true`;
        const r = await call_('GET', api);
        if (r.status === 404) return outcome(2, '', `No value found at ${mount}/metadata/${path}${path ? '/' : ''}\n`);
        if (r.status !== 200) return outcome(2, '', apiErrorText(`Error listing ${mount}/metadata/${path}`, 'LIST', urlOf(api), r));
        const keys = ((r.json as { data?: { keys?: unknown } }).data?.keys ?? []) as unknown[];
        if (json) return outcome(0, `${JSON.stringify(keys.map(String), null, 2)}\n`, '');
        return outcome(0, `Keys\n----\n${keys.map((k) => `${String(k)}\n`).join('')}`, '');
      }

      case 'kv metadata get': {
        const api = `/v1/${mount}/metadata/${p}`;
        const r = await call_('GET', api);
        if (r.status === 404) return outcome(2, '', `No value found at ${mount}/metadata/${path}\n`);
        if (r.status !== 200) return outcome(2, '', apiErrorText(`Error reading ${mount}/metadata/${path}`, 'GET', urlOf(api), r));
        const env = r.json as { data?: Record<string, unknown> } & Record<string, unknown>;
        const meta = { ...(env.data ?? {}) };
        const versions = (meta.versions ?? {}) as Record<string, Record<string, unknown>>;
        delete meta.versions;
        if (flags.field !== undefined) {
          if (!(flags.field in meta)) return outcome(1, '', `Field "${flags.field}" not present in secret\n`);
          return outcome(0, json ? `${JSON.stringify(meta[flags.field])}\n` : display(meta[flags.field]), '');
        }
        if (json) return outcome(0, `${JSON.stringify({ request_id: env.request_id ?? '', data: { ...meta, versions }, warnings: env.warnings ?? null }, null, 2)}\n`, '');
        const blocks = [section('Metadata Path', [`${mount}/metadata/${path}`]), tableSection('Metadata', metaRows(meta))];
        for (const n of Object.keys(versions).sort((a, b) => Number(a) - Number(b))) {
          blocks.push(tableSection(`Version ${n}`, metaRows(versions[n] ?? {})));
        }
        return outcome(0, `${blocks.join('\n\n')}\n`, '');
      }

      case 'kv delete':
      case 'kv undelete':
      case 'kv destroy': {
        const kind = op.slice(3);
        const versions = flags.versions?.split(',').map(Number);
        if (op === 'kv undelete' && !versions) return refuse('vault-bad-args', 'vault kv undelete needs -versions=N[,N...]');
        const api = versions ? `/v1/${mount}/${kind}/${p}` : `/v1/${mount}/data/${p}`;
        const method = versions ? 'POST' : 'DELETE';
        const r = await call_(method, api, versions ? { versions } : undefined);
        if (r.status !== 200 && r.status !== 204) {
          return outcome(2, '', apiErrorText(`Error ${kind === 'delete' ? 'deleting' : 'writing'} ${mount}/${versions ? kind : 'data'}/${path}`, method, urlOf(api), r));
        }
        const msg = method === 'DELETE' || kind === 'delete'
          ? `Success! Data deleted (if it existed) at: ${mount}/${versions ? kind : 'data'}/${path}\n`
          : `Success! Data written to: ${mount}/${kind}/${path}\n`;
        return outcome(0, msg, '');
      }

      case 'kv metadata delete': {
        const api = `/v1/${mount}/metadata/${p}`;
        const r = await call_('DELETE', api);
        if (r.status !== 200 && r.status !== 204) {
          return outcome(2, '', apiErrorText(`Error deleting ${mount}/metadata/${path}`, 'DELETE', urlOf(api), r));
        }
        return outcome(0, `Success! Data deleted (if it existed) at: ${mount}/metadata/${path}\n`, '');
      }
    }
  } catch (e) {
    if (e instanceof VaultTransportError) {
      if (e.aborted) return outcome(null, '', 'aborted\n');
      return outcome(e.timedOut ? null : 2, '', `Error: ${e.message}\n`, { timedOut: e.timedOut });
    }
    throw e;
  }
}
