// TEST DOUBLE of HashiCorp Vault's KV secrets engine v2 HTTP API (no Vault build is
// installable on these machines). Response shapes follow Vault's documentation
// (https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2): the `data`/`metadata`
// envelopes, versions, soft delete and destroy, `{"errors":[]}` on 404, 403
// `permission denied` for a bad token, LIST (method or `?list=true`).
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, Server, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';

interface Version {
  data: Record<string, unknown>;
  created_time: string;
  deletion_time: string;
  destroyed: boolean;
}

interface Secret {
  versions: Map<number, Version>;
  current_version: number;
  oldest_version: number;
  created_time: string;
  updated_time: string;
  max_versions: number;
  cas_required: boolean;
  custom_metadata: Record<string, string> | null;
}

export interface VaultRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface VaultDouble {
  /** `http://127.0.0.1:PORT` */
  address: string;
  token: string;
  requests: VaultRequest[];
  /** Seeds a new version at MOUNT/PATH (as a put would). */
  seed(mount: string, path: string, data: Record<string, unknown>): void;
  /** The current version's data, or undefined. */
  current(mount: string, path: string): { version: number; data: Record<string, unknown> } | undefined;
  close(): Promise<void>;
}

export interface VaultDoubleOptions {
  token?: string;
  /** KV v2 mounts served (default ['kv', 'secret']). */
  mounts?: string[];
  now?: () => Date;
}

export async function startVaultDouble(opts: VaultDoubleOptions = {}): Promise<VaultDouble> {
  const token = opts.token ?? `hvs.double-${randomUUID()}`;
  const mounts = new Set(opts.mounts ?? ['kv', 'secret']);
  const now = opts.now ?? (() => new Date());
  const store = new Map<string, Secret>();
  const requests: VaultRequest[] = [];
  const key = (mount: string, path: string) => `${mount}/${path.replace(/^\/+|\/+$/g, '')}`;

  function write(mount: string, path: string, data: Record<string, unknown>): Version & { version: number } {
    const k = key(mount, path);
    const ts = now().toISOString();
    let s = store.get(k);
    if (!s) {
      s = {
        versions: new Map(),
        current_version: 0,
        oldest_version: 0,
        created_time: ts,
        updated_time: ts,
        max_versions: 0,
        cas_required: false,
        custom_metadata: null,
      };
      store.set(k, s);
    }
    const version = s.current_version + 1;
    const v: Version = { data, created_time: ts, deletion_time: '', destroyed: false };
    s.versions.set(version, v);
    s.current_version = version;
    if (s.oldest_version === 0) s.oldest_version = 1;
    s.updated_time = ts;
    return { ...v, version };
  }

  const envelope = (data: unknown) => ({
    request_id: randomUUID(),
    lease_id: '',
    renewable: false,
    lease_duration: 0,
    data,
    wrap_info: null,
    warnings: null,
    auth: null,
    mount_type: 'kv',
  });
  const versionMeta = (v: Version, version: number) => ({
    created_time: v.created_time,
    custom_metadata: null,
    deletion_time: v.deletion_time,
    destroyed: v.destroyed,
    version,
  });

  function send(res: ServerResponse, status: number, body?: unknown): void {
    if (body === undefined) {
      res.writeHead(status);
      res.end();
      return;
    }
    const text = JSON.stringify(body);
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  }

  function handle(req: IncomingMessage, res: ServerResponse, raw: string): void {
    let method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', 'http://vault.invalid');
    if (method === 'GET' && url.searchParams.get('list') === 'true') method = 'LIST';
    if (url.pathname === '/v1/sys/health') return send(res, 200, { initialized: true, sealed: false, standby: false });
    if (req.headers['x-vault-token'] !== token) return send(res, 403, { errors: ['permission denied'] });

    const m = /^\/v1\/([^/]+)\/(data|metadata|delete|undelete|destroy)(?:\/(.*))?$/.exec(url.pathname);
    if (!m || !mounts.has(m[1] as string)) {
      const route = url.pathname.replace(/^\/v1\//, '');
      return send(res, 404, { errors: [`no handler for route "${route}". route entry not found.`] });
    }
    const mount = m[1] as string;
    const kind = m[2] as string;
    const path = (m[3] ?? '').replace(/\/+$/, '');
    let body: Record<string, unknown> = {};
    if (raw.length > 0) {
      try {
        body = JSON.parse(raw) as Record<string, unknown>;
      } catch {
        return send(res, 400, { errors: ['error parsing JSON'] });
      }
    }
    const secret = store.get(key(mount, path));

    if (kind === 'data') {
      if (method === 'GET') {
        if (!secret) return send(res, 404, { errors: [] });
        const want = url.searchParams.has('version') && url.searchParams.get('version') !== '0'
          ? Number(url.searchParams.get('version'))
          : secret.current_version;
        const v = secret.versions.get(want);
        if (!v) return send(res, 404, { errors: [] });
        if (v.deletion_time !== '' || v.destroyed) {
          // Vault answers 404 with the metadata of a deleted/destroyed version and null data.
          return send(res, 404, envelope({ data: null, metadata: versionMeta(v, want) }));
        }
        return send(res, 200, envelope({ data: v.data, metadata: versionMeta(v, want) }));
      }
      if (method === 'POST' || method === 'PUT') {
        const data = body.data;
        if (!data || typeof data !== 'object' || Array.isArray(data)) return send(res, 400, { errors: ['no data provided'] });
        const cas = (body.options as { cas?: number } | undefined)?.cas;
        if (cas !== undefined && cas !== (secret?.current_version ?? 0)) {
          return send(res, 400, { errors: ['check-and-set parameter did not match the current version'] });
        }
        const v = write(mount, path, data as Record<string, unknown>);
        return send(res, 200, envelope(versionMeta(v, v.version)));
      }
      if (method === 'PATCH') {
        if (!String(req.headers['content-type'] ?? '').startsWith('application/merge-patch+json')) {
          return send(res, 415, { errors: ['Unsupported Media Type'] });
        }
        const cur = secret ? secret.versions.get(secret.current_version) : undefined;
        if (!secret || !cur || cur.deletion_time !== '' || cur.destroyed) return send(res, 404, { errors: [] });
        const patch = body.data;
        if (!patch || typeof patch !== 'object') return send(res, 400, { errors: ['no data provided'] });
        const merged: Record<string, unknown> = { ...cur.data };
        // JSON merge patch (RFC 7386) at the top level: null removes a key.
        for (const [k, val] of Object.entries(patch as Record<string, unknown>)) {
          if (val === null) delete merged[k];
          else merged[k] = val;
        }
        const v = write(mount, path, merged);
        return send(res, 200, envelope(versionMeta(v, v.version)));
      }
      if (method === 'DELETE') {
        const cur = secret?.versions.get(secret.current_version);
        if (cur && cur.deletion_time === '') cur.deletion_time = now().toISOString();
        return send(res, 204);
      }
    }

    if (kind === 'metadata') {
      if (method === 'LIST') {
        const prefix = path === '' ? '' : `${path}/`;
        const keys = new Set<string>();
        for (const k of store.keys()) {
          const rel = k.slice(mount.length + 1);
          if (!k.startsWith(`${mount}/`) || !rel.startsWith(prefix)) continue;
          const rest = rel.slice(prefix.length);
          const slash = rest.indexOf('/');
          keys.add(slash >= 0 ? rest.slice(0, slash + 1) : rest);
        }
        if (keys.size === 0) return send(res, 404, { errors: [] });
        return send(res, 200, envelope({ keys: [...keys].sort() }));
      }
      if (method === 'GET') {
        if (!secret) return send(res, 404, { errors: [] });
        const versions: Record<string, unknown> = {};
        for (const [n, v] of secret.versions) {
          versions[String(n)] = { created_time: v.created_time, deletion_time: v.deletion_time, destroyed: v.destroyed };
        }
        return send(
          res,
          200,
          envelope({
            cas_required: secret.cas_required,
            created_time: secret.created_time,
            current_version: secret.current_version,
            custom_metadata: secret.custom_metadata,
            delete_version_after: '0s',
            max_versions: secret.max_versions,
            oldest_version: secret.oldest_version,
            updated_time: secret.updated_time,
            versions,
          }),
        );
      }
      if (method === 'DELETE') {
        store.delete(key(mount, path));
        return send(res, 204);
      }
    }

    if (kind === 'delete' || kind === 'undelete' || kind === 'destroy') {
      if (method !== 'POST' && method !== 'PUT') return send(res, 405, { errors: [] });
      const list = body.versions;
      if (!Array.isArray(list) || list.length === 0) return send(res, 400, { errors: ['no version number provided'] });
      for (const n of list) {
        const v = secret?.versions.get(Number(n));
        if (!v) continue;
        if (kind === 'delete' && v.deletion_time === '') v.deletion_time = now().toISOString();
        if (kind === 'undelete') v.deletion_time = '';
        if (kind === 'destroy') {
          v.destroyed = true;
          v.data = {};
        }
      }
      return send(res, 204);
    }
    return send(res, 405, { errors: [] });
  }

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      requests.push({ method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers, body: raw });
      handle(req, res, raw);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    address: `http://127.0.0.1:${port}`,
    token,
    requests,
    seed: (mount, path, data) => {
      write(mount, path, data);
    },
    current: (mount, path) => {
      const s = store.get(key(mount, path));
      const v = s?.versions.get(s.current_version);
      return s && v ? { version: s.current_version, data: v.data } : undefined;
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
