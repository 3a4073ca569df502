// The REAL kubectl binary against the Kubernetes API double (test/harness/kube-api-double.ts),
// started through tools/exec.ts runProcess, then whole lines through parse → runToolCall.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { baseEnv, runProcess } from '../../tools/exec.js';
import { parseCommandLine } from '../../tools/parse-command.js';
import { runToolCall } from '../../tools/run-call.js';
import { createSecretBroker } from '../../tools/secret-broker.js';
import type { SpawnResult, ToolContext, ToolEnv } from '../../tools/types.js';
import { startKubeApiDouble, writeKubeconfig } from '../harness/kube-api-double.js';
import type { KubeApiDouble } from '../harness/kube-api-double.js';
import { requireBinaries } from '../harness/require.js';

const req = requireBinaries('kubectl:kubernetes-client');

describe.skipIf(req.skip)(`real kubectl against the API double ${req.reason}`, () => {
  let api: KubeApiDouble;
  let dir: string;
  let kubeconfig: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'opscrew-kubectl-'));
    api = await startKubeApiDouble({
      namespaces: ['default', 'ffl', 'registry'],
      deployments: [
        { namespace: 'ffl', name: 'web', replicas: 2 },
        { namespace: 'ffl', name: 'worker', replicas: 1 },
        { namespace: 'registry', name: 'registry', replicas: 1 },
      ],
    });
    kubeconfig = writeKubeconfig(dir, api.server, { contexts: ['staging', 'minikube'], current: 'staging' });
  });
  afterAll(async () => {
    await api.close();
    rmSync(dir, { recursive: true, force: true });
  });

  // HOME in the temp dir: kubectl's discovery cache must not touch the real home.
  const kubectl = (...args: string[]): Promise<SpawnResult> =>
    runProcess({
      file: 'kubectl',
      args,
      env: baseEnv({ KUBECONFIG: kubeconfig, HOME: dir }),
      timeoutMs: 30_000,
      outputCap: 1 << 20,
    });

  it('get pods -n ffl lists the pods with server-side columns', async () => {
    const r = await kubectl('get', 'pods', '-n', 'ffl');
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE$/);
    expect(lines.slice(1)).toHaveLength(3);
    expect(lines.filter((l) => /^web-\S+\s+1\/1\s+Running\s+0\s+\S+$/.test(l))).toHaveLength(2);
    expect(api.requests.some((q) => q.url.startsWith('/api/v1/namespaces/ffl/pods'))).toBe(true);
  });

  it('get deploy X -o jsonpath={.status.readyReplicas}', async () => {
    const r = await kubectl('get', 'deploy', 'web', '-n', 'ffl', '-o', 'jsonpath={.status.readyReplicas}');
    expect(r).toMatchObject({ exitCode: 0, stdout: '2' });
  });

  it('a missing object is a NotFound Status: exit 1 and the server message', async () => {
    const r = await kubectl('get', 'deploy', 'nope', '-n', 'ffl');
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('Error from server (NotFound): deployments.apps "nope" not found');
  });

  it('scale deploy/X --replicas=3, then get shows 3', async () => {
    const r = await kubectl('scale', 'deploy/web', '-n', 'ffl', '--replicas=3');
    expect(r).toMatchObject({ exitCode: 0, stdout: 'deployment.apps/web scaled\n' });
    const scaleReq = api.requests.filter((q) => q.method === 'PATCH' && q.url.includes('/deployments/web/scale')).at(-1);
    expect(scaleReq?.contentType).toBe('application/merge-patch+json');
    expect(JSON.parse(scaleReq?.body ?? '{}')).toEqual({ spec: { replicas: 3 } });
    const got = await kubectl('get', 'deploy', 'web', '-n', 'ffl', '-o', 'jsonpath={.spec.replicas} {.status.readyReplicas}');
    expect(got.stdout).toBe('3 3');
    expect(api.pods('ffl').filter((p) => (p.metadata as { labels: Record<string, string> }).labels.app === 'web')).toHaveLength(3);
  });

  it('--dry-run=server scale and delete leave the state unchanged', async () => {
    const before = api.deployment('ffl', 'worker');
    const s = await kubectl('scale', 'deploy/worker', '-n', 'ffl', '--replicas=9', '--dry-run=server');
    expect(s).toMatchObject({ exitCode: 0, stdout: 'deployment.apps/worker scaled (server dry run)\n' });
    expect(api.requests.at(-1)?.url).toContain('dryRun=All');
    const d = await kubectl('delete', 'deploy', 'worker', '-n', 'ffl', '--dry-run=server');
    expect(d).toMatchObject({ exitCode: 0, stdout: 'deployment.apps "worker" deleted (server dry run)\n' });
    expect(api.deployment('ffl', 'worker')).toEqual(before);
    const got = await kubectl('get', 'deploy', 'worker', '-n', 'ffl', '-o', 'jsonpath={.spec.replicas}');
    expect(got.stdout).toBe('1');
  });

  it('delete removes the deployment and its pods', async () => {
    const d = await kubectl('delete', 'deploy', 'worker', '-n', 'ffl');
    expect(d).toMatchObject({ exitCode: 0, stdout: 'deployment.apps "worker" deleted\n' });
    expect(api.deployment('ffl', 'worker')).toBeUndefined();
    const pods = await kubectl('get', 'pods', '-n', 'ffl', '-o', 'name');
    expect(pods.stdout).not.toContain('worker');
    const gone = await kubectl('get', 'deploy', 'worker', '-n', 'ffl');
    expect(gone.exitCode).toBe(1);
  });

  it('rollout status, contexts and namespaces', async () => {
    const r = await kubectl('rollout', 'status', 'deploy/web', '-n', 'ffl', '--timeout=20s');
    expect(r).toMatchObject({ exitCode: 0, stdout: 'deployment "web" successfully rolled out\n' });
    const ns = await kubectl('--context', 'minikube', 'get', 'ns', '-o', 'name');
    expect(ns.stdout.trim().split('\n')).toEqual(['namespace/default', 'namespace/ffl', 'namespace/registry']);
    const bad = await kubectl('--context', 'prod', 'get', 'ns');
    expect(bad.exitCode).toBe(1);
    expect(bad.stderr).toContain('context was not found for specified context: prod');
  });

  it('logs of a pod, and a deleted pod is replaced by its deployment', async () => {
    const names = (await kubectl('get', 'pods', '-n', 'registry', '-l', 'app=registry', '-o', 'name')).stdout.trim().split('\n');
    expect(names).toHaveLength(1);
    const pod = (names[0] as string).replace(/^pod\//, '');
    const logs = await kubectl('logs', pod, '-n', 'registry', '--tail=5');
    expect(logs.exitCode).toBe(0);
    expect(logs.stdout).toContain(`container of ${pod} started`);
    const del = await kubectl('delete', 'pod', pod, '-n', 'registry');
    expect(del).toMatchObject({ exitCode: 0, stdout: `pod "${pod}" deleted\n` });
    const after = (await kubectl('get', 'pods', '-n', 'registry', '-l', 'app=registry', '-o', 'name')).stdout.trim().split('\n');
    expect(after).toHaveLength(1);
    expect(after[0]).not.toBe(names[0]);
  });

  it('apply: a server dry run creates nothing, the real apply creates it', async () => {
    const manifest = join(dir, 'api.json');
    writeFileSync(
      manifest,
      JSON.stringify({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'api', namespace: 'registry' },
        spec: { replicas: 2, selector: { matchLabels: { app: 'api' } }, template: { metadata: { labels: { app: 'api' } }, spec: { containers: [{ name: 'api', image: 'registry.local/api:2' }] } } },
      }),
    );
    const dry = await kubectl('apply', '-f', manifest, '--dry-run=server');
    expect(dry).toMatchObject({ exitCode: 0, stdout: 'deployment.apps/api created (server dry run)\n' });
    expect(api.deployment('registry', 'api')).toBeUndefined();
    const real = await kubectl('apply', '-f', manifest);
    expect(real).toMatchObject({ exitCode: 0, stdout: 'deployment.apps/api created\n' });
    expect(api.deployment('registry', 'api')).toMatchObject({ spec: { replicas: 2 }, status: { readyReplicas: 2 } });
  });

  describe('through parseCommandLine → runToolCall', () => {
    const env = (): ToolEnv => ({
      kubernetes: { kubeconfig, contexts: { staging: { namespaces: ['ffl', 'registry'] }, minikube: { namespaces: ['*'] } }, defaultContext: 'staging' },
      baseEnv: { HOME: dir },
    });
    const ctx = (): ToolContext => ({ env: env(), secrets: createSecretBroker(), timeoutMs: 30_000, outputCap: 64 * 1024 });
    const run = async (line: string) => {
      const parsed = parseCommandLine(line, { env: env() });
      if (!parsed.ok) throw new Error(`${line}: ${parsed.code}: ${parsed.message}`);
      return { call: parsed.value, out: await runToolCall(parsed.value, ctx()) };
    };

    it('a read with a jsonpath', async () => {
      const { call, out } = await run('kubectl -n ffl get deploy web -o jsonpath={.status.readyReplicas}');
      expect(call).toMatchObject({ tool: 'kubectl', class: 'read', scope: { namespace: 'ffl' } });
      expect(out).toMatchObject({ exitCode: 0, stdout: '3' });
    });

    it('scale goes through and changes the double', async () => {
      const { call, out } = await run('kubectl scale deploy/web -n ffl --replicas=4');
      expect(call.class).toBe('mutate');
      expect(out.exitCode).toBe(0);
      expect(api.deployment('ffl', 'web')).toMatchObject({ spec: { replicas: 4 } });
    });

    it('patch runs a recorded server-side dry run first', async () => {
      const n = api.requests.length;
      const { out } = await run(`kubectl patch deploy web -n ffl -p '{"spec":{"replicas":5}}'`);
      expect(out.exitCode).toBe(0);
      expect(out.preSteps?.[0]).toMatchObject({ exitCode: 0 });
      expect(out.preSteps?.[0]?.canonical).toContain('--dry-run=server');
      const patches = api.requests.slice(n).filter((q) => q.method === 'PATCH');
      expect(patches.map((q) => q.url.includes('dryRun=All'))).toEqual([true, false]);
      expect(api.deployment('ffl', 'web')).toMatchObject({ spec: { replicas: 5 } });
    });

    it('a pipeline into a filter', async () => {
      const { out } = await run('kubectl get pods -n ffl | grep -c Running');
      expect(out.exitCode).toBe(0);
      expect(out.stdout.trim()).toBe('5');
    });
  });
});
