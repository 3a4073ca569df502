// The MCP server over its real transports: `opscrew mcp` spawned as a process and driven over
// stdio by the SDK client, and Streamable HTTP with per-agent tokens and two agents at once.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { startHttpServer, type RunningHttpServer } from '../mcp-server/http.js';
import { createServer } from '../mcp-server/server.js';
import { createToken, verifyToken } from '../mcp-server/tokens.js';
import { makeHarness, textOf, type Harness } from '../mcp-server/test/mcp-harness.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(ROOT, 'bin', 'opscrew.js');

let h: Harness;
let http: RunningHttpServer | undefined;
beforeEach(async () => {
  h = await makeHarness();
});
afterEach(async () => {
  await http?.close();
  http = undefined;
  await h.close();
});

describe('stdio: opscrew mcp as a process', () => {
  it('serves the identity given by --agent; stdout carries only protocol', async () => {
    expect(existsSync(join(ROOT, 'dist', 'agents', 'cli', 'main.js')), 'build first: npx tsc -p tsconfig.build.json').toBe(true);
    const stderr: string[] = [];
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [BIN, 'mcp', '--workspace', h.ws.root, '--agent', 'k8s-specialist'],
      stderr: 'pipe',
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' },
    });
    transport.stderr?.on('data', (d: Buffer) => stderr.push(d.toString()));
    const client = new Client({ name: 'stdio-test', version: '0' });
    await client.connect(transport); // a stray stdout line would break the JSON-RPC framing here
    try {
      const names = (await client.listTools()).tools.map((t) => t.name);
      expect(names).toContain('kubectl');
      expect(names).not.toContain('vault');
      const r = await client.callTool({ name: 'http', arguments: { args: ['-fsS', `${h.svc}/health`] } });
      expect(r.isError).toBeFalsy();
      expect(textOf(r)).toContain('"status":"healthy"');
      const denied = await client.callTool({ name: 'run_command', arguments: { line: 'vault kv get kv/deploy/app' } });
      expect(denied.isError).toBe(true);
    } finally {
      await client.close();
    }
    expect(stderr.join('')).toContain('opscrew mcp: serving on stdio');
    // the spawned server audited under its identity, in the same workspace database
    const rows = h.store.db.all<{ agent: string; decision: string }>("SELECT agent, decision FROM tool_calls WHERE tool IN ('http', 'vault')");
    expect(rows).toEqual(expect.arrayContaining([{ agent: 'k8s-specialist', decision: 'allow' }, { agent: 'k8s-specialist', decision: 'deny' }]));
  });
});

describe('Streamable HTTP with createServer', () => {
  async function connect(url: string, token: string): Promise<Client> {
    const c = new Client({ name: 'http-test', version: '0' });
    await c.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
    return c;
  }
  function tok(agent: string): string {
    const r = createToken(h.store.db, agent);
    if (!r.ok) throw new Error(r.message);
    return r.value.token;
  }

  it('two agents at once see different tools and each is enforced at call time', async () => {
    http = await startHttpServer({
      host: '127.0.0.1',
      port: 0,
      authenticate: (t) => verifyToken(h.store.db, t),
      makeServer: (agent) => createServer(h.deps(agent)),
      log: () => undefined,
    });
    const k8s = await connect(http.url, tok('k8s-specialist'));
    const sec = await connect(http.url, tok('secrets-specialist'));
    const [a, b] = await Promise.all([k8s.listTools(), sec.listTools()]);
    const an = a.tools.map((t) => t.name);
    const bn = b.tools.map((t) => t.name);
    expect(an).toContain('kubectl');
    expect(an).not.toContain('vault');
    expect(bn).toContain('vault');
    expect(bn).not.toContain('kubectl');
    const r = await sec.callTool({ name: 'run_command', arguments: { line: 'kubectl --context minikube -n shop get pods' } });
    expect((r.structuredContent as { error: { code: string } }).error.code).toBe('scope.tool');
    const ok = await k8s.callTool({ name: 'http', arguments: { args: ['-fsS', `${h.svc}/health`] } });
    expect(ok.isError).toBeFalsy();
    const agents = h.store.db.all<{ agent: string }>('SELECT DISTINCT agent FROM tool_calls ORDER BY agent').map((x) => x.agent);
    expect(agents).toEqual(['k8s-specialist', 'secrets-specialist']);
    await k8s.close();
    await sec.close();
  });

  it('a token for an agent with no profile gets no session', async () => {
    http = await startHttpServer({
      host: '127.0.0.1',
      port: 0,
      authenticate: (t) => verifyToken(h.store.db, t),
      makeServer: (agent) => {
        try {
          return createServer(h.deps(agent));
        } catch {
          return null;
        }
      },
      log: () => undefined,
    });
    await expect(connect(http.url, tok('ghost-agent'))).rejects.toMatchObject({ code: 403 });
  });
});
