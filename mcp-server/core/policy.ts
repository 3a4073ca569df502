// The policy engine: ONE pure function from (call, config, scope, approvals, mode, now) to a
// decision and the rule that made it. No I/O, no clock: everything it needs is passed in, so
// `opscrew check-command` and the gate that really runs commands can never disagree.
import * as posix from 'node:path/posix';
import { hasHandles } from '../../tools/secret-broker.js';
import type { OpClass, ToolCall, ToolName } from '../../tools/types.js';
import type { Config, Mode } from './config.js';
import { LOCAL_HOST, scopeModeRank, scopeName, toolScope, type AgentScope, type ToolScope } from './scope.js';

export type Verdict = 'allow' | 'needs-approval' | 'deny';

export interface Decision {
  verdict: Verdict;
  /** Stable id of the rule that decided, e.g. `scope.namespace` (RULES; the gate adds `parse.*`, `approval.unusable`). */
  rule: string;
  /** For a person or a model: what happened and what may be done instead. */
  reason: string;
  /** Set when an approval made the call allowed; the caller must consume it. */
  approvalId?: string;
}

export const APPROVAL_STATES = ['pending', 'approved', 'denied', 'used', 'expired'] as const;
export type ApprovalState = (typeof APPROVAL_STATES)[number];
export type ApprovalSource = 'task-file' | 'person';

/** What the policy needs to know about an approval (store rows map onto it). */
export interface ApprovalView {
  id: string;
  canonical: string;
  state: ApprovalState;
  source: ApprovalSource;
  expiresMs: number;
  taskId?: string | null;
  /** The agent whose call asked for it (null for task-file approvals). */
  requestedBy?: string | null;
  decidedBy?: string | null;
}

export interface DecideInput {
  call: ToolCall;
  config: Config;
  scope: AgentScope | 'person';
  approvals: readonly ApprovalView[];
  /** Overrides config.mode (e.g. `--mode read-only` for one run). */
  mode?: Mode;
  now: number;
  /** When given, only approvals bound to this task count (null = approvals bound to no task). */
  taskId?: string | null;
}

/** Every rule id decide() can return. Stable: tests, audit rows and CLIs match on them. */
export const RULES = [
  'mode.read-only',
  'scope.tool',
  'scope.class',
  'scope.context',
  'scope.namespace',
  'scope.cluster',
  'scope.project',
  'scope.host',
  'scope.vault-path',
  'scope.path',
  'scope.http-host',
  'ssh.remote',
  'ssh.nested',
  'http.url',
  'http.scheme',
  'http.address',
  'http.allow',
  'policy.self-protect',
  'approval.required',
  'approval.granted',
  'mode.full',
  'class.read',
  'class.mutate',
] as const;
export type RuleId = (typeof RULES)[number];

const CLASS_RANK: Record<OpClass, number> = { read: 0, 'sensitive-read': 0, mutate: 1, destructive: 2 };
const CLASS_ORDER: Record<OpClass, number> = { read: 0, 'sensitive-read': 1, mutate: 2, destructive: 3 };
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
const CONFIG_HINT = 'ask a person to add it to opscrew.config.yaml';

/** The riskiest class of a call and of the call it carries (ssh). */
export function effectiveClass(call: ToolCall): OpClass {
  let c = call.class;
  for (let r = call.remote; r; r = r.remote) if (CLASS_ORDER[r.class] > CLASS_ORDER[c]) c = r.class;
  return c;
}

function deny(rule: RuleId, reason: string): Decision {
  return { verdict: 'deny', rule, reason };
}

export function decide(input: DecideInput): Decision {
  const { call, config, scope, now } = input;
  const mode = input.mode ?? config.mode;
  const cls = effectiveClass(call);
  const who = scopeName(scope);

  if (mode === 'read-only' && cls !== 'read') {
    return deny('mode.read-only', `the workspace is in read-only mode: only read calls run, and \`${call.canonical}\` is ${cls}; use a read command (get, status, logs) or ask a person to switch mode`);
  }

  const denied = checkCall(call, { config, scope, who, cls, viaHost: undefined });
  if (denied) return denied;

  if (mode === 'full') return { verdict: 'allow', rule: 'mode.full', reason: `full mode: ${cls} call allowed without approval` };

  if (cls === 'destructive' || cls === 'sensitive-read') {
    const pool = input.taskId === undefined ? input.approvals : input.approvals.filter((a) => (a.taskId ?? null) === input.taskId);
    const match = findApproval(pool, call.canonical, scope, now);
    if (match) {
      return { verdict: 'allow', rule: 'approval.granted', reason: `${cls} call allowed by approval ${match.id} (${match.source})`, approvalId: match.id };
    }
    return {
      verdict: 'needs-approval',
      rule: 'approval.required',
      reason: `${cls} calls need a person's approval in standard mode: add the exact line to the task's \`approve:\` list, or wait for a person to run \`opscrew approve <request-id>\``,
    };
  }
  return { verdict: 'allow', rule: cls === 'read' ? 'class.read' : 'class.mutate', reason: `${cls} call within ${who}'s scope` };
}

/** The first usable approval: exact canonical command, approved (not yet used), not expired, not self-approved. Task-file approvals first. */
export function findApproval(
  approvals: readonly ApprovalView[],
  canonical: string,
  scope: AgentScope | 'person',
  now: number,
): ApprovalView | undefined {
  const usable = approvals.filter(
    (a) =>
      a.canonical === canonical &&
      a.state === 'approved' &&
      a.expiresMs > now &&
      // An agent can never approve its own request, whatever a row claims.
      !(a.decidedBy != null && a.requestedBy != null && a.decidedBy === a.requestedBy) &&
      !(scope !== 'person' && a.decidedBy != null && a.decidedBy === scope.name),
  );
  return usable.find((a) => a.source === 'task-file') ?? usable[0];
}

interface CheckCtx {
  config: Config;
  scope: AgentScope | 'person';
  who: string;
  cls: OpClass;
  /** Set while checking the remote call of `ssh HOST ...`. */
  viaHost: string | undefined;
}

function listOf(xs: readonly string[]): string {
  return xs.length ? xs.join(', ') : '(none)';
}

function inScope(list: readonly string[] | undefined, value: string): boolean {
  return list === undefined || list.includes(value) || list.includes('*');
}

function checkCall(call: ToolCall, ctx: CheckCtx): Decision | undefined {
  const where = ctx.viaHost ? ` on ${ctx.viaHost}` : '';
  const ts = toolScope(ctx.scope, call.tool);
  if (!ts) {
    const have = ctx.scope === 'person' ? [] : (Object.keys(ctx.scope.tools) as ToolName[]);
    return deny('scope.tool', `${ctx.who} may not use ${call.tool}${where}; its tools are: ${listOf(have)}. Use one of those, or leave the step to a specialist that has ${call.tool}`);
  }
  const cls = ctx.viaHost ? effectiveClass(call) : ctx.cls;
  // `kubectl exec` is a sensitive read by class (it shows what a container holds), but it runs an
  // arbitrary command inside the container: only a specialist trusted to change things may ask for it.
  if (call.tool === 'kubectl' && call.verb === 'exec' && scopeModeRank(ts.mode) < CLASS_RANK.mutate) {
    return deny('scope.class', `${ctx.who} may use kubectl only up to ${ts.mode}, and \`kubectl exec\` runs a command inside a container; look with get/describe/logs instead, or leave the step to a specialist with kubectl mode mutate`);
  }
  if (CLASS_RANK[cls] > scopeModeRank(ts.mode)) {
    return deny('scope.class', `${ctx.who} may use ${call.tool} only up to ${ts.mode}, and \`${call.canonical}\` is ${cls}; use a ${ts.mode === 'read' ? 'read' : ts.mode + ' or milder'} command, or leave the step to a specialist with a wider mode`);
  }
  return (
    checkKube(call, ts, ctx) ??
    checkProject(call, ts, ctx) ??
    checkHost(call, ts, ctx) ??
    checkVault(call, ts, ctx) ??
    checkPaths(call, ts, ctx) ??
    checkHttp(call, ts, ctx) ??
    checkRemote(call, ctx)
  );
}

function checkKube(call: ToolCall, ts: ToolScope, ctx: CheckCtx): Decision | undefined {
  const k = ctx.config.kubernetes;
  const configured = Object.keys(k.contexts);
  const context = call.scope.context ?? (call.tool === 'kubectl' ? k.default_context : undefined);
  if (context === undefined) {
    if (call.tool === 'kubectl' || call.scope.namespace !== undefined) {
      return deny('scope.context', `\`${call.canonical}\` names no kube context and the config sets no kubernetes.default_context; add --context with one of: ${listOf(configured)}`);
    }
    return undefined;
  }
  const c = k.contexts[context];
  if (!c) {
    return deny('scope.context', `kube context "${context}" is not configured (configured: ${listOf(configured)}); use one of those or ${CONFIG_HINT}`);
  }
  if (!inScope(ts.contexts, context)) {
    return deny('scope.context', `${ctx.who} may not use kube context "${context}" (its contexts: ${listOf(ts.contexts ?? [])})`);
  }
  const allowAll = c.namespaces.includes('*') && (ts.namespaces === undefined || ts.namespaces.includes('*'));
  const mutating = CLASS_RANK[effectiveClass(call)] > 0;
  const targets = kubeTargets(call);
  // Cluster-wide objects (nodes, clusterroles, CRDs...) belong to no namespace: changing them
  // needs every namespace allowed; reading them is as harmless as any read in the context.
  if (targets.clusterKinds.length > 0 && mutating && !allowAll) {
    return deny('scope.cluster', `\`${call.canonical}\` changes cluster-wide objects (${targets.clusterKinds.join(', ')}), which needs every namespace of "${context}" allowed; change namespaced objects in ${listOf(ts.namespaces ?? c.namespaces)} instead`);
  }
  // A namespace object is checked by its own name, not by the -n the call runs in.
  if (targets.namespaceKind && mutating) {
    if (targets.namespaceNames.length === 0 && !allowAll) {
      return deny('scope.namespace', `\`${call.canonical}\` changes namespaces without naming them; name each namespace (allowed: ${listOf(c.namespaces)})`);
    }
    for (const n of targets.namespaceNames) {
      const d = checkNamespace(n, context, c.namespaces, ts, ctx);
      if (d) return d;
    }
  }
  // Only cluster-wide kinds named: the -n the call runs in is irrelevant.
  if (targets.kinds.length > 0 && targets.kinds.every((k) => CLUSTER_KINDS.has(k) || NAMESPACE_KINDS.has(k))) return undefined;
  const ns = call.scope.namespace;
  if (ns === undefined) return undefined;
  if (ns === '*') {
    const cfgAll = c.namespaces.includes('*');
    const scopeAll = ts.namespaces === undefined || ts.namespaces.includes('*');
    if (!cfgAll || !scopeAll) {
      const allowed = cfgAll ? (ts.namespaces ?? []) : c.namespaces;
      return deny('scope.namespace', `-A/--all-namespaces needs every namespace of "${context}" to be allowed; name one namespace with -n instead (allowed: ${listOf(allowed)})`);
    }
    return undefined;
  }
  return checkNamespace(ns, context, c.namespaces, ts, ctx);
}

function checkNamespace(ns: string, context: string, configured: readonly string[], ts: ToolScope, ctx: CheckCtx): Decision | undefined {
  if (!configured.includes(ns) && !configured.includes('*')) {
    return deny('scope.namespace', `namespace "${ns}" is not allowed in context "${context}" (configured: ${listOf(configured)}); use one of those or ${CONFIG_HINT}`);
  }
  if (!inScope(ts.namespaces, ns)) {
    return deny('scope.namespace', `${ctx.who} may not touch namespace "${ns}" (its namespaces: ${listOf(ts.namespaces ?? [])})`);
  }
  return undefined;
}

// Kinds that live outside namespaces (plural, singular and short names as kubectl accepts them).
const NAMESPACE_KINDS = new Set(['namespace', 'namespaces', 'ns']);
const CLUSTER_KINDS = new Set(
  [
    'node nodes no',
    'persistentvolume persistentvolumes pv',
    'storageclass storageclasses sc',
    'clusterrole clusterroles',
    'clusterrolebinding clusterrolebindings',
    'customresourcedefinition customresourcedefinitions crd crds',
    'mutatingwebhookconfiguration mutatingwebhookconfigurations',
    'validatingwebhookconfiguration validatingwebhookconfigurations',
    'validatingadmissionpolicy validatingadmissionpolicies validatingadmissionpolicybinding validatingadmissionpolicybindings',
    'priorityclass priorityclasses pc',
    'ingressclass ingressclasses',
    'runtimeclass runtimeclasses',
    'csidriver csidrivers csinode csinodes volumeattachment volumeattachments',
    'apiservice apiservices',
    'certificatesigningrequest certificatesigningrequests csr',
    'flowschema flowschemas prioritylevelconfiguration prioritylevelconfigurations',
    'podsecuritypolicy podsecuritypolicies psp',
  ].flatMap((l) => l.split(' ')),
);
// Verbs whose first argument is a TYPE (or TYPE/NAME); node verbs take node names.
const TYPE_VERBS = new Set(['get', 'describe', 'delete', 'create', 'label', 'annotate', 'patch', 'edit', 'scale', 'autoscale', 'expose', 'wait', 'top', 'taint']);
const NODE_VERBS = new Set(['drain', 'cordon', 'uncordon']);

interface KubeTargets {
  kinds: string[];
  clusterKinds: string[];
  namespaceKind: boolean;
  namespaceNames: string[];
}

/**
 * What object kinds a kubectl call names (from its canonical args: `--context X -n NS VERB...`).
 * Defence in depth: the parser classifies, this only keeps namespace and cluster scoping honest.
 */
export function kubeTargets(call: ToolCall): KubeTargets {
  const out: KubeTargets = { kinds: [], clusterKinds: [], namespaceKind: false, namespaceNames: [] };
  if (call.tool !== 'kubectl') return out;
  const args = call.args;
  let i = 0;
  while (i < args.length && (args[i] === '--context' || args[i] === '-n' || args[i] === '--namespace')) i += 2;
  const verbWords = call.verb.split(' ');
  const verb = verbWords[0] ?? '';
  i += verbWords.length;
  const positionals: string[] = [];
  for (; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') break;
    if (a.startsWith('-')) continue;
    // label/annotate/taint values: key=value, key-, key=value:Effect
    if ((verb === 'label' || verb === 'annotate' || verb === 'taint') && (a.includes('=') || a.endsWith('-') || a.includes(':'))) continue;
    positionals.push(a);
  }
  const kind = (k: string): string => (k.toLowerCase().split('.')[0] ?? '');
  const add = (k: string, name?: string): void => {
    const kk = kind(k);
    if (!kk) return;
    if (!out.kinds.includes(kk)) out.kinds.push(kk);
    if (NAMESPACE_KINDS.has(kk)) {
      out.namespaceKind = true;
      if (name) out.namespaceNames.push(name);
    } else if (CLUSTER_KINDS.has(kk) && !out.clusterKinds.includes(kk)) out.clusterKinds.push(kk);
  };
  if (NODE_VERBS.has(verb)) {
    add('nodes');
    return out;
  }
  const subject = verb === 'rollout' || verb === 'set' || TYPE_VERBS.has(verb) ? positionals : [];
  if (subject.length === 0) return out;
  const first = subject[0]!;
  if (first.includes('/')) {
    for (const p of subject) for (const part of p.split(',')) {
      const [k, n] = part.split('/', 2);
      if (k) add(k, n);
    }
  } else {
    const kinds = first.split(',');
    for (const k of kinds) add(k);
    if (kinds.length === 1 && NAMESPACE_KINDS.has(kind(kinds[0]!))) out.namespaceNames.push(...subject.slice(1));
  }
  return out;
}

function checkProject(call: ToolCall, ts: ToolScope, ctx: CheckCtx): Decision | undefined {
  const projects = Object.keys(ctx.config.compose.projects);
  const p = call.scope.project;
  if (p === undefined) {
    if (call.tool === 'compose') return deny('scope.project', `\`${call.canonical}\` names no compose project; add -p with one of: ${listOf(projects)}`);
    return undefined;
  }
  if (!(p in ctx.config.compose.projects)) {
    return deny('scope.project', `compose project "${p}" is not configured (configured: ${listOf(projects)}); use one of those or ${CONFIG_HINT}`);
  }
  if (!inScope(ts.projects, p)) return deny('scope.project', `${ctx.who} may not touch compose project "${p}" (its projects: ${listOf(ts.projects ?? [])})`);
  return undefined;
}

function checkHost(call: ToolCall, ts: ToolScope, ctx: CheckCtx): Decision | undefined {
  const hosts = Object.keys(ctx.config.ssh.hosts);
  const h = call.scope.host ?? ctx.viaHost;
  if (h === undefined) {
    if (call.tool === 'ssh') return deny('scope.host', `\`${call.canonical}\` names no host; use one of the configured ssh hosts: ${listOf(hosts)}`);
    // systemctl/journalctl on this machine: a specialist must list the pseudo-host `local`.
    if ((call.tool === 'systemctl' || call.tool === 'journalctl') && ts.hosts !== undefined && !ts.hosts.includes(LOCAL_HOST) && !ts.hosts.includes('*')) {
      return deny('scope.host', `${ctx.who} may run ${call.tool} only on ${listOf(ts.hosts)}, not on this machine; use \`ssh HOST ${call.tool} ...\``);
    }
    return undefined;
  }
  if (!(h in ctx.config.ssh.hosts)) {
    return deny('scope.host', `host "${h}" is not in the config's ssh.hosts (configured: ${listOf(hosts)}); use one of those or ${CONFIG_HINT}`);
  }
  if (!inScope(ts.hosts, h)) return deny('scope.host', `${ctx.who} may not use ${call.tool} on host "${h}" (its hosts: ${listOf(ts.hosts ?? [])})`);
  return undefined;
}

/** `kv/deploy/` → `kv/deploy`; null when the path has `..`/`.` segments or is empty. */
export function normalizeVaultPath(p: string): string | null {
  const segs = p.split('/').filter((s) => s !== '');
  if (segs.length === 0 || segs.some((s) => s === '..' || s === '.')) return null;
  return segs.join('/');
}

function underVaultPrefix(p: string, prefix: string): boolean {
  const pre = normalizeVaultPath(prefix);
  return pre !== null && (p === pre || p.startsWith(pre + '/'));
}

function checkVault(call: ToolCall, ts: ToolScope, ctx: CheckCtx): Decision | undefined {
  const raw = call.scope.vaultPath;
  const prefixes = ctx.config.vault.paths;
  if (raw === undefined) {
    if (call.tool === 'vault') return deny('scope.vault-path', `\`${call.canonical}\` names no Vault path; use a path under: ${listOf(prefixes)}`);
    return undefined;
  }
  const p = normalizeVaultPath(raw);
  if (p === null) return deny('scope.vault-path', `Vault path "${raw}" is not a plain path (no "." or ".." segments); use a path under: ${listOf(prefixes)}`);
  if (!prefixes.some((pre) => underVaultPrefix(p, pre))) {
    return deny('scope.vault-path', `Vault path "${p}" is not under a configured prefix (configured: ${listOf(prefixes)}); use one of those or ${CONFIG_HINT}`);
  }
  if (ts.vault_paths !== undefined && !ts.vault_paths.some((pre) => underVaultPrefix(p, pre))) {
    return deny('scope.vault-path', `${ctx.who} may not touch Vault path "${p}" (its paths: ${listOf(ts.vault_paths)})`);
  }
  return undefined;
}

function underRoot(p: string, root: string): boolean {
  const r = posix.normalize(root);
  if (r === '/') return true;
  const rr = r.endsWith('/') ? r.slice(0, -1) : r;
  return p === rr || p.startsWith(rr + '/');
}

function checkPaths(call: ToolCall, ts: ToolScope, ctx: CheckCtx): Decision | undefined {
  const paths = call.scope.paths;
  const roots = ctx.config.files.roots;
  if (paths === undefined || paths.length === 0) {
    if (call.tool === 'files') return deny('scope.path', `\`${call.canonical}\` names no path; use absolute paths under: ${listOf(roots)}`);
    return undefined;
  }
  const mutating = CLASS_RANK[effectiveClass(call)] > 0;
  for (const raw of paths) {
    if (!posix.isAbsolute(raw) || raw.includes('\0')) {
      return deny('scope.path', `path "${raw}" is not absolute; write the full path under one of: ${listOf(roots)}`);
    }
    const p = posix.normalize(raw);
    if (!roots.some((r) => underRoot(p, r))) {
      return deny('scope.path', `path "${p}" is outside the configured file roots (${listOf(roots)}); use a path under one of those or ${CONFIG_HINT}`);
    }
    if (ts.paths !== undefined && !ts.paths.some((r) => underRoot(p, r))) {
      return deny('scope.path', `${ctx.who} may not touch "${p}" (its paths: ${listOf(ts.paths)})`);
    }
    if (mutating && call.tool === 'files' && ctx.viaHost === undefined && protectedPath(p, ctx.config)) {
      return deny('policy.self-protect', `"${p}" holds opscrew's own config, policy or state; no tool may change it — ask a person to edit it`);
    }
  }
  return undefined;
}

/** The agent cannot change config or policy through any tool. */
function protectedPath(p: string, config: Config): boolean {
  const ws = posix.normalize(config.source.workspaceDir);
  const guarded = [posix.join(ws, 'opscrew.config.yaml'), posix.join(ws, '.opscrew'), posix.join(ws, 'agents', 'specialists')];
  if (config.source.file) guarded.push(posix.normalize(config.source.file));
  // Also a parent directory of a guarded path (rm -r of the workspace).
  return guarded.some((g) => underRoot(p, g) || underRoot(g, p));
}

// ---------------------------------------------------------------- http

/** Host names of cloud metadata services (the addresses are caught as literals below). */
const METADATA_NAMES = new Set(['metadata', 'metadata.google.internal', 'metadata.goog', 'instance-data', 'instance-data.ec2.internal', 'metadata.azure.com']);

function parseIpv4(h: string): number[] | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(h);
  if (!m) return null;
  const o = m.slice(1).map(Number);
  return o.every((x) => x <= 255) ? o : null;
}

/** 8 hextets of an IPv6 literal (`::`, embedded dotted quad allowed), or null. */
export function parseIpv6(h: string): number[] | null {
  let s = h;
  if (s.includes('%')) s = s.slice(0, s.indexOf('%')); // zone id
  if (!/^[0-9a-fA-F:.]+$/.test(s) || !s.includes(':')) return null;
  const lastColon = s.lastIndexOf(':');
  const last = s.slice(lastColon + 1);
  if (last.includes('.')) {
    // An embedded dotted quad is the last two hextets.
    const v4 = parseIpv4(last);
    if (!v4) return null;
    s = s.slice(0, lastColon + 1) + (((v4[0]! << 8) | v4[1]!).toString(16)) + ':' + (((v4[2]! << 8) | v4[3]!).toString(16));
  }
  const parts = s.split('::');
  if (parts.length > 2) return null;
  const parse = (x: string): number[] | null => {
    if (x === '') return [];
    const out: number[] = [];
    for (const g of x.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const head = parse(parts[0]!);
  const rest = parts.length === 2 ? parse(parts[1]!) : [];
  if (!head || !rest) return null;
  const given = head.length + rest.length;
  if (parts.length === 1) return given === 8 ? head : null;
  if (given > 7) return null;
  return [...head, ...Array<number>(8 - given).fill(0), ...rest];
}

function blockedIpv4(o: number[]): string | null {
  if (o[0] === 0) return 'an unspecified address';
  if (o[0] === 169 && o[1] === 254) return o[2] === 169 && o[3] === 254 ? 'the cloud metadata address' : 'a link-local address';
  if (o[0] === 100 && o[1] === 100 && o[2] === 100 && o[3] === 200) return 'a cloud metadata address';
  return null;
}

/** Why a URL host literal is refused (link-local, metadata, unspecified), or null. */
export function blockedHost(hostname: string): string | null {
  let h = hostname.toLowerCase();
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  if (h.endsWith('.')) h = h.slice(0, -1);
  if (METADATA_NAMES.has(h)) return 'a cloud metadata host';
  const v4 = parseIpv4(h);
  if (v4) return blockedIpv4(v4);
  const v6 = parseIpv6(h);
  if (!v6) return null;
  if (v6.every((x) => x === 0)) return 'an unspecified address';
  if ((v6[0]! & 0xffc0) === 0xfe80) return 'a link-local address';
  if (v6[0] === 0xfd00 && v6[1] === 0x0ec2 && v6.slice(2, 7).every((x) => x === 0) && v6[7] === 0x254) return 'the cloud metadata address';
  // IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d) and NAT64 (64:ff9b::a.b.c.d) carry an IPv4 address.
  const embedsV4 =
    (v6.slice(0, 5).every((x) => x === 0) && (v6[5] === 0xffff || v6[5] === 0)) ||
    (v6[0] === 0x64 && v6[1] === 0xff9b && v6.slice(2, 6).every((x) => x === 0));
  if (embedsV4) {
    const o = [v6[6]! >> 8, v6[6]! & 0xff, v6[7]! >> 8, v6[7]! & 0xff];
    if (!(v6[5] === 0 && v6[6] === 0)) return blockedIpv4(o);
  }
  return null;
}

/** `*.example.org` matches subdomains of example.org; anything else matches exactly. */
export function hostMatches(host: string, pattern: string): boolean {
  const norm = (s: string): string => {
    let x = s.toLowerCase();
    if (x.startsWith('[') && x.endsWith(']')) x = x.slice(1, -1);
    return x.endsWith('.') ? x.slice(0, -1) : x;
  };
  const h = norm(host);
  const p = norm(pattern);
  if (p === '*') return true;
  if (p.startsWith('*.')) return h.endsWith(p.slice(1)) && h.length > p.length - 1;
  return h === p;
}

function checkHttp(call: ToolCall, ts: ToolScope, ctx: CheckCtx): Decision | undefined {
  const raw = call.scope.url;
  if (raw === undefined) {
    if (call.tool === 'http') return deny('http.url', `\`${call.canonical}\` names no URL; give one http:// or https:// URL`);
    return undefined;
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return deny('http.url', `"${raw}" is not a URL; write it as http://HOST[:PORT]/PATH`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return deny('http.scheme', `only http:// and https:// URLs are fetched, not ${url.protocol}//`);
  }
  const why = blockedHost(url.hostname);
  if (why) return deny('http.address', `${url.hostname} is ${why}; such addresses are never fetched. Check a service on its own address instead`);
  const method = (call.scope.method ?? 'GET').toUpperCase();
  if (ts.http_hosts !== undefined && !ts.http_hosts.some((p) => hostMatches(url.hostname, p))) {
    return deny('scope.http-host', `${ctx.who} may not call ${url.hostname} (its hosts: ${listOf(ts.http_hosts)})`);
  }
  // A secret handle is revealed into the request at send time: it goes only where a person
  // allowed writes to go, whatever the method (a GET with it to any host would leak it).
  if (call.args.some(hasHandles) && !ctx.config.http.allow.some((p) => hostMatches(url.hostname, p))) {
    return deny('http.allow', `${url.hostname} is not in the config's http.allow (${listOf(ctx.config.http.allow)}), and \`${call.canonical}\` carries a secret handle; secrets are sent only to allowed hosts — ${CONFIG_HINT}`);
  }
  if (!SAFE_METHODS.has(method) && !ctx.config.http.allow.some((p) => hostMatches(url.hostname, p))) {
    return deny('http.allow', `${method} to ${url.hostname} is refused: mutating methods go only to the config's http.allow (${listOf(ctx.config.http.allow)}); use GET/HEAD to check it, or ${CONFIG_HINT}`);
  }
  return undefined;
}

function checkRemote(call: ToolCall, ctx: CheckCtx): Decision | undefined {
  if (call.tool !== 'ssh') return undefined;
  const host = call.scope.host ?? ctx.viaHost ?? '';
  if (ctx.viaHost !== undefined) return deny('ssh.nested', `ssh from ${ctx.viaHost} to another host is refused; run \`ssh ${host} ...\` directly`);
  if (!call.remote) return deny('ssh.remote', `interactive ssh is refused; give the command to run: \`ssh ${host} COMMAND\``);
  if (call.remote.tool === 'ssh') return deny('ssh.nested', `ssh from ${host} to another host is refused; run that ssh directly`);
  const inner = checkCall(call.remote, { ...ctx, viaHost: host });
  if (!inner) return undefined;
  return { ...inner, reason: `on ${host}: ${inner.reason}` };
}
