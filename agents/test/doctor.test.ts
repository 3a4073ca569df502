// `opscrew doctor` in-process: real workspaces in temp dirs, real kubectl/jq/ssh binaries, a real
// kubeconfig, real loopback sockets (a closed port and a listening one), the Vault double.
import { describe, it, expect, afterAll } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../cli/main.js';
import { captureIO, type CapturedIO } from './capture-io.js';
import { openStore } from '../../mcp-server/core/store.js';
import { freePort } from '../../test/harness/ports.js';
import { startVaultDouble } from '../../test/harness/vault-double.js';

const temps: string[] = [];
afterAll(() => {
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

interface Check {
  name: string;
  status: 'ok' | 'warn' | 'fail';
  message: string;
  fix?: string;
}
interface Report {
  ok: boolean;
  workspace: string;
  checks: Check[];
}

function io(env: Record<string, string> = {}): CapturedIO {
  return captureIO({ env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: tmpdir(), ...env }, cwd: tmpdir(), now: () => Date.parse('2026-03-01T12:00:00Z') });
}

async function workspace(config: (dir: string) => string): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'opscrew-doctor-'));
  temps.push(dir);
  expect(await main(['init', dir], io())).toBe(0);
  mkdirSync(join(dir, 'srv'), { recursive: true });
  writeFileSync(join(dir, 'kubeconfig'), KUBECONFIG);
  writeFileSync(join(dir, 'srv', 'docker-compose.yml'), 'services:\n  web:\n    image: nginx\n');
  writeFileSync(join(dir, 'opscrew.config.yaml'), config(dir));
  return dir;
}

const KUBECONFIG = `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:1"}
users:
- name: u
  user: {}
contexts:
- name: minikube
  context: {cluster: c, user: u}
- name: staging
  context: {cluster: c, user: u}
current-context: minikube
`;

function byName(r: Report, name: string): Check {
  const c = r.checks.find((x) => x.name === name);
  if (!c) throw new Error(`no check ${name} in ${r.checks.map((x) => x.name).join(', ')}`);
  return c;
}

function listen(): Promise<{ server: Server; port: number }> {
  return new Promise((resolve) => {
    const server = createServer((s) => {
      s.on('error', () => undefined); // the probe hangs up at once
      s.end('SSH-2.0-test\r\n');
    });
    server.listen(0, '127.0.0.1', () => {
      const a = server.address();
      resolve({ server, port: typeof a === 'object' && a ? a.port : 0 });
    });
  });
}

describe('opscrew doctor', () => {
  it('a good workspace with an ssh host on a closed loopback port: that check fails with the fix, the rest pass (--json)', async () => {
    const closed = await freePort();
    const dir = await workspace(
      (d) => `kubernetes:
  kubeconfig: ${d}/kubeconfig
  contexts:
    minikube: { namespaces: [default] }
compose:
  projects:
    shop: { file: ${d}/srv/docker-compose.yml }
ssh:
  hosts:
    edge-1: { host: 127.0.0.1, port: ${closed}, user: ops }
files:
  roots: [${d}/srv]
`,
    );
    const o = io();
    const code = await main(['doctor', '--json', '--timeout', '5000', '--workspace', dir], o);
    const r = JSON.parse(o.stdout()) as Report;
    expect(code).toBe(1);
    expect(r.ok).toBe(false);
    expect(r.workspace).toBe(dir);
    for (const c of r.checks) {
      expect(['ok', 'warn', 'fail']).toContain(c.status);
      expect(typeof c.message).toBe('string');
      if (c.status !== 'ok') expect(c.fix).toMatch(/\S/);
    }
    const ssh = byName(r, 'ssh.edge-1');
    expect(ssh.status).toBe('fail');
    expect(ssh.message).toContain(`127.0.0.1:${closed}`);
    expect(ssh.fix).toContain('ssh.hosts.edge-1');
    expect(r.checks.filter((c) => c.status === 'fail').map((c) => c.name)).toEqual(['ssh.edge-1']);
    expect(byName(r, 'workspace').status).toBe('ok');
    expect(byName(r, 'config').status).toBe('ok');
    expect(byName(r, 'specialists').message).toMatch(/^\d+ profiles: /);
    expect(byName(r, 'store').message).toMatch(/SQLite 3\.\d+\.\d+ \(>= 3\.51\.3\)/);
    expect(byName(r, 'binary.kubectl').message).toMatch(/^kubectl v\d+\.\d+/);
    expect(byName(r, 'binary.ssh').status).toBe('ok');
    expect(byName(r, 'binary.jq').message).toMatch(/jq/);
    expect(byName(r, 'kube.contexts')).toMatchObject({ status: 'ok', message: expect.stringContaining('minikube') as unknown });
    expect(byName(r, 'compose.shop').status).toBe('ok');
    expect(byName(r, 'files').status).toBe('ok');
    // The context listing went through the gate as a person: it is in the audit log.
    const store = openStore(join(dir, '.opscrew', 'opscrew.db'), { readonly: true });
    try {
      const rows = store.db.all<{ agent: string; tool: string }>("SELECT agent, tool FROM tool_calls WHERE tool = 'kubectl'");
      expect(rows).toEqual([{ agent: 'person', tool: 'kubectl' }]);
    } finally {
      store.close();
    }
  });

  it('everything reachable: exit 0, and the table names each check', async () => {
    const { server, port } = await listen();
    const vault = await startVaultDouble();
    try {
      const dir = await workspace(
        (d) => `kubernetes:
  kubeconfig: ${d}/kubeconfig
  contexts:
    staging: { namespaces: ["*"] }
ssh:
  hosts:
    edge-1: { host: 127.0.0.1, port: ${port}, user: ops }
vault:
  paths: [kv/deploy]
files:
  roots: [${d}/srv]
`,
      );
      const o = io({ VAULT_ADDR: vault.address, VAULT_TOKEN: vault.token });
      expect(await main(['doctor', '--workspace', dir], o)).toBe(0);
      expect(o.stdout()).toMatch(/^ok {4}ssh\.edge-1: 127\.0\.0\.1:\d+ accepts TCP connections$/m);
      expect(o.stdout()).toMatch(/^ok {4}vault: http:\/\/127\.0\.0\.1:\d+ healthy \(HTTP 200\)/m);
      expect(o.stdout()).toMatch(/^ok {4}kube\.contexts: staging/m);
      expect(o.stdout()).toMatch(/^ready \(\d+ warnings?\)$/m);
      expect(vault.requests.some((q) => q.url === '/v1/sys/health')).toBe(true);
      // The token is never sent to the health endpoint.
      expect(vault.requests.every((q) => q.headers['x-vault-token'] === undefined)).toBe(true);
    } finally {
      server.close();
      await vault.close();
    }
  });

  it('a missing kube context, unset Vault variables and a missing compose file each fail with their fix', async () => {
    const dir = await workspace(
      (d) => `kubernetes:
  kubeconfig: ${d}/kubeconfig
  contexts:
    minikube: { namespaces: [default] }
    prod: { namespaces: [default] }
compose:
  projects:
    gone: { file: ${d}/srv/nope.yml }
vault:
  paths: [kv/deploy]
`,
    );
    const o = io();
    expect(await main(['doctor', '--json', '--workspace', dir], o)).toBe(1);
    const r = JSON.parse(o.stdout()) as Report;
    expect(byName(r, 'kube.contexts')).toMatchObject({ status: 'fail', message: expect.stringMatching(/: prod \(it has: minikube, staging\)/) as unknown });
    expect(byName(r, 'kube.contexts').fix).toContain('kubernetes.contexts.prod');
    expect(byName(r, 'vault')).toMatchObject({ status: 'fail', message: expect.stringContaining('$VAULT_ADDR and $VAULT_TOKEN not set') as unknown });
    expect(byName(r, 'compose.gone')).toMatchObject({ status: 'fail', fix: expect.stringContaining('compose.projects.gone.file') as unknown });
  });

  it('a broken config fails naming the key; exit 1', async () => {
    const dir = await workspace(() => 'mode: standard\nconcurrency: lots\n');
    const o = io();
    expect(await main(['doctor', '--json', '--workspace', dir], o)).toBe(1);
    const r = JSON.parse(o.stdout()) as Report;
    const cfg = byName(r, 'config');
    expect(cfg.status).toBe('fail');
    expect(cfg.message).toMatch(/opscrew\.config\.yaml:2: concurrency/);
    expect(byName(r, 'targets').status).toBe('warn');
    const t = io();
    expect(await main(['doctor', '--workspace', dir], t)).toBe(1);
    expect(t.stdout()).toMatch(/^FAIL {2}config: .*concurrency/m);
    expect(t.stdout()).toMatch(/^1 check failed/m);
  });

  it('outside a workspace: fails with the init fix; a bad --timeout is a usage error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'opscrew-doctor-none-'));
    temps.push(dir);
    const o = io();
    expect(await main(['doctor', '--json', '--workspace', dir], o)).toBe(1);
    const r = JSON.parse(o.stdout()) as Report;
    expect(byName(r, 'workspace')).toMatchObject({ status: 'fail', fix: expect.stringContaining('opscrew init') as unknown });
    expect(byName(r, 'store').message).toContain('in-memory');
    expect(await main(['doctor', '--timeout', '0', '--workspace', dir], io())).toBe(2);
  });
});
