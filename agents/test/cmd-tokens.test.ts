// `opscrew tokens` and `opscrew mcp` argument handling, run in-process through main().
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { main } from '../cli/main.js';
import type { CliIO } from '../cli/output.js';
import { openStore } from '../../mcp-server/core/store.js';
import { ensureWorkspace, resolveWorkspace } from '../../mcp-server/core/workspace.js';
import { verifyToken } from '../../mcp-server/tokens.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'opscrew-cli-tokens-'));
  ensureWorkspace(resolveWorkspace(dir));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function io(): CliIO & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { stdout, stderr, out: (t) => void stdout.push(typeof t === 'string' ? t : Buffer.from(t).toString('utf8')), err: (t) => void stderr.push(t), env: {}, cwd: dir, now: () => 1_700_000_000_000 };
}

describe('opscrew tokens', () => {
  it('create prints the token once; list never shows it; revoke stops it', async () => {
    const a = io();
    expect(await main(['tokens', 'create', '--agent', 'k8s-specialist', '--json', '-w', dir], a)).toBe(0);
    const created = JSON.parse(a.stdout.join('')) as { id: string; agent: string; token: string };
    expect(created.agent).toBe('k8s-specialist');
    const store = openStore(resolveWorkspace(dir).dbPath);
    try {
      expect(verifyToken(store.db, created.token)).toBe('k8s-specialist');
      const l = io();
      expect(await main(['tokens', 'list', '-w', dir], l)).toBe(0);
      const listed = l.stdout.join('');
      expect(listed).toContain(created.id);
      expect(listed).toContain('k8s-specialist');
      expect(listed).not.toContain(created.token);
      const r = io();
      expect(await main(['tokens', 'revoke', created.id, '-w', dir], r)).toBe(0);
      expect(verifyToken(store.db, created.token)).toBeNull();
    } finally {
      store.close();
    }
  });

  it('refuses an unknown agent and a revoke without a target', async () => {
    const a = io();
    expect(await main(['tokens', 'create', '--agent', 'nobody', '-w', dir], a)).toBe(1);
    expect(a.stderr.join('')).toMatch(/unknown agent "nobody"/);
    const b = io();
    expect(await main(['tokens', 'revoke', '-w', dir], b)).toBe(2);
  });
});

describe('opscrew mcp options', () => {
  it('refuses --no-auth without --http, and an unknown --agent', async () => {
    const a = io();
    expect(await main(['mcp', '--no-auth', '-w', dir], a)).toBe(2);
    expect(a.stderr.join('')).toMatch(/--no-auth only applies to --http/);
    const b = io();
    expect(await main(['mcp', '--agent', 'ghost', '-w', dir], b)).toBe(1);
    expect(b.stderr.join('')).toMatch(/unknown agent "ghost"/);
  });

  it('refuses a non-loopback --http without --allow-remote', async () => {
    const a = io();
    expect(await main(['mcp', '--http', '0.0.0.0:0', '-w', dir], a)).not.toBe(0);
    expect(a.stderr.join('')).toMatch(/not loopback/);
  });
});
