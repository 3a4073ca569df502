import { describe, it, expect } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CallScope, OpClass, ToolCall, ToolName } from '../../tools/types.js';
import { parseCommandLine } from '../../tools/parse-command.js';
import { parseConfigText, toToolEnv, type Config, type Mode } from '../core/config.js';
import { parseTask } from '../core/task-parse.js';
import { blockedHost, decide, hostMatches, parseIpv6, RULES, type ApprovalView } from '../core/policy.js';
import { parseAgentScope, scopeOutsideConfig, type AgentScope } from '../core/scope.js';

const EXAMPLE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../examples/opscrew.config.yaml');

function exampleConfig(): Config {
  const r = parseConfigText(fs.readFileSync(EXAMPLE, 'utf8'), { file: EXAMPLE, workspaceDir: '/ws', env: { HOME: '/home/t' } });
  if (!r.ok) throw new Error(r.message);
  return r.value;
}
const config = exampleConfig();
const NOW = 1_700_000_000_000;

function call(tool: ToolName, verb: string, cls: OpClass, scope: CallScope, extra: Partial<ToolCall> = {}): ToolCall {
  return { tool, verb, args: [], class: cls, scope, canonical: `${tool} ${verb} ${JSON.stringify(scope)}`, pipeline: [], ...extra };
}
const kube = (verb: string, cls: OpClass, context: string | undefined, namespace: string | undefined): ToolCall =>
  call('kubectl', verb, cls, { ...(context ? { context } : {}), ...(namespace ? { namespace } : {}) });
const remote = (host: string, inner: ToolCall): ToolCall =>
  call('ssh', 'exec', inner.class, { host }, { remote: inner, canonical: `ssh ${host} ${inner.canonical}` });

const k8s: AgentScope = { name: 'k8s-specialist', tools: { kubectl: { mode: 'mutate', contexts: ['staging'], namespaces: ['orders'] } } };
const devops: AgentScope = {
  name: 'devops-specialist',
  tools: {
    compose: { mode: 'mutate', projects: ['shop'] },
    docker: { mode: 'read' },
    ssh: { mode: 'destructive', hosts: ['edge-1'] },
    systemctl: { mode: 'destructive' },
    journalctl: { mode: 'read' },
    http: { mode: 'mutate' },
    files: { mode: 'destructive', paths: ['/srv/shop'] },
  },
};
const k8sOrders: AgentScope = { name: 'x', tools: { kubectl: { mode: 'mutate', namespaces: ['orders'] } } };
const secrets: AgentScope = { name: 'secrets-specialist', tools: { vault: { mode: 'destructive', vault_paths: ['kv/deploy'] } } };
const watcher: AgentScope = { name: 'observability-specialist', tools: { http: { mode: 'read', http_hosts: ['127.0.0.1', '*.example.org'] }, kubectl: { mode: 'read' } } };

interface Row {
  name: string;
  call: ToolCall;
  scope: AgentScope | 'person';
  mode?: Mode;
  approvals?: ApprovalView[];
  verdict: 'allow' | 'needs-approval' | 'deny';
  rule: string;
}

const rows: Row[] = [
  // modes
  { name: 'read-only mode allows reads', call: kube('get', 'read', 'staging', 'orders'), scope: 'person', mode: 'read-only', verdict: 'allow', rule: 'class.read' },
  { name: 'read-only mode denies mutate', call: kube('scale', 'mutate', 'staging', 'orders'), scope: 'person', mode: 'read-only', verdict: 'deny', rule: 'mode.read-only' },
  { name: 'read-only mode denies sensitive-read', call: kube('exec', 'sensitive-read', 'staging', 'orders'), scope: 'person', mode: 'read-only', verdict: 'deny', rule: 'mode.read-only' },
  { name: 'read-only mode checks before scope', call: call('vault', 'kv put', 'mutate', { vaultPath: 'kv/other' }), scope: k8s, mode: 'read-only', verdict: 'deny', rule: 'mode.read-only' },
  { name: 'standard allows mutate', call: kube('scale', 'mutate', 'staging', 'orders'), scope: k8s, verdict: 'allow', rule: 'class.mutate' },
  { name: 'standard: destructive needs approval', call: kube('delete', 'destructive', 'staging', 'orders'), scope: 'person', verdict: 'needs-approval', rule: 'approval.required' },
  { name: 'standard: sensitive-read needs approval', call: kube('exec', 'sensitive-read', 'staging', 'orders'), scope: k8s, verdict: 'needs-approval', rule: 'approval.required' },
  { name: 'full mode: destructive allowed', call: kube('delete', 'destructive', 'staging', 'orders'), scope: 'person', mode: 'full', verdict: 'allow', rule: 'mode.full' },
  { name: 'full mode: sensitive-read allowed', call: kube('exec', 'sensitive-read', 'staging', 'orders'), scope: k8s, mode: 'full', verdict: 'allow', rule: 'mode.full' },
  { name: 'kubectl exec needs a specialist with kubectl mode mutate, even in full mode', call: kube('exec', 'sensitive-read', 'staging', 'orders'), scope: watcher, mode: 'full', verdict: 'deny', rule: 'scope.class' },
  { name: 'a read-mode specialist may still get (read)', call: kube('get', 'read', 'staging', 'orders'), scope: watcher, verdict: 'allow', rule: 'class.read' },
  { name: 'full mode still enforces scope', call: kube('delete', 'destructive', 'staging', 'orders'), scope: k8s, mode: 'full', verdict: 'deny', rule: 'scope.class' },
  // tools and classes
  { name: 'tool not in scope', call: call('vault', 'kv get', 'sensitive-read', { vaultPath: 'kv/deploy' }), scope: k8s, verdict: 'deny', rule: 'scope.tool' },
  { name: 'class above the tool mode', call: kube('delete', 'destructive', 'staging', 'orders'), scope: k8s, verdict: 'deny', rule: 'scope.class' },
  { name: 'read mode allows a read', call: kube('get', 'read', 'minikube', 'ffl'), scope: watcher, verdict: 'allow', rule: 'class.read' },
  { name: 'read mode refuses mutate', call: kube('scale', 'mutate', 'minikube', 'ffl'), scope: watcher, verdict: 'deny', rule: 'scope.class' },
  // kubernetes
  { name: 'context not configured', call: kube('get', 'read', 'prod', 'default'), scope: 'person', verdict: 'deny', rule: 'scope.context' },
  { name: 'context configured but not in scope', call: kube('get', 'read', 'minikube', 'ffl'), scope: k8s, verdict: 'deny', rule: 'scope.context' },
  { name: 'no context: config default used', call: kube('get', 'read', undefined, 'ffl'), scope: 'person', verdict: 'allow', rule: 'class.read' },
  { name: 'no context: default not in scope', call: kube('get', 'read', undefined, 'orders'), scope: k8s, verdict: 'deny', rule: 'scope.context' },
  { name: 'namespace not configured', call: kube('get', 'read', 'staging', 'kube-system'), scope: 'person', verdict: 'deny', rule: 'scope.namespace' },
  { name: 'namespace configured but not in scope', call: kube('get', 'read', 'staging', 'default'), scope: k8s, verdict: 'deny', rule: 'scope.namespace' },
  { name: '-A refused unless the list is *', call: kube('get', 'read', 'staging', '*'), scope: 'person', verdict: 'deny', rule: 'scope.namespace' },
  // compose
  { name: 'compose project configured and in scope', call: call('compose', 'restart', 'mutate', { project: 'shop' }), scope: devops, verdict: 'allow', rule: 'class.mutate' },
  { name: 'compose project configured, not in scope', call: call('compose', 'restart', 'mutate', { project: 'deploy' }), scope: devops, verdict: 'deny', rule: 'scope.project' },
  { name: 'compose project not configured', call: call('compose', 'ps', 'read', { project: 'billing' }), scope: 'person', verdict: 'deny', rule: 'scope.project' },
  { name: 'compose without a project', call: call('compose', 'ps', 'read', {}), scope: 'person', verdict: 'deny', rule: 'scope.project' },
  { name: 'compose down needs approval', call: call('compose', 'down', 'destructive', { project: 'shop' }), scope: 'person', verdict: 'needs-approval', rule: 'approval.required' },
  { name: 'docker ps is a plain read', call: call('docker', 'ps', 'read', {}), scope: devops, verdict: 'allow', rule: 'class.read' },
  // ssh and remote calls
  { name: 'ssh host configured, remote read', call: remote('edge-1', call('systemctl', 'status', 'read', {})), scope: devops, verdict: 'allow', rule: 'class.read' },
  { name: 'ssh host not configured', call: remote('edge-9', call('systemctl', 'status', 'read', {})), scope: 'person', verdict: 'deny', rule: 'scope.host' },
  { name: 'ssh remote destructive needs approval', call: remote('edge-1', call('systemctl', 'disable', 'destructive', {})), scope: devops, verdict: 'needs-approval', rule: 'approval.required' },
  { name: 'ssh remote tool outside scope', call: remote('edge-1', call('compose', 'ps', 'read', { project: 'shop' })), scope: { name: 'a', tools: { ssh: { mode: 'mutate' } } }, verdict: 'deny', rule: 'scope.tool' },
  { name: 'ssh remote class above the ssh mode', call: remote('edge-1', call('systemctl', 'restart', 'mutate', {})), scope: { name: 'a', tools: { ssh: { mode: 'read' }, systemctl: { mode: 'mutate' } } }, verdict: 'deny', rule: 'scope.class' },
  { name: 'ssh remote files outside roots', call: remote('edge-1', call('files', 'cat', 'read', { paths: ['/etc/shadow'] })), scope: 'person', verdict: 'deny', rule: 'scope.path' },
  { name: 'ssh remote tool host list excludes host', call: remote('edge-1', call('journalctl', 'show', 'read', {})), scope: { name: 'a', tools: { ssh: { mode: 'read' }, journalctl: { mode: 'read', hosts: ['local'] } } }, verdict: 'deny', rule: 'scope.host' },
  { name: 'interactive ssh', call: call('ssh', 'exec', 'read', { host: 'edge-1' }), scope: 'person', verdict: 'deny', rule: 'ssh.remote' },
  { name: 'nested ssh', call: remote('edge-1', remote('edge-1', call('systemctl', 'status', 'read', {}))), scope: 'person', verdict: 'deny', rule: 'ssh.nested' },
  { name: 'local systemctl refused when the scope lists only hosts', call: call('systemctl', 'status', 'read', {}), scope: { name: 'a', tools: { systemctl: { mode: 'read', hosts: ['edge-1'] } } }, verdict: 'deny', rule: 'scope.host' },
  { name: 'local systemctl allowed with host `local`', call: call('systemctl', 'status', 'read', {}), scope: { name: 'a', tools: { systemctl: { mode: 'read', hosts: ['local'] } } }, verdict: 'allow', rule: 'class.read' },
  // vault
  { name: 'vault path under a prefix', call: call('vault', 'kv put', 'mutate', { vaultPath: 'kv/deploy/webhook' }), scope: secrets, verdict: 'allow', rule: 'class.mutate' },
  { name: 'vault prefix is per segment', call: call('vault', 'kv put', 'mutate', { vaultPath: 'kv/deployer' }), scope: 'person', verdict: 'deny', rule: 'scope.vault-path' },
  { name: 'vault path traversal', call: call('vault', 'kv put', 'mutate', { vaultPath: 'kv/deploy/../prod' }), scope: 'person', verdict: 'deny', rule: 'scope.vault-path' },
  { name: 'vault get needs approval', call: call('vault', 'kv get', 'sensitive-read', { vaultPath: 'kv/deploy' }), scope: secrets, verdict: 'needs-approval', rule: 'approval.required' },
  { name: 'vault path narrowed by scope', call: call('vault', 'kv metadata get', 'read', { vaultPath: 'kv/deploy' }), scope: { name: 'a', tools: { vault: { mode: 'read', vault_paths: ['kv/deploy/app'] } } }, verdict: 'deny', rule: 'scope.vault-path' },
  // files
  { name: 'file inside root and scope', call: call('files', 'cat', 'read', { paths: ['/srv/shop/app.env'] }), scope: devops, verdict: 'allow', rule: 'class.read' },
  { name: 'file traversal out of root', call: call('files', 'cat', 'read', { paths: ['/srv/../etc/passwd'] }), scope: 'person', verdict: 'deny', rule: 'scope.path' },
  { name: 'file root prefix is per segment', call: call('files', 'cat', 'read', { paths: ['/srvx/a'] }), scope: 'person', verdict: 'deny', rule: 'scope.path' },
  { name: 'relative path', call: call('files', 'cat', 'read', { paths: ['srv/a'] }), scope: 'person', verdict: 'deny', rule: 'scope.path' },
  { name: 'file inside root, outside scope', call: call('files', 'cp', 'mutate', { paths: ['/srv/deploy/x'] }), scope: devops, verdict: 'deny', rule: 'scope.path' },
  { name: 'rm needs approval', call: call('files', 'rm', 'destructive', { paths: ['/srv/shop/old'] }), scope: devops, verdict: 'needs-approval', rule: 'approval.required' },
  // http
  { name: 'http GET anywhere', call: call('http', 'GET', 'read', { url: 'https://status.other.net/x', method: 'GET' }), scope: devops, verdict: 'allow', rule: 'class.read' },
  { name: 'http metadata address', call: call('http', 'GET', 'read', { url: 'http://169.254.169.254/latest/meta-data/', method: 'GET' }), scope: 'person', verdict: 'deny', rule: 'http.address' },
  { name: 'http decimal metadata address', call: call('http', 'GET', 'read', { url: 'http://2852039166/', method: 'GET' }), scope: 'person', verdict: 'deny', rule: 'http.address' },
  { name: 'http mapped IPv6 metadata', call: call('http', 'GET', 'read', { url: 'http://[::ffff:169.254.169.254]/', method: 'GET' }), scope: 'person', verdict: 'deny', rule: 'http.address' },
  { name: 'http unspecified', call: call('http', 'GET', 'read', { url: 'http://0.0.0.0:8080/', method: 'GET' }), scope: 'person', verdict: 'deny', rule: 'http.address' },
  { name: 'http link-local v6', call: call('http', 'GET', 'read', { url: 'http://[fe80::1]/', method: 'GET' }), scope: 'person', verdict: 'deny', rule: 'http.address' },
  { name: 'http metadata name', call: call('http', 'GET', 'read', { url: 'http://metadata.google.internal/', method: 'GET' }), scope: 'person', verdict: 'deny', rule: 'http.address' },
  { name: 'http non-http scheme', call: call('http', 'GET', 'read', { url: 'file:///etc/passwd', method: 'GET' }), scope: 'person', verdict: 'deny', rule: 'http.scheme' },
  { name: 'http POST to allowed host', call: call('http', 'POST', 'mutate', { url: 'http://127.0.0.1:9000/hook', method: 'POST' }), scope: devops, verdict: 'allow', rule: 'class.mutate' },
  { name: 'http POST to wildcard host', call: call('http', 'POST', 'mutate', { url: 'https://api.example.org/hook', method: 'POST' }), scope: 'person', verdict: 'allow', rule: 'class.mutate' },
  { name: 'http POST elsewhere', call: call('http', 'POST', 'mutate', { url: 'https://evil.net/hook', method: 'POST' }), scope: 'person', verdict: 'deny', rule: 'http.allow' },
  { name: 'http wildcard excludes apex', call: call('http', 'POST', 'mutate', { url: 'https://example.org/hook', method: 'POST' }), scope: 'person', verdict: 'deny', rule: 'http.allow' },
  { name: 'http host narrowed by scope', call: call('http', 'GET', 'read', { url: 'https://other.net/', method: 'GET' }), scope: watcher, verdict: 'deny', rule: 'scope.http-host' },
  // self protection
  { name: 'files cannot change the config', call: call('files', 'write', 'mutate', { paths: ['/ws/opscrew.config.yaml'] }), scope: 'person', verdict: 'deny', rule: 'policy.self-protect' },
];

describe('decide: one row per rule', () => {
  // The self-protect row needs the workspace inside a files root.
  const cfgWithWs: Config = { ...config, files: { roots: [...config.files.roots, '/ws'] } };
  for (const r of rows) {
    it(`${r.name} → ${r.verdict} (${r.rule})`, () => {
      const d = decide({ call: r.call, config: cfgWithWs, scope: r.scope, approvals: r.approvals ?? [], now: NOW, ...(r.mode ? { mode: r.mode } : {}) });
      expect({ verdict: d.verdict, rule: d.rule }).toEqual({ verdict: r.verdict, rule: r.rule });
      expect(RULES).toContain(d.rule);
      expect(d.reason.length).toBeGreaterThan(10);
    });
  }

  it('-A is allowed where config and scope both allow "*"', () => {
    const cfg: Config = { ...config, kubernetes: { ...config.kubernetes, contexts: { lab: { namespaces: ['*'] } } } };
    expect(decide({ call: kube('get', 'read', 'lab', '*'), config: cfg, scope: 'person', approvals: [], now: NOW }).verdict).toBe('allow');
    const narrow: AgentScope = { name: 'n', tools: { kubectl: { mode: 'read', namespaces: ['a'] } } };
    expect(decide({ call: kube('get', 'read', 'lab', '*'), config: cfg, scope: narrow, approvals: [], now: NOW }).rule).toBe('scope.namespace');
  });

  it('denial reasons say what to do instead', () => {
    const d = decide({ call: kube('get', 'read', 'staging', 'kube-system'), config, scope: 'person', approvals: [], now: NOW });
    expect(d.reason).toContain('default, orders');
    const t = decide({ call: call('vault', 'kv get', 'read', { vaultPath: 'kv/deploy' }), config, scope: k8s, approvals: [], now: NOW });
    expect(t.reason).toContain('kubectl');
  });

  it('every rule id in the table is a known rule', () => {
    const used = new Set(rows.map((r) => r.rule));
    for (const u of used) expect(RULES).toContain(u);
  });
});

describe('decide: approvals', () => {
  const del = kube('delete', 'destructive', 'staging', 'orders');
  const ap = (over: Partial<ApprovalView>): ApprovalView => ({ id: 'apr-1', canonical: del.canonical, state: 'approved', source: 'task-file', expiresMs: NOW + 60_000, ...over });

  it('a matching approval allows and names itself', () => {
    const d = decide({ call: del, config, scope: 'person', approvals: [ap({})], now: NOW });
    expect(d).toMatchObject({ verdict: 'allow', rule: 'approval.granted', approvalId: 'apr-1' });
  });

  it('task-file approvals are preferred', () => {
    const d = decide({ call: del, config, scope: 'person', approvals: [ap({ id: 'apr-p', source: 'person', decidedBy: 'alice' }), ap({ id: 'apr-t' })], now: NOW });
    expect(d.approvalId).toBe('apr-t');
  });

  it.each([
    ['a different canonical command', { canonical: del.canonical + ' --force' }],
    ['an expired approval', { expiresMs: NOW }],
    ['a used approval', { state: 'used' as const }],
    ['a pending request', { state: 'pending' as const }],
    ['a denied request', { state: 'denied' as const }],
  ])('%s does not count', (_n, over) => {
    const d = decide({ call: del, config, scope: 'person', approvals: [ap(over)], now: NOW });
    expect(d).toMatchObject({ verdict: 'needs-approval', rule: 'approval.required' });
    expect(d.approvalId).toBeUndefined();
  });

  it('self-approval is impossible: an approval decided by the calling agent is ignored', () => {
    const exec = kube('exec', 'sensitive-read', 'staging', 'orders');
    const self = { id: 'apr-s', canonical: exec.canonical, state: 'approved' as const, source: 'person' as const, expiresMs: NOW + 1000, requestedBy: 'k8s-specialist', decidedBy: 'k8s-specialist' };
    expect(decide({ call: exec, config, scope: k8s, approvals: [self], now: NOW }).verdict).toBe('needs-approval');
    // Even when the row does not say who requested it.
    expect(decide({ call: exec, config, scope: k8s, approvals: [{ ...self, requestedBy: null }], now: NOW }).verdict).toBe('needs-approval');
    // A person's decision on the agent's request counts.
    expect(decide({ call: exec, config, scope: k8s, approvals: [{ ...self, decidedBy: 'alice' }], now: NOW }).verdict).toBe('allow');
  });

  it('with a task id, only approvals bound to that task count', () => {
    const a = ap({ taskId: 'TASK-001' });
    expect(decide({ call: del, config, scope: 'person', approvals: [a], now: NOW, taskId: 'TASK-001' }).verdict).toBe('allow');
    expect(decide({ call: del, config, scope: 'person', approvals: [a], now: NOW, taskId: 'TASK-002' }).verdict).toBe('needs-approval');
    expect(decide({ call: del, config, scope: 'person', approvals: [a], now: NOW, taskId: null }).verdict).toBe('needs-approval');
  });

  it('an approval never widens scope', () => {
    const outside = kube('delete', 'destructive', 'staging', 'kube-system');
    const d = decide({ call: outside, config, scope: 'person', approvals: [ap({ canonical: outside.canonical })], now: NOW });
    expect(d).toMatchObject({ verdict: 'deny', rule: 'scope.namespace' });
  });
});

describe('scopes only narrow the config', () => {
  it('a scope listing an unconfigured context still cannot use it', () => {
    const wide: AgentScope = { name: 'w', tools: { kubectl: { mode: 'destructive', contexts: ['prod'], namespaces: ['*'] } } };
    expect(decide({ call: kube('get', 'read', 'prod', 'default'), config, scope: wide, approvals: [], now: NOW }).rule).toBe('scope.context');
    expect(decide({ call: kube('get', 'read', 'staging', '*'), config, scope: wide, approvals: [], now: NOW }).rule).toBe('scope.context');
    expect(scopeOutsideConfig(wide, config)).toEqual(['tools.kubectl.contexts: context "prod" is not in the config\'s kubernetes.contexts']);
  });

  it('a scope wildcard namespace does not widen the config list', () => {
    const wide: AgentScope = { name: 'w', tools: { kubectl: { mode: 'read', namespaces: ['*'] } } };
    expect(decide({ call: kube('get', 'read', 'staging', 'kube-system'), config, scope: wide, approvals: [], now: NOW }).rule).toBe('scope.namespace');
  });

  it('parses profile front matter scopes and rejects unknown keys', () => {
    const ok = parseAgentScope({ name: 'k8s', tools: { kubectl: { mode: 'mutate', contexts: ['staging'] } } });
    expect(ok.success && ok.data.tools.kubectl).toEqual({ mode: 'mutate', contexts: ['staging'] });
    const bad = parseAgentScope({ name: 'k8s', tools: { kubectl: { mode: 'mutate', namespace: ['x'] } } });
    expect(bad.success).toBe(false);
    const badTool = parseAgentScope({ name: 'k8s', tools: { kubectll: { mode: 'read' } } });
    expect(badTool.success).toBe(false);
    const defaultMode = parseAgentScope({ name: 'k8s', tools: { http: {} } });
    expect(defaultMode.success && defaultMode.data.tools.http?.mode).toBe('read');
  });
});

describe('decide is pure', () => {
  it('returns the same decision for the same input and does not mutate it', () => {
    const input = { call: kube('delete', 'destructive', 'staging', 'orders'), config, scope: k8s, approvals: [], now: NOW };
    const before = JSON.stringify(input);
    const a = decide(input);
    const b = decide(input);
    expect(a).toEqual(b);
    expect(JSON.stringify(input)).toBe(before);
  });
});

describe('address helpers', () => {
  it('parses IPv6 forms', () => {
    expect(parseIpv6('::')).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    expect(parseIpv6('fe80::1')).toEqual([0xfe80, 0, 0, 0, 0, 0, 0, 1]);
    expect(parseIpv6('::ffff:169.254.169.254')).toEqual([0, 0, 0, 0, 0, 0xffff, 0xa9fe, 0xa9fe]);
    expect(parseIpv6('1:2:3:4:5:6:7:8')).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(parseIpv6('1::2::3')).toBeNull();
    expect(parseIpv6('example.org')).toBeNull();
  });

  it('blocks link-local, metadata and unspecified; lets loopback and public through', () => {
    for (const h of ['169.254.1.1', '[fd00:ec2::254]', '[::]', '0.0.0.0', '[64:ff9b::a9fe:a9fe]', '100.100.100.200', 'METADATA.google.internal.']) {
      expect(blockedHost(h), h).not.toBeNull();
    }
    for (const h of ['127.0.0.1', '[::1]', '10.0.0.5', 'example.org', '[2001:db8::1]']) expect(blockedHost(h), h).toBeNull();
  });

  it('matches host patterns', () => {
    expect(hostMatches('a.b.example.org', '*.example.org')).toBe(true);
    expect(hostMatches('example.org', '*.example.org')).toBe(false);
    expect(hostMatches('badexample.org', '*.example.org')).toBe(false);
    expect(hostMatches('[::1]', '::1')).toBe(true);
  });
});

describe('decide on calls from the real parser', () => {
  const narrow: Config = {
    ...config,
    kubernetes: { ...config.kubernetes, default_context: undefined, contexts: { staging: { namespaces: ['orders'] }, lab: { namespaces: ['*'] } } },
  };
  const decideLine = (line: string, scope: AgentScope | 'person', cfg: Config = narrow, mode?: Mode) => {
    const parsed = parseCommandLine(line, { vars: { DEPLOY: 'deploy/orders-api' }, env: toToolEnv(cfg, {}) });
    if (!parsed.ok) throw new Error(`${line}: ${parsed.message}`);
    return decide({ call: parsed.value, config: cfg, scope, approvals: [], now: NOW, ...(mode ? { mode } : {}) });
  };

  it.each([
    ['deleting another namespace from inside an allowed one', 'kubectl --context staging -n orders delete namespace kube-system', 'person', 'deny', 'scope.namespace'],
    ['deleting a namespace by TYPE/NAME', 'kubectl --context staging delete ns/kube-system', 'person', 'deny', 'scope.namespace'],
    ['deleting an allowed namespace', 'kubectl --context staging delete ns/orders', 'person', 'needs-approval', 'approval.required'],
    ['labelling an allowed namespace', 'kubectl --context staging label ns orders team=shop', 'person', 'allow', 'class.mutate'],
    ['creating a namespace outside the list', 'kubectl --context staging create namespace foo', 'person', 'deny', 'scope.namespace'],
    ['deleting every namespace', 'kubectl --context staging delete namespaces --all', 'person', 'deny', 'scope.namespace'],
    ['cordoning a node without cluster rights', 'kubectl --context staging cordon node1', 'person', 'deny', 'scope.cluster'],
    ['cordoning a node where every namespace is allowed', 'kubectl --context lab cordon node1', 'person', 'allow', 'class.mutate'],
    ['reading nodes needs no namespace', 'kubectl --context staging get nodes', 'person', 'allow', 'class.read'],
    ['reading pods in the implicit default namespace', 'kubectl --context staging get pods', 'person', 'deny', 'scope.namespace'],
    ['a mutate-mode specialist deleting a namespace', 'kubectl --context staging -n orders delete namespace orders', k8s, 'deny', 'scope.class'],
    ['a specialist creating a namespace beyond its scope', 'kubectl --context staging -n orders create namespace orders-2', k8sOrders, 'deny', 'scope.namespace'],
    ['remote destructive systemctl', 'ssh edge-1 systemctl disable --now tunnel-legacy.service', devops, 'needs-approval', 'approval.required'],
    ['remote cat outside the file roots', 'ssh edge-1 cat /etc/hostname', 'person', 'deny', 'scope.path'],
    ['compose restart in scope', 'docker compose -p shop restart web', devops, 'allow', 'class.mutate'],
    ['a pipeline into a filter keeps the class', 'kubectl --context staging -n orders get pods -o json | jq .items', 'person', 'allow', 'class.read'],
  ] as const)('%s', (_n, line, scope, verdict, rule) => {
    const d = decideLine(line, scope);
    expect({ verdict: d.verdict, rule: d.rule }).toEqual({ verdict, rule });
  });

  it('every command of the example tasks is runnable by a person under the example config', () => {
    const dir = path.resolve(path.dirname(EXAMPLE), 'tasks');
    const lines: string[] = [];
    for (const f of fs.readdirSync(dir).filter((n) => n.endsWith('.md'))) {
      const r = parseTask(fs.readFileSync(path.join(dir, f), 'utf8'), f);
      if (!r.ok) throw new Error(`${f}: ${JSON.stringify(r.issues)}`);
      const vars: Record<string, string> = {};
      const items = [...r.task.preflight, ...r.task.steps, ...r.task.rollback, ...r.task.criteria.flatMap((c) => (c.kind === 'verify' ? c.items : []))];
      for (const it of items) {
        if (it.kind === 'export') vars[it.name] = it.value;
        if (it.kind !== 'command') continue;
        const parsed = parseCommandLine(it.text, { vars, env: toToolEnv(config, {}) });
        if (!parsed.ok) throw new Error(`${f}:${it.line}: ${parsed.message}`);
        const d = decide({ call: parsed.value, config, scope: 'person', approvals: [], now: NOW });
        lines.push(`${f}:${it.line} ${d.verdict} ${d.rule}`);
        expect(d.verdict, `${f}:${it.line} ${it.text}: ${d.reason}`).not.toBe('deny');
      }
    }
    expect(lines.length).toBeGreaterThan(10);
  });
});
