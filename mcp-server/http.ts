// Streamable HTTP on /mcp: one McpServer per session, created with that session's identity.
// Guards run before the SDK sees a request: Host/Origin (DNS rebinding), bearer token, body size,
// per-token rate. Binding anything but loopback needs an explicit allowRemote.
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { OpsError } from './core/errors.js';

export const MCP_PATH = '/mcp';
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

export interface HttpServerOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** Required to bind a non-loopback address; a warning is logged when used. */
  allowRemote?: boolean;
  /** Accept requests without a token (loopback only); every session is `noAuthAgent`. */
  noAuth?: boolean;
  noAuthAgent?: string;
  /** Maps a presented bearer token to its agent, or null when unknown/revoked. */
  authenticate: (token: string) => string | null;
  /** Builds the server for one session; called once per session with its agent. Null = unknown agent. */
  makeServer: (agent: string) => McpServer | null;
  maxBodyBytes?: number;
  /** Requests per window per token (or per remote address with --no-auth). */
  rateLimit?: { max: number; windowMs: number };
  /** Extra `host[:port]` values accepted in the Host header (the names remote clients use with allowRemote). */
  allowedHosts?: string[];
  /** Most concurrent sessions (503 beyond); idle sessions are closed after `sessionIdleMs`. */
  maxSessions?: number;
  sessionIdleMs?: number;
  /** Stderr by default; never stdout. */
  log?: (line: string) => void;
  now?: () => number;
}

export interface RunningHttpServer {
  url: string;
  host: string;
  port: number;
  sessions(): number;
  close(): Promise<void>;
}

interface Session {
  agent: string;
  lastSeen: number;
  transport: StreamableHTTPServerTransport;
  server: McpServer;
}

export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h);
}

/** Parses `HOST:PORT` / `[::1]:PORT` / `PORT`. */
export function parseListen(spec: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(spec) ?? /^()()(\d{1,5})$/.exec(spec);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port >= 0 && port <= 65535)) {
    throw new OpsError('mcp-listen-invalid', `--http "${spec}" is not HOST:PORT (e.g. 127.0.0.1:7077)`);
  }
  return { host: m[1] || m[2] || '127.0.0.1', port };
}

export async function startHttpServer(opts: HttpServerOptions): Promise<RunningHttpServer> {
  const log = opts.log ?? ((line: string) => process.stderr.write(line + '\n'));
  const now = opts.now ?? Date.now;
  const loopback = isLoopbackHost(opts.host);
  if (!loopback && !opts.allowRemote) {
    throw new OpsError('mcp-remote-refused', `refusing to bind ${opts.host}: it is not loopback. Use 127.0.0.1, or pass --allow-remote if you mean it`);
  }
  if (opts.noAuth && !loopback) {
    throw new OpsError('mcp-noauth-remote', '--no-auth is accepted on a loopback address only');
  }
  if (!loopback) log(`opscrew mcp: WARNING: listening on ${opts.host}, reachable from other machines; every request still needs a bearer token`);
  if (opts.noAuth) log(`opscrew mcp: WARNING: --no-auth: every local client is "${opts.noAuthAgent ?? 'observer'}" without a token`);

  const maxBody = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const rate = opts.rateLimit ?? { max: 600, windowMs: 60_000 };
  const buckets = new Map<string, { start: number; count: number }>();
  const sessions = new Map<string, Session>();
  let allowedHosts: Set<string> = new Set();
  const maxSessions = opts.maxSessions ?? 64;
  const idleMs = opts.sessionIdleMs ?? 30 * 60_000;

  const sweep = (t: number): void => {
    for (const [id, s] of sessions) {
      if (t - s.lastSeen > idleMs) {
        sessions.delete(id);
        void s.transport.close().catch(() => undefined);
      }
    }
    // Rate buckets of tokens not seen for a window are dead weight.
    for (const [k, b] of buckets) if (t - b.start >= rate.windowMs) buckets.delete(k);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname !== MCP_PATH) return sendJson(res, 404, 'not found: the MCP endpoint is /mcp');

    // DNS rebinding: a page on evil.example resolving to 127.0.0.1 sends Host: evil.example.
    const host = (req.headers.host ?? '').toLowerCase();
    if (!allowedHosts.has(host)) return sendJson(res, 403, `forbidden Host header "${host}"`);
    const origin = req.headers.origin;
    if (origin !== undefined && !isAllowedOrigin(origin, allowedHosts)) return sendJson(res, 403, `forbidden Origin "${origin}"`);

    let agent: string;
    let rateKey: string;
    const auth = req.headers.authorization;
    if (auth !== undefined || !opts.noAuth) {
      const m = /^Bearer\s+(\S+)$/i.exec(auth ?? '');
      const who = m ? opts.authenticate(m[1]!) : null;
      if (!who) {
        res.setHeader('WWW-Authenticate', 'Bearer realm="opscrew"');
        return sendJson(res, 401, 'unauthorized: send Authorization: Bearer <token> (create one with `opscrew tokens create --agent NAME`)');
      }
      agent = who;
      rateKey = `t:${m![1]!}`;
    } else {
      agent = opts.noAuthAgent ?? 'observer';
      rateKey = `a:${req.socket.remoteAddress ?? ''}`;
    }

    const t = now();
    const b = buckets.get(rateKey);
    if (!b || t - b.start >= rate.windowMs) buckets.set(rateKey, { start: t, count: 1 });
    else if (++b.count > rate.max) {
      res.setHeader('Retry-After', String(Math.ceil((b.start + rate.windowMs - t) / 1000)));
      return sendJson(res, 429, 'too many requests: slow down');
    }

    const sid = req.headers['mcp-session-id'];
    const sessionId = typeof sid === 'string' ? sid : undefined;
    let body: unknown;
    if (req.method === 'POST') {
      const read = await readBody(req, maxBody);
      if (read === 'too-large') return sendJson(res, 413, `request body larger than ${maxBody} bytes`);
      try {
        body = JSON.parse(read);
      } catch {
        return sendJson(res, 400, 'body is not JSON', -32700);
      }
    }

    if (sessionId !== undefined) {
      const s = sessions.get(sessionId);
      if (!s) return sendJson(res, 404, 'unknown or expired session: initialize again');
      // A session is bound to the identity that opened it; another token cannot ride on it.
      if (s.agent !== agent) return sendJson(res, 403, 'this session belongs to another agent');
      s.lastSeen = now();
      await s.transport.handleRequest(req, res, body);
      return;
    }
    if (req.method !== 'POST' || !isInitialize(body)) {
      return sendJson(res, 400, 'no Mcp-Session-Id: send an initialize request first');
    }
    sweep(now());
    if (sessions.size >= maxSessions) {
      res.setHeader('Retry-After', '60');
      return sendJson(res, 503, `too many open sessions (${maxSessions}): close one or retry later`);
    }
    const server = opts.makeServer(agent);
    if (!server) return sendJson(res, 403, `agent "${agent}" has no specialist profile: nothing to serve`);
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        sessions.set(id, { agent, lastSeen: now(), transport, server });
      },
      onsessionclosed: (id) => {
        sessions.delete(id);
      },
    });
    transport.onclose = () => {
      if (transport.sessionId) sessions.delete(transport.sessionId);
      void server.close().catch(() => undefined);
    };
    await server.connect(transport);
    await transport.handleRequest(req, res, body);
  };

  const http: HttpServer = createHttpServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      log(`opscrew mcp: request failed: ${e instanceof Error ? e.message : String(e)}`);
      if (!res.headersSent) sendJson(res, 500, 'internal error');
      else res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(opts.port, opts.host, () => {
      http.off('error', reject);
      resolve();
    });
  });
  const addr = http.address() as AddressInfo;
  const hostPart = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  allowedHosts = new Set([`${hostPart}:${addr.port}`]);
  if (isLoopbackHost(opts.host)) {
    allowedHosts.add(`localhost:${addr.port}`);
    allowedHosts.add(`127.0.0.1:${addr.port}`);
    allowedHosts.add(`[::1]:${addr.port}`);
  } else {
    allowedHosts.add(`${opts.host.toLowerCase()}:${addr.port}`);
  }
  for (const extra of opts.allowedHosts ?? []) {
    const h = extra.toLowerCase();
    allowedHosts.add(/:\d+$/.test(h) ? h : `${h}:${addr.port}`);
  }
  const url = `http://${hostPart}:${addr.port}${MCP_PATH}`;
  log(`opscrew mcp: listening on ${url}`);

  return {
    url,
    host: addr.address,
    port: addr.port,
    sessions: () => sessions.size,
    close: async () => {
      for (const s of [...sessions.values()]) await s.transport.close().catch(() => undefined);
      sessions.clear();
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}

function isInitialize(body: unknown): boolean {
  return Array.isArray(body) ? body.some((m) => isInitializeRequest(m)) : isInitializeRequest(body);
}

/** Same-host origins only (a browser page served by this very host:port, e.g. a local inspector proxy is not). */
function isAllowedOrigin(origin: string, hosts: Set<string>): boolean {
  try {
    const u = new URL(origin);
    return (u.protocol === 'http:' || u.protocol === 'https:') && hosts.has(u.host.toLowerCase());
  } catch {
    return false;
  }
}

function readBody(req: IncomingMessage, max: number): Promise<string | 'too-large'> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? NaN);
    if (declared > max) {
      req.resume();
      resolve('too-large');
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (c: Buffer) => {
      if (over) return;
      size += c.length;
      if (size > max) {
        over = true;
        chunks.length = 0;
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(over ? 'too-large' : Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function sendJson(res: ServerResponse, status: number, message: string, code = -32000): void {
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json');
  res.end(JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id: null }));
}
