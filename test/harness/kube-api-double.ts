// TEST DOUBLE of a Kubernetes API server (no cluster can run on these machines). A plain
// node:http server speaking enough of the real API for the REAL kubectl binary, as observed
// from what kubectl 1.32 sends:
// - discovery: /version, /api, /apis (plain APIVersions/APIGroupList; kubectl accepts them
//   instead of aggregated discovery), /api/v1 and /apis/apps/v1 APIResourceLists;
// - namespaces, pods and deployments: list (label/field selectors), get, watch (head flushed
//   at once, events on change: `rollout status` and `delete --wait` rely on it), POST create,
//   PATCH (merge, strategic-merge treated as merge), DELETE;
// - `as=Table` answers (server-side printing: without it kubectl prints only NAME and AGE);
// - deployments/scale (`kubectl scale` sends a merge PATCH there), pods/NAME/log;
// - server-side dry run: `?dryRun=All`, or `dryRun: ["All"]` in DeleteOptions for DELETE —
//   computes the answer, never changes state;
// - a minimal /openapi/v3 whose PATCH operations declare `fieldValidation`, so `kubectl
//   apply` leaves validation to the server instead of needing full schemas;
// - errors as `Status` objects (404 NotFound with details, 409, 415, 422).
// Deployments are "instantly ready": pods and status follow spec at once (zero counts are
// omitted like the real omitempty fields), so `rollout status` succeeds immediately.
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createHash, randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';

type Obj = Record<string, unknown> & { metadata: Meta };
interface Meta {
  name: string;
  namespace?: string;
  uid: string;
  resourceVersion: string;
  creationTimestamp: string;
  generation?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: unknown[];
  [k: string]: unknown;
}

export interface KubeRequest {
  method: string;
  url: string;
  contentType: string;
  body: string;
}

export interface DeploymentSeed {
  namespace: string;
  name: string;
  replicas: number;
  image?: string;
}

export interface KubeApiDouble {
  /** `http://127.0.0.1:PORT` */
  server: string;
  requests: KubeRequest[];
  addNamespace(name: string): void;
  addDeployment(seed: DeploymentSeed): void;
  deployment(namespace: string, name: string): Record<string, unknown> | undefined;
  pods(namespace: string): Array<Record<string, unknown>>;
  close(): Promise<void>;
}

export interface KubeApiDoubleOptions {
  namespaces?: string[];
  deployments?: DeploymentSeed[];
  now?: () => Date;
}

const CORE_RESOURCES = [
  { name: 'namespaces', singularName: 'namespace', namespaced: false, kind: 'Namespace', verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'], shortNames: ['ns'] },
  { name: 'pods', singularName: 'pod', namespaced: true, kind: 'Pod', verbs: ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'], shortNames: ['po'], categories: ['all'] },
  { name: 'pods/log', singularName: '', namespaced: true, kind: 'Pod', verbs: ['get'] },
  { name: 'pods/status', singularName: '', namespaced: true, kind: 'Pod', verbs: ['get', 'patch', 'update'] },
];
const APPS_RESOURCES = [
  { name: 'deployments', singularName: 'deployment', namespaced: true, kind: 'Deployment', verbs: ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'], shortNames: ['deploy'], categories: ['all'] },
  { name: 'deployments/scale', singularName: '', namespaced: true, group: 'autoscaling', version: 'v1', kind: 'Scale', verbs: ['get', 'patch', 'update'] },
  { name: 'deployments/status', singularName: '', namespaced: true, kind: 'Deployment', verbs: ['get', 'patch', 'update'] },
];

type Kind = 'namespaces' | 'pods' | 'deployments';
const GROUP: Record<Kind, string> = { namespaces: '', pods: '', deployments: 'apps' };
const KIND: Record<Kind, string> = { namespaces: 'Namespace', pods: 'Pod', deployments: 'Deployment' };
const API_VERSION: Record<Kind, string> = { namespaces: 'v1', pods: 'v1', deployments: 'apps/v1' };

function status(code: number, reason: string, message: string, details?: Record<string, unknown>): Record<string, unknown> {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, ...(details ? { details } : {}), code };
}

function wantsTable(req: IncomingMessage): boolean {
  return /as=Table/.test(String(req.headers.accept ?? ''));
}

function clone<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

/** RFC 7386 JSON merge patch (kubectl's strategic merge patches are applied the same way here). */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> =
    target !== null && typeof target === 'object' && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [k, v] of Object.entries(patch as Record<string, unknown>)) {
    if (k.startsWith('$')) continue; // strategic-merge directives ($patch, $retainKeys...)
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/** `a=b,c!=d,e` style selectors (equality, inequality, existence). */
function matchesSelector(labels: Record<string, string> | undefined, selector: string | null): boolean {
  if (!selector) return true;
  const l = labels ?? {};
  return selector.split(',').every((term) => {
    const t = term.trim();
    if (t === '') return true;
    let m = /^([^!=]+)!=(.*)$/.exec(t);
    if (m) return l[(m[1] as string).trim()] !== (m[2] as string).trim();
    m = /^([^!=]+)==?(.*)$/.exec(t);
    if (m) return l[(m[1] as string).trim()] === (m[2] as string).trim();
    if (t.startsWith('!')) return !(t.slice(1) in l);
    return t in l;
  });
}

function matchesFields(o: Obj, selector: string | null): boolean {
  if (!selector) return true;
  return selector.split(',').every((term) => {
    const m = /^([^!=]+)(!=|==|=)(.*)$/.exec(term.trim());
    if (!m) return true;
    const field = m[1] as string;
    const value = m[3] as string;
    const actual = field === 'metadata.name' ? o.metadata.name : field === 'metadata.namespace' ? o.metadata.namespace : undefined;
    if (actual === undefined) return true;
    return m[2] === '!=' ? actual !== value : actual === value;
  });
}

/** kubectl's short ages (HumanDuration): 45s, 5m12s, 3h, 2d4h... */
export function humanAge(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 10) return s % 60 === 0 ? `${m}m` : `${m}m${s % 60}s`;
  if (m < 180) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 8) return m % 60 === 0 ? `${h}h` : `${h}h${m % 60}m`;
  if (h < 48) return `${h}h`;
  const d = Math.floor(h / 24);
  if (h < 192) return h % 24 === 0 ? `${d}d` : `${d}d${h % 24}h`;
  return `${d}d`;
}

const COLUMNS: Record<Kind, Array<{ name: string; type: string; format?: string; priority: number }>> = {
  pods: [
    { name: 'Name', type: 'string', format: 'name', priority: 0 },
    { name: 'Ready', type: 'string', priority: 0 },
    { name: 'Status', type: 'string', priority: 0 },
    { name: 'Restarts', type: 'string', priority: 0 },
    { name: 'Age', type: 'string', priority: 0 },
    { name: 'IP', type: 'string', priority: 1 },
    { name: 'Node', type: 'string', priority: 1 },
  ],
  deployments: [
    { name: 'Name', type: 'string', format: 'name', priority: 0 },
    { name: 'Ready', type: 'string', priority: 0 },
    { name: 'Up-to-date', type: 'integer', priority: 0 },
    { name: 'Available', type: 'integer', priority: 0 },
    { name: 'Age', type: 'string', priority: 0 },
    { name: 'Containers', type: 'string', priority: 1 },
    { name: 'Images', type: 'string', priority: 1 },
    { name: 'Selector', type: 'string', priority: 1 },
  ],
  namespaces: [
    { name: 'Name', type: 'string', format: 'name', priority: 0 },
    { name: 'Status', type: 'string', priority: 0 },
    { name: 'Age', type: 'string', priority: 0 },
  ],
};

export async function startKubeApiDouble(opts: KubeApiDoubleOptions = {}): Promise<KubeApiDouble> {
  const now = opts.now ?? (() => new Date());
  let rv = 1000;
  const nextRv = () => String(++rv);
  const requests: KubeRequest[] = [];
  const namespaces = new Map<string, Obj>();
  const deployments = new Map<string, Obj>(); // key ns/name
  const pods = new Map<string, Obj>();
  const watchers = new Set<{ kind: Kind; ns?: string; labels: string | null; fields: string | null; res: ServerResponse }>();

  const ts = () => now().toISOString().replace(/\.\d{3}Z$/, 'Z');
  const meta = (name: string, ns?: string): Meta => ({
    name,
    ...(ns !== undefined ? { namespace: ns } : {}),
    uid: randomUUID(),
    resourceVersion: nextRv(),
    creationTimestamp: ts(),
  });
  const storeOf = (kind: Kind) => (kind === 'namespaces' ? namespaces : kind === 'pods' ? pods : deployments);
  const keyOf = (kind: Kind, ns: string | undefined, name: string) => (kind === 'namespaces' ? name : `${ns}/${name}`);

  function notify(kind: Kind, type: 'ADDED' | 'MODIFIED' | 'DELETED', o: Obj): void {
    for (const w of watchers) {
      if (w.kind !== kind) continue;
      if (w.ns !== undefined && o.metadata.namespace !== w.ns) continue;
      if (!matchesSelector(o.metadata.labels, w.labels) || !matchesFields(o, w.fields)) continue;
      w.res.write(`${JSON.stringify({ type, object: o })}\n`);
    }
  }

  function templateHash(d: Obj): string {
    const spec = d.spec as { template?: unknown };
    return createHash('sha256').update(JSON.stringify(spec.template ?? {})).digest('hex').slice(0, 10).replace(/[^a-z0-9]/g, 'x');
  }

  function newPod(d: Obj, hash: string): Obj {
    const spec = d.spec as { template?: { spec?: { containers?: Array<{ name: string; image: string }> } } };
    const containers = spec.template?.spec?.containers ?? [];
    const name = `${d.metadata.name}-${hash}-${randomUUID().slice(0, 5)}`;
    const app = d.metadata.name;
    const started = ts();
    return {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        ...meta(name, d.metadata.namespace),
        generateName: `${d.metadata.name}-${hash}-`,
        labels: { app, 'pod-template-hash': hash },
        ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: `${d.metadata.name}-${hash}`, uid: d.metadata.uid, controller: true }],
      },
      spec: { containers, nodeName: 'double-node', restartPolicy: 'Always' },
      status: {
        phase: 'Running',
        conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: started }],
        containerStatuses: containers.map((c) => ({
          name: c.name,
          image: c.image,
          imageID: '',
          ready: true,
          started: true,
          restartCount: 0,
          state: { running: { startedAt: started } },
        })),
        hostIP: '10.0.0.1',
        podIP: '10.244.0.10',
        startTime: started,
      },
    };
  }

  /** The instant controller: pods follow spec.replicas and the template; status follows spec. */
  function reconcile(d: Obj): void {
    const ns = d.metadata.namespace as string;
    const spec = d.spec as { replicas?: number };
    const want = spec.replicas ?? 1;
    const hash = templateHash(d);
    const mine = [...pods.values()].filter((p) => p.metadata.namespace === ns && p.metadata.labels?.app === d.metadata.name);
    for (const p of mine) {
      if (p.metadata.labels?.['pod-template-hash'] !== hash) {
        pods.delete(keyOf('pods', ns, p.metadata.name));
        notify('pods', 'DELETED', p);
      }
    }
    let current = [...pods.values()].filter((p) => p.metadata.namespace === ns && p.metadata.labels?.app === d.metadata.name);
    while (current.length > want) {
      const p = current.pop() as Obj;
      pods.delete(keyOf('pods', ns, p.metadata.name));
      notify('pods', 'DELETED', p);
    }
    while (current.length < want) {
      const p = newPod(d, hash);
      pods.set(keyOf('pods', ns, p.metadata.name), p);
      current = [...current, p];
      notify('pods', 'ADDED', p);
    }
    // Real API servers omit zero counts (omitempty): `{.status.readyReplicas}` is then empty.
    const n = want;
    d.status = {
      observedGeneration: d.metadata.generation,
      ...(n > 0 ? { replicas: n, updatedReplicas: n, readyReplicas: n, availableReplicas: n } : {}),
      conditions: [
        { type: 'Available', status: 'True', reason: 'MinimumReplicasAvailable', message: 'Deployment has minimum availability.', lastUpdateTime: ts(), lastTransitionTime: ts() },
        { type: 'Progressing', status: 'True', reason: 'NewReplicaSetAvailable', message: `ReplicaSet "${d.metadata.name}-${hash}" has successfully progressed.`, lastUpdateTime: ts(), lastTransitionTime: ts() },
      ],
    };
  }

  function makeDeployment(seed: DeploymentSeed): Obj {
    return {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { ...meta(seed.name, seed.namespace), generation: 1, labels: { app: seed.name }, annotations: { 'deployment.kubernetes.io/revision': '1' } },
      spec: {
        replicas: seed.replicas,
        selector: { matchLabels: { app: seed.name } },
        template: { metadata: { labels: { app: seed.name } }, spec: { containers: [{ name: seed.name, image: seed.image ?? `registry.local/${seed.name}:1.0` }] } },
        strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: '25%' } },
        revisionHistoryLimit: 10,
        progressDeadlineSeconds: 600,
      },
      status: {},
    };
  }

  function addNamespace(name: string): void {
    if (namespaces.has(name)) return;
    namespaces.set(name, { apiVersion: 'v1', kind: 'Namespace', metadata: { ...meta(name), labels: { 'kubernetes.io/metadata.name': name } }, spec: { finalizers: ['kubernetes'] }, status: { phase: 'Active' } });
  }

  function addDeployment(seed: DeploymentSeed): void {
    addNamespace(seed.namespace);
    const d = makeDeployment(seed);
    reconcile(d);
    deployments.set(keyOf('deployments', seed.namespace, seed.name), d);
  }

  for (const ns of opts.namespaces ?? ['default']) addNamespace(ns);
  for (const d of opts.deployments ?? []) addDeployment(d);

  const send = (res: ServerResponse, code: number, body: unknown): void => {
    const text = JSON.stringify(body);
    res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  };
  const notFound = (res: ServerResponse, kind: Kind, name: string): void =>
    send(res, 404, status(404, 'NotFound', `${kind}${GROUP[kind] ? `.${GROUP[kind]}` : ''} "${name}" not found`, { name, ...(GROUP[kind] ? { group: GROUP[kind] } : {}), kind }));

  function scaleOf(d: Obj): Record<string, unknown> {
    const spec = d.spec as { replicas?: number };
    return {
      kind: 'Scale',
      apiVersion: 'autoscaling/v1',
      metadata: { name: d.metadata.name, namespace: d.metadata.namespace, uid: d.metadata.uid, resourceVersion: d.metadata.resourceVersion, creationTimestamp: d.metadata.creationTimestamp },
      spec: { replicas: spec.replicas ?? 1 },
      status: { replicas: (d.status as { replicas?: number }).replicas ?? 0, selector: `app=${d.metadata.name}` },
    };
  }

  /** Server-side printing (kubectl asks for `as=Table`; without it prints only NAME and AGE). */
  function table(kind: Kind, objs: Obj[], listRv: string): Record<string, unknown> {
    const age = (o: Obj) => humanAge((now().getTime() - Date.parse(o.metadata.creationTimestamp)) / 1000);
    const cells = (o: Obj): unknown[] => {
      if (kind === 'pods') {
        const st = o.status as { phase?: string; podIP?: string; containerStatuses?: Array<{ ready?: boolean; restartCount?: number }> };
        const cs = st.containerStatuses ?? [];
        const restarts = cs.reduce((n, c) => n + (c.restartCount ?? 0), 0);
        return [o.metadata.name, `${cs.filter((c) => c.ready).length}/${cs.length}`, st.phase ?? 'Unknown', String(restarts), age(o), st.podIP ?? '<none>', (o.spec as { nodeName?: string }).nodeName ?? '<none>'];
      }
      if (kind === 'deployments') {
        const spec = o.spec as { replicas?: number; template?: { spec?: { containers?: Array<{ name: string; image: string }> } } };
        const st = o.status as { readyReplicas?: number; updatedReplicas?: number; availableReplicas?: number };
        const cs = spec.template?.spec?.containers ?? [];
        return [o.metadata.name, `${st.readyReplicas ?? 0}/${spec.replicas ?? 1}`, st.updatedReplicas ?? 0, st.availableReplicas ?? 0, age(o), cs.map((c) => c.name).join(','), cs.map((c) => c.image).join(','), `app=${o.metadata.name}`];
      }
      return [o.metadata.name, (o.status as { phase?: string }).phase ?? 'Active', age(o)];
    };
    return {
      kind: 'Table',
      apiVersion: 'meta.k8s.io/v1',
      metadata: { resourceVersion: listRv },
      columnDefinitions: COLUMNS[kind].map((c) => ({ ...c, format: c.format ?? '', description: c.name })),
      rows: objs.map((o) => ({ cells: cells(o), object: { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata } })),
    };
  }

  function list(kind: Kind, ns: string | undefined, url: URL): Record<string, unknown> {
    const labels = url.searchParams.get('labelSelector');
    const fields = url.searchParams.get('fieldSelector');
    const items = [...storeOf(kind).values()]
      .filter((o) => ns === undefined || o.metadata.namespace === ns)
      .filter((o) => matchesSelector(o.metadata.labels, labels) && matchesFields(o, fields))
      .sort((a, b) => `${a.metadata.namespace ?? ''}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace ?? ''}/${b.metadata.name}`));
    return { kind: `${KIND[kind]}List`, apiVersion: API_VERSION[kind], metadata: { resourceVersion: String(rv) }, items: items as unknown[] };
  }

  function parsePatch(req: IncomingMessage, raw: string): { ok: true; patch: unknown } | { ok: false; code: number; body: unknown } {
    const ct = String(req.headers['content-type'] ?? '').split(';')[0]?.trim() ?? '';
    if (!['application/merge-patch+json', 'application/strategic-merge-patch+json', 'application/apply-patch+yaml'].includes(ct)) {
      return { ok: false, code: 415, body: status(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (double: ${ct} unsupported)`) };
    }
    try {
      return { ok: true, patch: JSON.parse(raw) };
    } catch {
      return { ok: false, code: 400, body: status(400, 'BadRequest', 'the double accepts JSON bodies only') };
    }
  }

  function handle(req: IncomingMessage, res: ServerResponse, raw: string): void {
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', 'http://kube.invalid');
    const p = url.pathname.replace(/\/+$/, '') || '/';
    // kubectl sends dryRun as a query parameter, except for DELETE where it is in DeleteOptions.
    let dryRun = url.searchParams.getAll('dryRun').includes('All');
    if (method === 'DELETE' && raw.length > 0) {
      try {
        const opts = JSON.parse(raw) as { dryRun?: unknown };
        if (Array.isArray(opts.dryRun) && opts.dryRun.includes('All')) dryRun = true;
      } catch {
        return send(res, 400, status(400, 'BadRequest', 'DeleteOptions must be JSON'));
      }
    }

    if (p === '/version') {
      return send(res, 200, { major: '1', minor: '32', gitVersion: 'v1.32.0-double', gitCommit: 'double', gitTreeState: 'clean', buildDate: '2026-01-01T00:00:00Z', goVersion: 'go1.23', compiler: 'gc', platform: 'linux/amd64' });
    }
    if (p === '/api') return send(res, 200, { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: '127.0.0.1' }] });
    if (p === '/apis') {
      return send(res, 200, { kind: 'APIGroupList', apiVersion: 'v1', groups: [{ name: 'apps', versions: [{ groupVersion: 'apps/v1', version: 'v1' }], preferredVersion: { groupVersion: 'apps/v1', version: 'v1' } }] });
    }
    if (p === '/api/v1') return send(res, 200, { kind: 'APIResourceList', groupVersion: 'v1', resources: CORE_RESOURCES });
    if (p === '/apis/apps/v1') return send(res, 200, { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: 'apps/v1', resources: APPS_RESOURCES });
    if (p === '/apis/apps') return send(res, 200, { kind: 'APIGroup', apiVersion: 'v1', name: 'apps', versions: [{ groupVersion: 'apps/v1', version: 'v1' }], preferredVersion: { groupVersion: 'apps/v1', version: 'v1' } });

    // OpenAPI v3, just enough for kubectl apply: each PATCH operation declares the
    // fieldValidation parameter, so kubectl leaves validation to the server (this double
    // accepts what it can merge) instead of downloading full schemas.
    if (p === '/openapi/v3') {
      return send(res, 200, { paths: { 'api/v1': { serverRelativeURL: '/openapi/v3/api/v1?hash=double' }, 'apis/apps/v1': { serverRelativeURL: '/openapi/v3/apis/apps/v1?hash=double' } } });
    }
    if (p === '/openapi/v3/api/v1' || p === '/openapi/v3/apis/apps/v1') {
      const core = p === '/openapi/v3/api/v1';
      const kinds: Kind[] = core ? ['namespaces', 'pods'] : ['deployments'];
      const paths: Record<string, unknown> = {};
      const schemas: Record<string, unknown> = {};
      for (const k of kinds) {
        const gvk = { group: GROUP[k], kind: KIND[k], version: 'v1' };
        const item = k === 'namespaces' ? '/api/v1/namespaces/{name}' : `${core ? '/api/v1' : '/apis/apps/v1'}/namespaces/{namespace}/${k}/{name}`;
        paths[item] = {
          patch: {
            'x-kubernetes-group-version-kind': gvk,
            'x-kubernetes-action': 'patch',
            parameters: [
              { name: 'dryRun', in: 'query', schema: { type: 'string', uniqueItems: true } },
              { name: 'fieldManager', in: 'query', schema: { type: 'string', uniqueItems: true } },
              { name: 'fieldValidation', in: 'query', schema: { type: 'string', uniqueItems: true } },
            ],
            responses: { '200': { description: 'OK' } },
          },
        };
        schemas[`io.k8s.api.${core ? 'core' : 'apps'}.v1.${KIND[k]}`] = { type: 'object', 'x-kubernetes-group-version-kind': [gvk] };
      }
      return send(res, 200, { openapi: '3.0.0', info: { title: 'Kubernetes (double)', version: 'v1.32.0' }, paths, components: { schemas } });
    }

    // /api/v1/namespaces[/NS[/pods[/NAME]]] and /apis/apps/v1[/namespaces/NS]/deployments[/NAME[/scale]]
    const m =
      /^\/api\/v1\/(?:namespaces\/([^/]+)\/)?(pods)(?:\/([^/]+)(?:\/(log))?)?$/.exec(p) ??
      /^\/apis\/apps\/v1\/(?:namespaces\/([^/]+)\/)?(deployments)(?:\/([^/]+)(?:\/(scale|status))?)?$/.exec(p) ??
      /^\/api\/v1\/()(namespaces)(?:\/([^/]+))?$/.exec(p);
    if (!m) return send(res, 404, status(404, 'NotFound', 'the server could not find the requested resource'));
    const kind = m[2] as Kind;
    const ns = kind === 'namespaces' ? undefined : m[1] || undefined;
    const name = m[3] ? decodeURIComponent(m[3]) : undefined;
    const sub = m[4];
    const store = storeOf(kind);

    if (name === undefined) {
      if (method === 'GET') {
        const watch = url.searchParams.get('watch');
        if (watch === 'true' || watch === '1') {
          res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
          // Send the head now: clients wait for it before they treat the watch as established.
          res.flushHeaders();
          const w = { kind, ...(ns !== undefined ? { ns } : {}), labels: url.searchParams.get('labelSelector'), fields: url.searchParams.get('fieldSelector'), res };
          watchers.add(w);
          res.on('close', () => watchers.delete(w));
          const timeout = Number(url.searchParams.get('timeoutSeconds') ?? 0);
          if (timeout > 0) {
            const t = setTimeout(() => res.end(), timeout * 1000);
            res.on('close', () => clearTimeout(t));
          }
          return;
        }
        const l = list(kind, ns, url);
        if (wantsTable(req)) return send(res, 200, table(kind, l.items as Obj[], String(rv)));
        return send(res, 200, l);
      }
      if (method === 'POST') {
        let obj: Obj;
        try {
          obj = JSON.parse(raw) as Obj;
        } catch {
          return send(res, 400, status(400, 'BadRequest', 'the double accepts JSON bodies only'));
        }
        const oname = obj.metadata?.name;
        if (!oname) return send(res, 422, status(422, 'Invalid', 'metadata.name: Required value'));
        if (ns !== undefined && !namespaces.has(ns)) return send(res, 404, status(404, 'NotFound', `namespaces "${ns}" not found`, { name: ns, kind: 'namespaces' }));
        const k = keyOf(kind, ns, oname);
        if (store.has(k)) return send(res, 409, status(409, 'AlreadyExists', `${kind}${GROUP[kind] ? `.${GROUP[kind]}` : ''} "${oname}" already exists`, { name: oname, kind }));
        const created: Obj = { ...clone(obj), apiVersion: API_VERSION[kind], kind: KIND[kind], metadata: { ...clone(obj.metadata), ...meta(oname, ns), ...(kind === 'deployments' ? { generation: 1 } : {}) } };
        if (kind === 'deployments') {
          created.metadata.annotations = { ...(created.metadata.annotations ?? {}), 'deployment.kubernetes.io/revision': '1' };
          created.status = {};
        }
        if (kind === 'namespaces') created.status = { phase: 'Active' };
        if (!dryRun) {
          store.set(k, created);
          if (kind === 'deployments') reconcile(created);
          notify(kind, 'ADDED', created);
        } else if (kind === 'deployments') {
          reconcile(clone(created));
        }
        return send(res, 201, created);
      }
      return send(res, 405, status(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource`));
    }

    const k = keyOf(kind, ns, name);
    const existing = store.get(k);
    if (!existing) return notFound(res, kind, name);

    if (method === 'GET') {
      if (sub === 'scale') return send(res, 200, scaleOf(existing));
      if (sub === 'log') {
        const text = `${ts()} double: container of ${name} started\n${ts()} double: ready\n`;
        res.writeHead(200, { 'Content-Type': 'text/plain' });
        res.end(text);
        return;
      }
      if (wantsTable(req) && sub === undefined) return send(res, 200, table(kind, [existing], existing.metadata.resourceVersion));
      return send(res, 200, existing);
    }

    if (method === 'PATCH' || method === 'PUT') {
      let next: Obj;
      if (method === 'PUT') {
        try {
          next = JSON.parse(raw) as Obj;
        } catch {
          return send(res, 400, status(400, 'BadRequest', 'the double accepts JSON bodies only'));
        }
      } else {
        const parsed = parsePatch(req, raw);
        if (!parsed.ok) return send(res, parsed.code, parsed.body);
        next = (sub === 'scale' ? mergePatch(scaleOf(existing), parsed.patch) : mergePatch(clone(existing), parsed.patch)) as Obj;
      }
      let updated: Obj;
      if (sub === 'scale') {
        const replicas = (next.spec as { replicas?: unknown } | undefined)?.replicas;
        if (typeof replicas !== 'number' || !Number.isInteger(replicas) || replicas < 0) {
          return send(res, 422, status(422, 'Invalid', `Scale.autoscaling "${name}" is invalid: spec.replicas: Invalid value: must be greater than or equal to 0`));
        }
        updated = clone(existing);
        (updated.spec as { replicas: number }).replicas = replicas;
      } else {
        updated = { ...next, apiVersion: API_VERSION[kind], kind: KIND[kind], metadata: { ...next.metadata, name, ...(ns !== undefined ? { namespace: ns } : {}), uid: existing.metadata.uid, creationTimestamp: existing.metadata.creationTimestamp } };
      }
      updated.metadata.resourceVersion = dryRun ? existing.metadata.resourceVersion : nextRv();
      if (kind === 'deployments') {
        const specChanged = JSON.stringify(updated.spec) !== JSON.stringify(existing.spec);
        if (specChanged) updated.metadata.generation = (existing.metadata.generation ?? 1) + 1;
        const templateChanged = JSON.stringify((updated.spec as { template?: unknown }).template) !== JSON.stringify((existing.spec as { template?: unknown }).template);
        if (templateChanged) {
          const rev = Number(existing.metadata.annotations?.['deployment.kubernetes.io/revision'] ?? '1') + 1;
          updated.metadata.annotations = { ...(updated.metadata.annotations ?? {}), 'deployment.kubernetes.io/revision': String(rev) };
        }
        if (dryRun) reconcileDry(updated);
        else reconcile(updated);
      }
      if (!dryRun) {
        store.set(k, updated);
        notify(kind, 'MODIFIED', updated);
      }
      return send(res, 200, sub === 'scale' ? scaleOf(updated) : updated);
    }

    if (method === 'DELETE') {
      if (dryRun) {
        return send(res, 200, kind === 'pods' ? existing : { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details: { name, ...(GROUP[kind] ? { group: GROUP[kind] } : {}), kind, uid: existing.metadata.uid } });
      }
      store.delete(k);
      notify(kind, 'DELETED', existing);
      if (kind === 'deployments') {
        for (const pod of [...pods.values()].filter((x) => x.metadata.namespace === ns && x.metadata.labels?.app === name)) {
          pods.delete(keyOf('pods', ns, pod.metadata.name));
          notify('pods', 'DELETED', pod);
        }
      }
      if (kind === 'namespaces') {
        for (const [pk, pod] of pods) if (pod.metadata.namespace === name) pods.delete(pk);
        for (const [dk, d] of deployments) if (d.metadata.namespace === name) deployments.delete(dk);
      }
      if (kind === 'pods') {
        // The deployment's ReplicaSet replaces a deleted pod.
        const owner = existing.metadata.labels?.app;
        const d = owner ? deployments.get(keyOf('deployments', ns, owner)) : undefined;
        if (d) reconcile(d);
        return send(res, 200, existing);
      }
      return send(res, 200, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details: { name, ...(GROUP[kind] ? { group: GROUP[kind] } : {}), kind, uid: existing.metadata.uid } });
    }
    return send(res, 405, status(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource'));
  }

  /** Status as it would be after reconcile, without touching pods. */
  function reconcileDry(d: Obj): void {
    const n = (d.spec as { replicas?: number }).replicas ?? 1;
    d.status = { ...(d.status as object), observedGeneration: d.metadata.generation, ...(n > 0 ? { replicas: n, updatedReplicas: n, readyReplicas: n, availableReplicas: n } : {}) };
  }

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      requests.push({ method: req.method ?? 'GET', url: req.url ?? '/', contentType: String(req.headers['content-type'] ?? ''), body: raw });
      try {
        handle(req, res, raw);
      } catch (e) {
        send(res, 500, status(500, 'InternalError', `double: ${e instanceof Error ? e.message : String(e)}`));
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    server: `http://127.0.0.1:${port}`,
    requests,
    addNamespace,
    addDeployment,
    deployment: (ns, name) => {
      const d = deployments.get(keyOf('deployments', ns, name));
      return d ? clone(d) : undefined;
    },
    pods: (ns) => [...pods.values()].filter((p) => p.metadata.namespace === ns).map((p) => clone(p)),
    close: async () => {
      for (const w of watchers) w.res.end();
      watchers.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export interface KubeconfigOptions {
  /** Context names; each points at the same double with an empty user. */
  contexts?: string[];
  current?: string;
  /** Default namespace per context. */
  namespaces?: Record<string, string>;
}

/** Writes a kubeconfig (JSON is valid YAML) for the double; returns its path. */
export function writeKubeconfig(dir: string, server: string, opts: KubeconfigOptions = {}): string {
  const contexts = opts.contexts ?? ['staging', 'minikube'];
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'double', cluster: { server } }],
    users: [{ name: 'double-user', user: {} }],
    contexts: contexts.map((name) => ({
      name,
      context: { cluster: 'double', user: 'double-user', ...(opts.namespaces?.[name] ? { namespace: opts.namespaces[name] } : {}) },
    })),
    'current-context': opts.current ?? contexts[0],
    preferences: {},
  };
  const file = join(dir, 'kubeconfig');
  writeFileSync(file, JSON.stringify(config, null, 2), { mode: 0o600 });
  return file;
}
