import { describe, it, expect, afterEach } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, locateKeyLine, toToolEnv, type ConfigFailureCause } from '../core/config.js';
import type { Issue } from '../core/errors.js';

const EXAMPLE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../examples/opscrew.config.yaml');
const HOME = '/home/tester';
const dirs: string[] = [];

function workspace(yaml?: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'opscrew-config-'));
  dirs.push(dir);
  if (yaml !== undefined) fs.writeFileSync(path.join(dir, 'opscrew.config.yaml'), yaml);
  return dir;
}

afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function issuesOf(yaml: string): Issue[] {
  const dir = workspace(yaml);
  const r = loadConfig({ workspaceDir: dir, env: { HOME } });
  expect(r.ok).toBe(false);
  if (r.ok) return [];
  expect(r.code).toBe('config-invalid');
  return (r.cause as ConfigFailureCause).issues;
}

describe('loadConfig', () => {
  it('loads the full example with durations in ms, ~ expanded and every section', () => {
    const dir = workspace(fs.readFileSync(EXAMPLE, 'utf8'));
    const r = loadConfig({ workspaceDir: dir, env: { HOME } });
    if (!r.ok) throw new Error(r.message);
    const c = r.value;
    expect(c.mode).toBe('standard');
    expect(c.timeouts).toEqual({ command: 120_000, task: 1_800_000, approval: 900_000, lease: 300_000, grace: 30_000 });
    expect(c.kubernetes.kubeconfig).toBe('/home/tester/.kube/config');
    expect(Object.keys(c.kubernetes.contexts).sort()).toEqual(['minikube', 'staging']);
    expect(c.kubernetes.contexts.staging?.namespaces).toContain('orders');
    expect(Object.keys(c.compose.projects).sort()).toEqual(['deploy', 'shop']);
    expect(c.ssh.hosts['edge-1']).toEqual({
      host: '10.0.0.5',
      port: 22,
      user: 'ops',
      identity_file: '/home/tester/.ssh/id_ed25519',
      known_hosts: '/home/tester/.ssh/known_hosts',
    });
    expect(c.vault.paths).toEqual(['kv/deploy']);
    expect(c.files.roots).toEqual(['/srv', '/etc/systemd/system']);
    expect(c.http.allow).toEqual(['127.0.0.1', '*.example.org']);
    expect(c.source.file).toBe(path.join(dir, 'opscrew.config.yaml'));
  });

  it('reads the crew lease and grace when set, refuses a lease under 1s, and leaves them unset by default', () => {
    const dir = workspace('timeouts: { command: 2m, task: 30m, approval: 15m, lease: 3s, grace: 1s }\n');
    const r = loadConfig({ workspaceDir: dir, env: { HOME } });
    if (!r.ok) throw new Error(r.message);
    expect(r.value.timeouts.lease).toBe(3000);
    expect(r.value.timeouts.grace).toBe(1000);
    const d = loadConfig({ workspaceDir: workspace('mode: standard\n'), env: { HOME } });
    if (!d.ok) throw new Error(d.message);
    expect(d.value.timeouts.lease).toBeUndefined();
    expect(d.value.timeouts.grace).toBeUndefined();
    const bad = issuesOf('timeouts: { lease: 10ms }\n');
    expect(bad.some((i) => i.field === 'timeouts.lease' && i.message.includes('at least 1s'))).toBe(true);
  });

  it('a missing file gives the defaults with empty scopes', () => {
    const dir = workspace();
    const r = loadConfig({ workspaceDir: dir, env: { HOME, KUBECONFIG: '/k/config', DOCKER_HOST: 'unix:///d.sock' } });
    if (!r.ok) throw new Error(r.message);
    expect(r.value.mode).toBe('standard');
    expect(r.value.kubernetes.contexts).toEqual({});
    expect(r.value.compose.projects).toEqual({});
    expect(r.value.ssh.hosts).toEqual({});
    expect(r.value.vault.paths).toEqual([]);
    expect(r.value.files.roots).toEqual([]);
    expect(r.value.http.allow).toEqual([]);
    expect(r.value.kubernetes.kubeconfig).toBe('/k/config');
    expect(r.value.compose.docker_host).toBe('unix:///d.sock');
    expect(r.value.source.file).toBeNull();
  });

  it('uses an injected fs', () => {
    const files = new Map([['/ws/opscrew.config.yaml', 'mode: full\n']]);
    const r = loadConfig({
      workspaceDir: '/ws',
      env: { HOME },
      fs: { existsSync: (p) => files.has(p), readFileSync: (p) => files.get(p) ?? '' },
    });
    expect(r.ok && r.value.mode).toBe('full');
  });

  it('relative paths resolve against the workspace', () => {
    const dir = workspace('files:\n  roots: [data]\ncompose:\n  projects:\n    shop: { file: stacks/shop.yml }\n');
    const r = loadConfig({ workspaceDir: dir, env: { HOME } });
    if (!r.ok) throw new Error(r.message);
    expect(r.value.files.roots).toEqual([path.join(dir, 'data')]);
    expect(r.value.compose.projects.shop?.file).toBe(path.join(dir, 'stacks/shop.yml'));
  });
});

describe('config errors name the file, key path, line and fix', () => {
  it('a misspelled key suggests the valid ones', () => {
    const yaml = ['ssh:', '  hosts:', '    edge-1:', '      host: 10.0.0.5', '      prot: 22', '      user: ops', ''].join('\n');
    const [i, ...rest] = issuesOf(yaml);
    expect(rest).toEqual([]);
    expect(i?.field).toBe('ssh.hosts.edge-1.prot');
    expect(i?.line).toBe(5);
    expect(i?.message).toContain('unknown key "prot"');
    expect(i?.fix).toContain('did you mean `port`');
    expect(i?.fix).toContain('host, port, user, identity_file, known_hosts');
    expect(i?.file).toMatch(/opscrew\.config\.yaml$/);
  });

  it('an unknown top-level key lists the sections', () => {
    const [i] = issuesOf('mode: standard\nkubernets:\n  contexts: {}\n');
    expect(i?.field).toBe('kubernets');
    expect(i?.line).toBe(2);
    expect(i?.fix).toContain('did you mean `kubernetes`');
    expect(i?.fix).toContain('timeouts');
  });

  it('a wrong type names the key path and the expected value', () => {
    const yaml = 'ssh:\n  hosts:\n    edge-1: { host: 10.0.0.5, port: "twenty-two", user: ops }\n';
    const [i] = issuesOf(yaml);
    expect(i?.field).toBe('ssh.hosts.edge-1.port');
    expect(i?.line).toBe(3);
    expect(i?.message).toContain('expected a number');
    expect(i?.message).toContain('twenty-two');
    expect(i?.fix).toContain('port number from 1 to 65535');
  });

  it('an out-of-range port says the range', () => {
    const [i] = issuesOf('ssh:\n  hosts:\n    edge-1:\n      host: h\n      port: 70000\n      user: ops\n');
    expect(i?.field).toBe('ssh.hosts.edge-1.port');
    expect(i?.line).toBe(5);
    expect(i?.fix).toContain('1 to 65535');
  });

  it('a bad enum value lists the options', () => {
    const [i] = issuesOf('mode: yolo\n');
    expect(i?.field).toBe('mode');
    expect(i?.line).toBe(1);
    expect(i?.fix).toBe('use one of: read-only, standard, full');
  });

  it('a bad duration says how to write one', () => {
    const [i] = issuesOf('timeouts:\n  command: 120\n  task: soon\n');
    // 120 is a number, "soon" no duration: both reported
    const all = issuesOf('timeouts:\n  command: 120\n  task: soon\n');
    expect(all.map((x) => x.field).sort()).toEqual(['timeouts.command', 'timeouts.task']);
    expect(i?.fix).toContain('duration such as 90s, 2m');
    expect(all.find((x) => x.field === 'timeouts.task')?.line).toBe(3);
  });

  it('a bad namespace in a list points at the context', () => {
    const yaml = 'kubernetes:\n  contexts:\n    staging:\n      namespaces:\n        - orders\n        - Bad_NS\n';
    const [i] = issuesOf(yaml);
    expect(i?.field).toBe('kubernetes.contexts.staging.namespaces[1]');
    expect(i?.line).toBe(6);
    expect(i?.fix).toContain('namespace names');
  });

  it('a default_context that is not configured is refused', () => {
    const [i] = issuesOf('kubernetes:\n  default_context: prod\n  contexts:\n    staging: { namespaces: [default] }\n');
    expect(i?.field).toBe('kubernetes.default_context');
    expect(i?.line).toBe(2);
    expect(i?.fix).toContain('staging');
  });

  it('an ssh host that would become an option is refused', () => {
    const [i] = issuesOf('ssh:\n  hosts:\n    evil: { host: "-oProxyCommand=x", user: ops }\n');
    expect(i?.field).toBe('ssh.hosts.evil.host');
    expect(i?.message).toContain('not a host name');
  });

  it('vault values must be env var names, not the token', () => {
    const [i] = issuesOf('vault:\n  token_env: "s.abc.def-token"\n');
    expect(i?.field).toBe('vault.token_env');
    expect(i?.fix).toContain('never the token itself');
  });

  it('broken YAML is located', () => {
    const [i] = issuesOf('mode: standard\nkubernetes:\n  contexts: [a\n');
    expect(i?.line).toBeGreaterThan(0);
    expect(i?.message).toContain('invalid YAML');
  });

  it('the whole message carries file:line, key and fix', () => {
    const dir = workspace('concurrency: 0\n');
    const r = loadConfig({ workspaceDir: dir, env: { HOME } });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.message).toMatch(/opscrew\.config\.yaml:1: concurrency: .*\(fix: write a whole number of workers from 1 to 64/);
  });
});

describe('locateKeyLine', () => {
  it('finds nested block keys and flow maps', () => {
    const text = 'a:\n  b:\n    c: 1\n  d: { e: 2 }\nc: 3\n';
    expect(locateKeyLine(text, ['a', 'b', 'c'])).toBe(3);
    expect(locateKeyLine(text, ['a', 'd', 'e'])).toBe(4);
    expect(locateKeyLine(text, ['c'])).toBe(5);
    expect(locateKeyLine(text, ['zz'])).toBe(0);
  });
});

describe('toToolEnv', () => {
  it('reads the Vault address and token from the named env vars only', () => {
    const dir = workspace('vault:\n  address_env: MY_VAULT\n  token_env: MY_TOKEN\n  paths: [kv/deploy/]\n');
    const r = loadConfig({ workspaceDir: dir, env: { HOME } });
    if (!r.ok) throw new Error(r.message);
    const te = toToolEnv(r.value, { MY_VAULT: 'http://127.0.0.1:8200', MY_TOKEN: 'tok-123', VAULT_TOKEN: 'wrong' });
    expect(te.vault).toEqual({ address: 'http://127.0.0.1:8200', token: 'tok-123', paths: ['kv/deploy'] });
    const none = toToolEnv(r.value, {});
    expect(none.vault).toEqual({ paths: ['kv/deploy'] });
  });

  it('maps hosts, projects and contexts', () => {
    const dir = workspace(fs.readFileSync(EXAMPLE, 'utf8'));
    const r = loadConfig({ workspaceDir: dir, env: { HOME } });
    if (!r.ok) throw new Error(r.message);
    const te = toToolEnv(r.value, { SSH_AUTH_SOCK: '/tmp/agent.sock' });
    expect(te.ssh?.hosts['edge-1']).toEqual({ host: '10.0.0.5', port: 22, user: 'ops', identityFile: '/home/tester/.ssh/id_ed25519', knownHosts: '/home/tester/.ssh/known_hosts' });
    expect(te.kubernetes?.defaultContext).toBe('minikube');
    expect(te.compose?.projects.shop?.file).toBe('/srv/shop/docker-compose.yml');
    expect(te.baseEnv).toEqual({ SSH_AUTH_SOCK: '/tmp/agent.sock' });
  });
});
