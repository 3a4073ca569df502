// Outside MCP clients against our server: the MCP Inspector CLI over stdio and the MCP
// conformance suite (pinned 0.1.16) over Streamable HTTP. Both need Node 22, so they live in a
// tools folder outside the project (OPSCREW_MCP_TOOLS, default $TMPDIR/opscrew-mcp-outside), made with:
//   npm install node@22 @modelcontextprotocol/inspector@0.21.2 @modelcontextprotocol/conformance@0.1.16
// Outside CI a missing folder skips with a one-line reason; under CI=true it fails.
import { execFile } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpServer, type RunningHttpServer } from '../mcp-server/http.js';
import { createServer } from '../mcp-server/server.js';
import { makeHarness, type Harness } from '../mcp-server/test/mcp-harness.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const TOOLS = process.env.OPSCREW_MCP_TOOLS ?? join(tmpdir(), 'opscrew-mcp-outside');
const BIN = join(TOOLS, 'node_modules', '.bin');
const NEEDED = ['node', 'mcp-inspector', 'conformance'];

function missingTools(): string[] {
  return NEEDED.filter((n) => {
    try {
      accessSync(join(BIN, n), constants.X_OK);
      return false;
    } catch {
      return true;
    }
  });
}
const missing = missingTools();
if (missing.length > 0 && process.env.CI === 'true') {
  throw new Error(`CI=true and the outside MCP clients are missing in ${TOOLS}: ${missing.join(', ')}`);
}
const reason = missing.length > 0 ? `skipped: missing ${missing.join(', ')} in ${TOOLS} (npm install node@22 @modelcontextprotocol/inspector@0.21.2 @modelcontextprotocol/conformance@0.1.16 there)` : '';

/** Runs a tool from the Node 22 folder; resolves with the exit code and output (never rejects on exit codes). */
function run(cmd: string, args: string[], timeoutMs = 90_000): Promise<{ code: number; out: string }> {
  return new Promise((resolvePromise) => {
    execFile(
      join(BIN, cmd),
      args,
      { timeout: timeoutMs, env: { ...process.env, PATH: `${BIN}${delimiter}${process.env.PATH ?? ''}` }, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
        resolvePromise({ code, out: `${stdout}${stderr}` });
      },
    );
  });
}

describe.skipIf(missing.length > 0)(`outside MCP clients ${reason}`, () => {
  let h: Harness;
  let http: RunningHttpServer;
  beforeAll(async () => {
    h = await makeHarness();
    // The conformance suite sends no auth header: --no-auth on loopback, read-only observer.
    http = await startHttpServer({
      host: '127.0.0.1',
      port: 0,
      noAuth: true,
      noAuthAgent: 'observer',
      authenticate: () => null,
      makeServer: (agent) => createServer(h.deps(agent)),
      log: () => undefined,
    });
  });
  afterAll(async () => {
    await http?.close();
    await h?.close();
  });

  const server = (): string[] => [process.execPath, join(ROOT, 'bin', 'opscrew.js'), 'mcp', '--workspace', h.ws.root, '--agent', 'k8s-specialist'];

  it('MCP Inspector CLI: tools/list over stdio shows the identity’s tools', async () => {
    expect(existsSync(join(ROOT, 'dist', 'agents', 'cli', 'main.js')), 'build first: npx tsc -p tsconfig.build.json').toBe(true);
    const r = await run('mcp-inspector', ['--cli', ...server(), '--method', 'tools/list']);
    expect(r.code).toBe(0);
    const names = (JSON.parse(r.out.slice(r.out.indexOf('{'))) as { tools: Array<{ name: string }> }).tools.map((t) => t.name);
    expect(names).toContain('kubectl');
    expect(names).not.toContain('vault');
  });

  it('MCP Inspector CLI: tools/call runs through the policy', async () => {
    const ok = await run('mcp-inspector', ['--cli', ...server(), '--method', 'tools/call', '--tool-name', 'run_command', '--tool-arg', `line=curl -fsS ${h.svc}/health`]);
    expect(ok.out).toContain('healthy');
    const denied = await run('mcp-inspector', ['--cli', ...server(), '--method', 'tools/call', '--tool-name', 'run_command', '--tool-arg', 'line=vault kv get kv/deploy/app']);
    expect(denied.out).toContain('scope.tool');
  });

  for (const scenario of ['server-initialize', 'ping', 'tools-list', 'resources-list', 'prompts-list', 'logging-set-level', 'dns-rebinding-protection']) {
    it(`conformance 0.1.16: ${scenario}`, async () => {
      const r = await run('conformance', ['server', '--url', http.url, '--scenario', scenario]);
      expect(r.out, r.out).toMatch(/0 failed/);
      expect(r.code, r.out).toBe(0);
    });
  }
});
