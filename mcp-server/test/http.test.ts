// Streamable HTTP guards against the real SDK client and raw requests: tokens, Host, Origin, size, rate.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { openStore, type Store } from '../core/store.js';
import { createToken, verifyToken } from '../tokens.js';
import { parseListen, startHttpServer, type RunningHttpServer } from '../http.js';

let dir: string;
let store: Store;
let running: RunningHttpServer | undefined;
const logs: string[] = [];

/** A tiny server whose one tool reports the session's agent: enough to see identity per session. */
function whoami(agent: string): McpServer {
  const s = new McpServer({ name: 'test', version: '0' });
  s.registerTool('whoami', { description: 'agent of this session' }, () => ({ content: [{ type: 'text', text: agent }] }));
  return s;
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'opscrew-http-'));
  store = openStore(join(dir, 'state.db'));
  logs.length = 0;
});
afterEach(async () => {
  await running?.close();
  running = undefined;
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

async function start(extra: Partial<Parameters<typeof startHttpServer>[0]> = {}): Promise<RunningHttpServer> {
  running = await startHttpServer({
    host: '127.0.0.1',
    port: 0,
    authenticate: (t) => verifyToken(store.db, t),
    makeServer: whoami,
    log: (l) => logs.push(l),
    ...extra,
  });
  return running;
}

function token(agent: string): string {
  const r = createToken(store.db, agent);
  if (!r.ok) throw new Error(r.message);
  return r.value.token;
}

async function connect(url: string, tok?: string): Promise<Client> {
  const client = new Client({ name: 't', version: '0' });
  const headers: Record<string, string> = tok ? { Authorization: `Bearer ${tok}` } : {};
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }));
  return client;
}

const INIT = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '0' } },
});

async function rawPost(url: string, headers: Record<string, string>, body = INIT): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', ...headers },
    body,
  });
}

describe('http transport', () => {
  it('serves a session per token with that token’s identity; two agents at once', async () => {
    const srv = await start();
    const a = await connect(srv.url, token('k8s-specialist'));
    const b = await connect(srv.url, token('devops-specialist'));
    const ra = await a.callTool({ name: 'whoami', arguments: {} });
    const rb = await b.callTool({ name: 'whoami', arguments: {} });
    expect(ra.content).toEqual([{ type: 'text', text: 'k8s-specialist' }]);
    expect(rb.content).toEqual([{ type: 'text', text: 'devops-specialist' }]);
    expect(srv.sessions()).toBe(2);
    await a.close();
    await b.close();
  });

  it('refuses no token and a wrong token with 401', async () => {
    const srv = await start();
    await expect(connect(srv.url)).rejects.toMatchObject({ code: 401, message: expect.stringMatching(/unauthorized/) });
    await expect(connect(srv.url, 'ocw_wrong')).rejects.toMatchObject({ code: 401 });
    const r = await rawPost(srv.url, {});
    expect(r.status).toBe(401);
    expect(r.headers.get('www-authenticate')).toContain('Bearer');
  });

  it('refuses a foreign Origin and a rebinding Host with 403, even with a valid token', async () => {
    const srv = await start();
    const tok = token('observer');
    const auth = { Authorization: `Bearer ${tok}` };
    expect((await rawPost(srv.url, { ...auth, Origin: 'http://evil.example' })).status).toBe(403);
    // fetch sets Host from the URL; go through node:http to forge it.
    const { request } = await import('node:http');
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port: srv.port, path: '/mcp', method: 'POST', headers: { Host: `evil.example:${srv.port}`, 'Content-Type': 'application/json', ...auth } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end(INIT);
    });
    expect(status).toBe(403);
    // the same request with the real Host and a same-host Origin works
    const ok = await rawPost(srv.url, { ...auth, Origin: `http://127.0.0.1:${srv.port}` });
    expect(ok.status).toBe(200);
  });

  it('refuses a session id used with another agent’s token', async () => {
    const srv = await start();
    const tokA = token('k8s-specialist');
    const tokB = token('secrets-specialist');
    const init = await rawPost(srv.url, { Authorization: `Bearer ${tokA}` });
    const sid = init.headers.get('mcp-session-id');
    expect(sid).toBeTruthy();
    const list = JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list', params: {} });
    const r = await rawPost(srv.url, { Authorization: `Bearer ${tokB}`, 'Mcp-Session-Id': sid!, 'Mcp-Protocol-Version': '2025-06-18' }, list);
    expect(r.status).toBe(403);
  });

  it('limits body size (413) and request rate (429)', async () => {
    const srv = await start({ maxBodyBytes: 2048, rateLimit: { max: 3, windowMs: 60_000 } });
    const auth = { Authorization: `Bearer ${token('observer')}` };
    const big = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping', params: { pad: 'x'.repeat(5000) } });
    expect((await rawPost(srv.url, auth, big)).status).toBe(413);
    expect((await rawPost(srv.url, auth)).status).toBe(200);
    expect((await rawPost(srv.url, auth)).status).toBe(200);
    const limited = await rawPost(srv.url, auth);
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBeTruthy();
  });

  it('--no-auth: loopback only, a warning, every session is the named agent', async () => {
    await expect(startHttpServer({ host: '0.0.0.0', port: 0, allowRemote: true, noAuth: true, authenticate: () => null, makeServer: whoami, log: () => undefined })).rejects.toMatchObject({ code: 'mcp-noauth-remote' });
    const srv = await start({ noAuth: true, noAuthAgent: 'observer' });
    expect(logs.join('\n')).toMatch(/WARNING: --no-auth/);
    const c = await connect(srv.url);
    expect((await c.callTool({ name: 'whoami', arguments: {} })).content).toEqual([{ type: 'text', text: 'observer' }]);
    await c.close();
  });

  it('refuses a non-loopback bind without allowRemote and warns with it', async () => {
    await expect(startHttpServer({ host: '0.0.0.0', port: 0, authenticate: () => null, makeServer: whoami, log: () => undefined })).rejects.toMatchObject({ code: 'mcp-remote-refused' });
    const srv = await start({ host: '0.0.0.0', allowRemote: true });
    expect(logs.join('\n')).toMatch(/WARNING: listening on 0\.0\.0\.0/);
    const r = await fetch(`http://127.0.0.1:${srv.port}/mcp`, { method: 'POST', body: INIT, headers: { 'Content-Type': 'application/json' } });
    // Host 127.0.0.1:PORT is not the bound host 0.0.0.0 → rebinding guard
    expect(r.status).toBe(403);
  });

  it('accepts extra Host names given for a remote bind', async () => {
    const srv = await start({ host: '0.0.0.0', allowRemote: true, allowedHosts: ['ops.example.org'] });
    const { request } = await import('node:http');
    const status = (host: string): Promise<number> =>
      new Promise((resolve, reject) => {
        const req = request(
          { host: '127.0.0.1', port: srv.port, path: '/mcp', method: 'POST', headers: { Host: host, 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', Authorization: `Bearer ${token('observer')}` } },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on('error', reject);
        req.end(INIT);
      });
    expect(await status(`ops.example.org:${srv.port}`)).toBe(200);
    expect(await status(`evil.example.org:${srv.port}`)).toBe(403);
  });

  it('bounds open sessions (503 beyond the limit)', async () => {
    const srv = await start({ maxSessions: 1 });
    const auth = { Authorization: `Bearer ${token('observer')}` };
    expect((await rawPost(srv.url, auth)).status).toBe(200);
    const full = await rawPost(srv.url, auth);
    expect(full.status).toBe(503);
    expect(srv.sessions()).toBe(1);
  });

  it('parses --http specs', () => {
    expect(parseListen('127.0.0.1:7077')).toEqual({ host: '127.0.0.1', port: 7077 });
    expect(parseListen('[::1]:80')).toEqual({ host: '::1', port: 80 });
    expect(parseListen('7077')).toEqual({ host: '127.0.0.1', port: 7077 });
    expect(() => parseListen('nope')).toThrow(/HOST:PORT/);
  });
});
