// The `opscrew mcp` fast path reads its own options (no commander, for cold start): it must give
// what commander would for plain invocations and hand everything else back to the full CLI.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ensureWorkspace, resolveWorkspace } from '../../mcp-server/core/workspace.js';
import { mcpFastPath, parseMcpArgv } from '../cli/cmd-mcp.js';
import type { CliIO } from '../cli/output.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = join(ROOT, 'bin', 'opscrew.js');

function memIO(env: Record<string, string> = {}): CliIO & { errText: () => string } {
  let err = '';
  return { out: () => undefined, err: (t) => void (err += t), env, cwd: '/somewhere', now: Date.now, errText: () => err };
}

describe('parseMcpArgv', () => {
  it('reads plain invocations with the defaults commander gives', () => {
    expect(parseMcpArgv(['mcp'])).toEqual({ opts: { auth: true, rateLimit: '600' } });
    expect(parseMcpArgv(['mcp', '--workspace', '/w', '--agent', 'k8s-specialist'])).toEqual({
      workspace: '/w',
      opts: { auth: true, rateLimit: '600', agent: 'k8s-specialist' },
    });
    expect(parseMcpArgv(['-w', '/w', 'mcp', '--http=127.0.0.1:7077', '--no-auth', '--rate-limit', '5'])).toEqual({
      workspace: '/w',
      opts: { auth: false, rateLimit: '5', http: '127.0.0.1:7077' },
    });
    expect(parseMcpArgv(['mcp', '--http', '0.0.0.0:1', '--allow-remote', '--allowed-host', 'a.example', '--allowed-host=b.example', '--workspace=/x', '-w', '/y'])).toEqual({
      workspace: '/y',
      opts: { auth: true, rateLimit: '600', http: '0.0.0.0:1', allowRemote: true, allowedHost: ['a.example', 'b.example'] },
    });
    // an option value may be the word mcp
    expect(parseMcpArgv(['mcp', '--agent', 'mcp'])?.opts.agent).toBe('mcp');
  });

  it('hands everything else to the full CLI', () => {
    const others = [
      [],
      ['tasks', 'list'],
      ['exec', 'mcp'],
      ['mcp', '--help'],
      ['mcp', '-h'],
      ['--help', 'mcp'],
      ['-V'],
      ['mcp', 'extra'],
      ['mcp', 'mcp'],
      ['mcp', '--agent'],
      ['mcp', '--agent', ''],
      ['mcp', '--agent', '--http'],
      ['mcp', '--unknown'],
      ['mcp', '--no-auth=1'],
      ['mcp', '--allow-remote=yes'],
      ['--agent', 'x', 'mcp'],
      ['--no-auth', 'mcp'],
      ['mcp', '-wX'],
      ['mcp', '--'],
      ['tasks', 'show', 'mcp'],
    ];
    for (const argv of others) expect(parseMcpArgv(argv), JSON.stringify(argv)).toBeNull();
  });
});

describe('mcpFastPath', () => {
  it('returns null for non-mcp argv and maps errors to the CLI exit codes', async () => {
    expect(await mcpFastPath(['tasks', 'list'], memIO())).toBeNull();
    const dir = mkdtempSync(join(tmpdir(), 'opscrew-mcp-argv-'));
    try {
      const io = memIO();
      // not a workspace: the same CONFIG exit (6) the full CLI gives
      expect(await mcpFastPath(['mcp', '--workspace', join(dir, 'nope')], io)).toBe(6);
      expect(io.errText()).toMatch(/^opscrew: /);
      const io2 = memIO();
      expect(await mcpFastPath(['mcp', '--workspace', dir, '--no-auth'], io2)).toBe(2);
      expect(io2.errText()).toContain('--no-auth only applies to --http');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('bin: `mcp --help` still goes through commander', () => {
    expect(existsSync(join(ROOT, 'dist', 'agents', 'cli', 'cmd-mcp.js')), 'build first: npx tsc -p tsconfig.build.json').toBe(true);
    const r = spawnSync(process.execPath, [BIN, 'mcp', '--help'], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('--http <host:port>');
    expect(r.stdout).toContain('--no-auth');
  });

  it('bin: `mcp --http ... --no-auth` serves through the fast path and stops on SIGTERM', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'opscrew-mcp-argv-'));
    const ws = resolveWorkspace(dir);
    ensureWorkspace(ws);
    writeFileSync(ws.configPath, 'mode: standard\n');
    const child = spawn(process.execPath, [BIN, 'mcp', '--http=127.0.0.1:0', '--no-auth', '-w', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let err = '';
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      const url = await new Promise<string>((res, rej) => {
        const t = setTimeout(() => rej(new Error(`no listening line: ${err}`)), 20_000);
        child.stderr.on('data', (d: Buffer) => {
          err += d.toString();
          const m = /listening on (http:\/\/\S+)/.exec(err);
          if (m) {
            clearTimeout(t);
            res(m[1]!);
          }
        });
      });
      const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '0' } } }) });
      expect(r.status).toBe(200);
      expect(await r.text()).toContain('"serverInfo"');
      const code = await new Promise<number | null>((res) => {
        child.once('exit', (c) => res(c));
        child.kill('SIGTERM');
      });
      expect(code).toBe(0);
      expect(err).toContain('WARNING: --no-auth');
      expect(out).toBe('');
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
