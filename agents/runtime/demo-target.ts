// The demo's local target: a tiny app service on 127.0.0.1 (ephemeral port) whose state is a
// release manifest on disk, the way many apps serve what a deploy put in place. A "deploy" is
// swapping `current.json` for a file from `releases/` (the files tool can do that inside its
// roots); the service reads the manifest on every request, so the swap shows at once.
//
//   GET  /health    200 {"status":"healthy",...}, or 503 "degraded" when the release is broken
//   GET  /version   200 {"version":"1.1.0"}
//   POST /deploy    {"version":"X"}: the app's own deploy hook (copies releases/X.json in place)
//
// Every request is logged (bounded) so the demo can prove what reached the service and what
// the policy stopped before it got there.
import { copyFileSync, existsSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { z } from 'zod';

export interface DemoTargetOptions {
  /** Holds `current.json` and `releases/<version>.json`. */
  appDir: string;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0: an ephemeral port. */
  port?: number;
  now?: () => number;
  /** Requests kept in the log (oldest dropped). Default 1000. */
  maxLog?: number;
}

export interface DemoRequest {
  atMs: number;
  method: string;
  path: string;
  status: number;
}

export interface DemoTarget {
  /** `http://127.0.0.1:PORT` */
  url: string;
  port: number;
  /** A copy of the request log, oldest first. */
  requests(): DemoRequest[];
  /** The version `current.json` names now, or null when it is missing or broken. */
  currentVersion(): string | null;
  /** Stops listening and drops open connections. Idempotent. */
  close(): Promise<void>;
}

const releaseSchema = z.looseObject({
  version: z.string().regex(/^[0-9A-Za-z.+-]{1,40}$/),
  db_pool_size: z.number().int().min(0),
});
type Release = z.infer<typeof releaseSchema>;

const deployBodySchema = z.strictObject({ version: z.string().regex(/^[0-9A-Za-z.+-]{1,40}$/) });

/** Largest request body the deploy hook reads. */
const MAX_BODY = 16 * 1024;

function readRelease(file: string): { ok: true; release: Release } | { ok: false; error: string } {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    return { ok: false, error: `cannot read ${file}: ${e instanceof Error ? e.message : String(e)}` };
  }
  const r = releaseSchema.safeParse(raw);
  if (!r.success) return { ok: false, error: `${file} is not a release manifest: ${r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}` };
  return { ok: true, release: r.data };
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function readBody(req: IncomingMessage): Promise<string | null> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        resolve(null);
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', () => resolve(null));
  });
}

export async function startDemoTarget(opts: DemoTargetOptions): Promise<DemoTarget> {
  const now = opts.now ?? Date.now;
  const maxLog = opts.maxLog ?? 1000;
  const current = join(opts.appDir, 'current.json');
  const log: DemoRequest[] = [];

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<number> => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const method = req.method ?? 'GET';
    if (path === '/health' && (method === 'GET' || method === 'HEAD')) {
      const r = readRelease(current);
      if (!r.ok) return (send(res, 503, { status: 'down', error: r.error }), 503);
      const { version, db_pool_size } = r.release;
      // The release's config decides its health: an empty connection pool cannot serve.
      if (db_pool_size < 1) {
        send(res, 503, { status: 'degraded', version, checks: { database: `no connections: db_pool_size is ${db_pool_size}` } });
        return 503;
      }
      send(res, 200, { status: 'healthy', version, checks: { database: `ok (pool ${db_pool_size})` } });
      return 200;
    }
    if (path === '/version' && (method === 'GET' || method === 'HEAD')) {
      const r = readRelease(current);
      if (!r.ok) return (send(res, 503, { error: r.error }), 503);
      send(res, 200, { version: r.release.version });
      return 200;
    }
    if (path === '/deploy' && method === 'POST') {
      const text = await readBody(req);
      let parsed: unknown = null;
      try {
        parsed = text === null ? null : JSON.parse(text);
      } catch {
        parsed = null;
      }
      const b = deployBodySchema.safeParse(parsed);
      if (!b.success) return (send(res, 400, { error: 'send {"version":"X.Y.Z"} (at most 16 KiB)' }), 400);
      const src = join(opts.appDir, 'releases', `${b.data.version}.json`);
      if (!existsSync(src)) return (send(res, 404, { error: `no release ${b.data.version}` }), 404);
      copyFileSync(src, current);
      send(res, 200, { deployed: b.data.version });
      return 200;
    }
    if (path === '/health' || path === '/version' || path === '/deploy') return (send(res, 405, { error: `${method} not allowed on ${path}` }), 405);
    send(res, 404, { error: `no route ${path}` });
    return 404;
  };

  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const method = req.method ?? 'GET';
    handle(req, res).then(
      (status) => {
        log.push({ atMs: now(), method, path, status });
        if (log.length > maxLog) log.splice(0, log.length - maxLog);
      },
      (e: unknown) => {
        if (!res.headersSent) send(res, 500, { error: e instanceof Error ? e.message : String(e) });
        log.push({ atMs: now(), method, path, status: 500 });
      },
    );
  });
  // Bounded: a stuck client cannot hold the demo open.
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  server.keepAliveTimeout = 1_000;

  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  let closed: Promise<void> | null = null;
  return {
    url: `http://${host}:${port}`,
    port,
    requests: () => log.map((r) => ({ ...r })),
    currentVersion: () => {
      const r = readRelease(current);
      return r.ok ? r.release.version : null;
    },
    close: () => {
      closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closed;
    },
  };
}
