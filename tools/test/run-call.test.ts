// The executor's argv and env building, pre-steps, secret reveal/scrub and filters, driven by
// parsed command lines. A recording spawner stands in where the program (kubectl against a
// cluster, docker) is not what is under test; real processes are used where they are.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { baseEnv, runProcess } from '../exec.js';
import { parseCommandLine } from '../parse-command.js';
import { quoteForRemoteShell, runToolCall } from '../run-call.js';
import { createSecretBroker } from '../secret-broker.js';
import type { SpawnRequest, SpawnResult, ToolCall, ToolContext, ToolEnv } from '../types.js';
import { requireBinaries } from '../../test/harness/require.js';

const dir = mkdtempSync(join(tmpdir(), 'opscrew-runcall-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const env: ToolEnv = {
  kubernetes: { kubeconfig: '/etc/opscrew/kubeconfig', contexts: { mini: { namespaces: ['ffl'] } }, defaultContext: 'mini' },
  compose: { dockerHost: 'unix:///run/test/podman.sock', projects: { shop: { file: '/srv/shop/docker-compose.yml' } } },
  ssh: { hosts: { edge: { host: '10.0.0.5', port: 2222, user: 'ops', identityFile: '/keys/id', knownHosts: '/keys/known' } } },
  files: { roots: [dir] },
  baseEnv: { SSH_AUTH_SOCK: '/run/agent.sock' },
};

function parse(line: string): ToolCall {
  const r = parseCommandLine(line, { env });
  if (!r.ok) throw new Error(`${line}: ${r.message}`);
  return r.value;
}

type Reply = Partial<SpawnResult> | ((req: SpawnRequest) => Partial<SpawnResult>);

/** Records every spawn; answers from `reply` (by program and first arg) instead of running. */
function recorder(reply: Record<string, Reply> = {}): { spawned: SpawnRequest[]; spawn: (r: SpawnRequest) => Promise<SpawnResult> } {
  const spawned: SpawnRequest[] = [];
  return {
    spawned,
    spawn: async (req) => {
      spawned.push(req);
      const key = Object.keys(reply).find((k) => [req.file, ...req.args].join(' ').includes(k));
      const r = key ? reply[key] : undefined;
      const part = typeof r === 'function' ? r(req) : (r ?? {});
      return { exitCode: 0, signal: null, stdout: '', stderr: '', durationMs: 1, timedOut: false, truncated: false, ...part };
    },
  };
}

function ctx(spawn: ToolContext['spawn'], extra: Partial<ToolContext> = {}): ToolContext {
  return { env, secrets: createSecretBroker(), timeoutMs: 10_000, outputCap: 64 * 1024, spawn, ...extra };
}

describe('kubectl', () => {
  it('apply runs a recorded server-side dry run first, with KUBECONFIG only in the child env', async () => {
    const rec = recorder({ 'apply': { stdout: 'deployment.apps/web configured\n' } });
    const r = await runToolCall(parse(`kubectl -n ffl apply -f ${dir}/web.yaml`), ctx(rec.spawn));
    expect(rec.spawned.map((s) => [s.file, ...s.args].join(' '))).toEqual([
      `kubectl --context mini -n ffl apply --filename=${dir}/web.yaml --dry-run=server`,
      `kubectl --context mini -n ffl apply --filename=${dir}/web.yaml`,
    ]);
    expect(r.preSteps).toEqual([
      { canonical: `kubectl --context mini -n ffl apply --filename=${dir}/web.yaml --dry-run=server`, exitCode: 0, excerpt: 'deployment.apps/web configured\n' },
    ]);
    expect(r.exitCode).toBe(0);
    expect(rec.spawned[1]?.env).toEqual(baseEnv({ SSH_AUTH_SOCK: '/run/agent.sock', KUBECONFIG: '/etc/opscrew/kubeconfig' }));
  });

  it('a failing dry run stops the apply', async () => {
    const rec = recorder({ 'dry-run=server': { exitCode: 1, stderr: 'error: admission webhook denied' } });
    const r = await runToolCall(parse(`kubectl -n ffl apply -f ${dir}/web.yaml`), ctx(rec.spawn));
    expect(rec.spawned).toHaveLength(1);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('admission webhook denied');
    expect(r.preSteps?.[0]?.exitCode).toBe(1);
  });

  it('refuses a -f path that resolves outside the file roots through a symlink, running nothing', async () => {
    const outside = mkdtempSync(join(tmpdir(), 'opscrew-runcall-outside-'));
    try {
      writeFileSync(join(outside, 'web.yaml'), 'kind: ConfigMap\n');
      symlinkSync(outside, join(dir, 'escape'));
      const rec = recorder();
      // As written the path is inside the roots (what the policy checks); the kernel follows the link.
      const r = await runToolCall(parse(`kubectl -n ffl apply -f ${dir}/escape/web.yaml`), ctx(rec.spawn));
      expect(rec.spawned).toEqual([]);
      expect(r.exitCode).toBeNull();
      expect(r.stderr).toContain('is outside the configured roots');
      expect(r.stderr).toContain(`resolves to ${outside}/web.yaml`);
      const from = await runToolCall(parse(`kubectl -n ffl create configmap web --from-file=app.yaml=${dir}/escape/web.yaml`), ctx(rec.spawn));
      expect(from.exitCode).toBeNull();
      expect(rec.spawned).toEqual([]);
    } finally {
      rmSync(outside, { recursive: true, force: true });
    }
  });

  it('a file holding a revealed secret goes only into a Secret; a link in a -f folder is checked too', async () => {
    const secrets = createSecretBroker();
    const value = 'tok-9f8e7d6c5b4a';
    secrets.register('vault:kv/app#token', value);
    const sub = mkdtempSync(join(dir, 'manifests-'));
    const outside = mkdtempSync(join(tmpdir(), 'opscrew-runcall-outside-'));
    try {
      writeFileSync(join(sub, 'a.yaml'), 'kind: ConfigMap\n');
      writeFileSync(join(sub, 'cm.yaml'), `kind: ConfigMap\ndata:\n  t: ${Buffer.from(value).toString('base64')}\n`);
      writeFileSync(join(dir, 'tok'), `${value}\n`);
      const rec = recorder();
      const c = ctx(rec.spawn, { secrets });
      for (const line of [
        `kubectl -n ffl apply -f ${sub}/cm.yaml`,
        `kubectl -n ffl apply -f ${sub}`, // the folder is walked
        `kubectl -n ffl create configmap x --from-file=t=${dir}/tok`,
        `kubectl -n ffl patch deploy web --patch-file=${dir}/tok`,
      ]) {
        const r = await runToolCall(parse(line), c);
        expect(r.refused?.code, line).toBe('kubectl-secret-file');
        expect(r.stderr, line).toMatch(/holds a secret value; kubectl would store or show it outside a Secret's data/);
      }
      expect(rec.spawned).toEqual([]);
      // The sink: a Secret made from the file.
      const ok = await runToolCall(parse(`kubectl -n ffl create secret generic app --from-file=token=${dir}/tok`), c);
      expect(ok.refused).toBeUndefined();
      expect(rec.spawned).toHaveLength(1);
      // A folder without secrets applies; a link in it to outside the roots does not.
      const clean = mkdtempSync(join(dir, 'clean-'));
      writeFileSync(join(clean, 'a.yaml'), 'kind: ConfigMap\n');
      expect((await runToolCall(parse(`kubectl -n ffl apply -f ${clean}`), c)).refused).toBeUndefined();
      writeFileSync(join(outside, 'admin.conf'), 'apiVersion: v1\n');
      symlinkSync(join(outside, 'admin.conf'), join(clean, 'z.yaml'));
      const linked = await runToolCall(parse(`kubectl -n ffl apply -f ${clean}`), c);
      expect(linked.refused?.code).toBe('kubectl-outside-roots');
      expect(linked.stderr).toContain(`resolves to ${outside}/admin.conf`);
    } finally {
      rmSync(outside, { recursive: true, force: true });
    }
  });

  it('-k: a kustomization\'s references are followed and checked; remote bases, Helm and reaching outside are refused', async () => {
    const rec = recorder();
    // JSON is YAML; the core passes its YAML parser in (tools/ sits below it).
    const parseYaml = (t: string): { ok: true; data: unknown } | { ok: false; message: string } => {
      try {
        return { ok: true, data: JSON.parse(t) as unknown };
      } catch (e) {
        return { ok: false, message: String(e) };
      }
    };
    const secrets = createSecretBroker();
    secrets.register('vault:kv/app#token', 'tok-1a2b3c4d5e6f');
    const c = ctx(rec.spawn, { parseYaml, secrets });
    const base = mkdtempSync(join(dir, 'kz-'));
    const overlay = join(base, 'overlays', 'prod');
    mkdirSync(overlay, { recursive: true });
    mkdirSync(join(base, 'base'));
    writeFileSync(join(base, 'base', 'cm.yaml'), 'kind: ConfigMap\n');
    writeFileSync(join(base, 'base', 'kustomization.yaml'), JSON.stringify({ resources: ['cm.yaml'], images: [{ name: 'registry.gitlab.com/acme/app' }] }));
    const kz = (k: unknown): void => writeFileSync(join(overlay, 'kustomization.yaml'), JSON.stringify(k));
    // The usual overlay: a base two levels up, inside the roots, is followed and allowed.
    kz({ resources: ['../../base'], patches: [{ path: 'replicas.yaml' }], commonAnnotations: { docs: 'https://wiki.example.com/x' } });
    writeFileSync(join(overlay, 'replicas.yaml'), 'spec: {replicas: 2}\n');
    expect((await runToolCall(parse(`kubectl -n ffl apply -k ${overlay}`), c)).refused).toBeUndefined();
    const outside = mkdtempSync(join(tmpdir(), 'opscrew-kz-outside-'));
    try {
      writeFileSync(join(outside, 'x.yaml'), 'kind: ConfigMap\n');
      writeFileSync(join(base, 'base', 'leak.env'), 'TOKEN=tok-1a2b3c4d5e6f\n');
      for (const [k, code, text] of [
        [{ resources: ['../../base', `${outside}/x.yaml`] }, 'kubectl-outside-roots', `resolves to ${outside}/x.yaml`],
        [{ resources: ['sub/../../../../../../../../../../../..' + outside + '/x.yaml'] }, 'kubectl-outside-roots', 'outside the configured roots'],
        [{ resources: ['github.com/org/repo//deploy?ref=main'] }, 'kubectl-kustomization', 'kustomize fetches from outside'],
        [{ resources: ['https://example.com/x.yaml'] }, 'kubectl-kustomization', 'kustomize fetches from outside'],
        [{ helmCharts: [{ name: 'x' }] }, 'kubectl-kustomization', 'Helm charts'],
        [{ configMapGenerator: [{ name: 'x', envs: ['../../base/leak.env'] }] }, 'kubectl-secret-file', 'holds a secret value'],
      ] as const) {
        kz(k);
        const r = await runToolCall(parse(`kubectl -n ffl apply -k ${overlay}`), c);
        expect(r.refused?.code, JSON.stringify(k)).toBe(code);
        expect(r.stderr).toContain(text);
      }
      rmSync(join(base, 'base', 'leak.env'));
      // Third review: keys kustomize matches case-insensitively, a merge key, a line break in a
      // name, kustomize's other remote forms, plugins.
      for (const [k, text] of [
        [{ Resources: [outside] }, 'has the key `Resources`'],
        [{ '<<': { resources: [outside] } }, 'has the key `<<`'],
        [{ patches: [{ Path: 'https://example.invalid/p.yaml' }] }, 'has the key `Path` in patches'],
        [{ resources: ['github.com/owner/repo?x=\n'] }, 'control character'],
        [{ resources: ['git::github.com/owner/repo'] }, 'fetches from outside'],
        [{ resources: ['alice@example.com:owner/repo'] }, 'fetches from outside'],
        [{ resources: ['github.com:owner/repo'] }, 'fetches from outside'],
        [{ transformers: ['t.yaml'] }, 'uses `transformers`'],
      ] as const) {
        kz(k);
        const r = await runToolCall(parse(`kubectl -n ffl apply -k ${overlay}`), c);
        expect(r.refused?.code, JSON.stringify(k)).toBe('kubectl-kustomization');
        expect(r.stderr).toContain(text);
      }
      // Local names with dots are local (kustomize v5 reads them from disk).
      mkdirSync(join(overlay, 'my.dir'));
      writeFileSync(join(overlay, 'my.dir', 'deploy.yaml'), 'kind: ConfigMap\n');
      kz({ resources: ['my.dir/deploy.yaml', '../../base'] });
      expect((await runToolCall(parse(`kubectl -n ffl apply -k ${overlay}`), c)).refused).toBeUndefined();
      // A kustomization reached through a link is parsed by the name kustomize opens.
      const linked = join(base, 'linked');
      mkdirSync(linked);
      writeFileSync(join(linked, 'k.txt'), JSON.stringify({ resources: [`${outside}/x.yaml`] }));
      symlinkSync('k.txt', join(linked, 'kustomization.yaml'));
      const viaLink = await runToolCall(parse(`kubectl -n ffl apply -k ${linked}`), c);
      expect(viaLink.refused?.code).toBe('kubectl-outside-roots');
      // A kustomization naming a huge number of places is cut off, missing ones included.
      kz({ resources: Array.from({ length: 3000 }, (_, i) => `missing-${i}.yaml`) });
      const many = await runToolCall(parse(`kubectl -n ffl apply -k ${overlay}`), c);
      expect(many.refused?.code).toBe('kubectl-too-many-files');
      writeFileSync(join(overlay, 'kustomization.yaml'), 'resources: [../../base');
      const bad = await runToolCall(parse(`kubectl -n ffl apply -k ${overlay}`), c);
      expect(bad.refused?.code).toBe('kubectl-kustomization');
      // Without a parser a kustomization cannot be vetted.
      kz({ resources: ['../../base'] });
      const unparsed = await runToolCall(parse(`kubectl -n ffl apply -k ${overlay}`), ctx(rec.spawn));
      expect(unparsed.stderr).toMatch(/cannot be checked here/);
    } finally {
      rmSync(outside, { recursive: true, force: true });
    }
    // A link loop in a -f folder ends (each place is visited once).
    const loop = mkdtempSync(join(dir, 'loop-'));
    writeFileSync(join(loop, 'a.yaml'), 'kind: ConfigMap\n');
    symlinkSync(loop, join(loop, 'self'));
    expect((await runToolCall(parse(`kubectl -n ffl apply -f ${loop}`), c)).refused).toBeUndefined();
  });

  it('a read runs once, no pre-step', async () => {
    const rec = recorder();
    const r = await runToolCall(parse('kubectl -n ffl get pods'), ctx(rec.spawn));
    expect(rec.spawned).toHaveLength(1);
    expect(r.preSteps).toBeUndefined();
  });
});

describe('compose', () => {
  it('uses docker-compose (v1) when `docker compose` is missing, asks once per context, targets the configured file', async () => {
    const rec = recorder({ 'docker compose version': { exitCode: 1, stderr: "docker: 'compose' is not a docker command." } });
    const c = ctx(rec.spawn);
    await runToolCall(parse('docker compose -p shop ps'), c);
    await runToolCall(parse('docker-compose -p shop rm -f web'), c);
    const lines = rec.spawned.map((s) => [s.file, ...s.args].join(' '));
    expect(lines).toEqual([
      'docker compose version',
      'docker-compose -p shop -f /srv/shop/docker-compose.yml ps',
      // rm's own -f (force) survives; only the global -f/-p come from config.
      'docker-compose -p shop -f /srv/shop/docker-compose.yml rm -f web',
    ]);
    expect(rec.spawned[1]?.env.DOCKER_HOST).toBe('unix:///run/test/podman.sock');
  });

  it('uses the v2 plugin when present; up is preceded by a recorded config', async () => {
    const rec = recorder({ 'docker compose version': { stdout: 'Docker Compose version v2.29.0\n' } });
    const r = await runToolCall(parse('docker compose -p shop up -d'), ctx(rec.spawn));
    expect(rec.spawned.map((s) => [s.file, ...s.args].join(' '))).toEqual([
      'docker compose version',
      'docker compose -p shop -f /srv/shop/docker-compose.yml config -q',
      'docker compose -p shop -f /srv/shop/docker-compose.yml up -d',
    ]);
    expect(r.preSteps?.[0]?.canonical).toBe('docker compose -p shop -f /srv/shop/docker-compose.yml config -q');
  });

  it('a missing compose binary is data (exit 127), not a throw', async () => {
    const r = await runToolCall(parse('docker compose -p shop ps'), {
      ...ctx(undefined),
      env: { ...env, baseEnv: { PATH: join(dir, 'empty-path') } },
    });
    expect(r.exitCode).toBe(127);
    expect(r.stderr).toMatch(/ENOENT/);
  });
});

describe('ssh', () => {
  it('builds ssh with our own options and ONE quoted remote argument', async () => {
    const rec = recorder();
    await runToolCall(parse(`ssh edge "cat '/var/log/a b.log'"`), ctx(rec.spawn));
    const s = rec.spawned[0];
    expect(s?.file).toBe('ssh');
    expect(s?.args).toEqual([
      '-F', 'none', '-i', '/keys/id', '-o', 'IdentitiesOnly=yes', '-p', '2222', '-o', 'BatchMode=yes',
      '-o', 'StrictHostKeyChecking=yes', '-o', 'UserKnownHostsFile=/keys/known', '-o', 'ConnectTimeout=10', '-T',
      '--', 'ops@10.0.0.5', `'cat' '/var/log/a b.log'`,
    ]);
  });

  it('a hand-built remote files call cannot name an arbitrary program', async () => {
    const rec = recorder();
    const inner: ToolCall = { tool: 'files', verb: 'bash', args: ['-c', 'id'], class: 'read', scope: {}, canonical: 'bash -c id', pipeline: [] };
    const r = await runToolCall({ ...inner, tool: 'ssh', scope: { host: 'edge' }, remote: inner }, ctx(rec.spawn));
    expect(r.refused?.code).toBe('ssh-remote-tool');
    expect(rec.spawned).toHaveLength(0);
  });

  it('remote journalctl gets --no-pager; its filters run locally', async () => {
    const rec = recorder({ journalctl: { stdout: 'ok line\nerror line\n' } });
    const r = await runToolCall(parse('ssh edge journalctl -u nginx -n 5 | grep error'), ctx(rec.spawn));
    expect(rec.spawned[0]?.args.at(-1)).toBe(`'journalctl' '--no-pager' '-u' 'nginx' '-n' '5'`);
    expect(r.stdout).toBe('error line\n');
  });

  it('quoteForRemoteShell survives a real POSIX shell for every nasty byte', async () => {
    for (const word of [`a'b`, `'`, `''`, `$(id)`, '`id`', 'a\nb', 'x; y', '"\\"', '', ' lead', '*?[]~']) {
      const r = await runProcess({ file: 'sh', args: ['-c', `printf %s ${quoteForRemoteShell(word)}`], env: baseEnv(), timeoutMs: 5_000, outputCap: 1024 });
      expect(r.stdout).toBe(word);
    }
  });
});

describe('local tools', () => {
  it('journalctl always runs with --no-pager; systemctl/docker run as parsed', async () => {
    const rec = recorder();
    await runToolCall(parse('journalctl -n 5'), ctx(rec.spawn));
    await runToolCall(parse('systemctl status nginx'), ctx(rec.spawn));
    await runToolCall(parse('docker ps'), ctx(rec.spawn));
    expect(rec.spawned.map((s) => [s.file, ...s.args].join(' '))).toEqual(['journalctl --no-pager -n 5', 'systemctl status nginx', 'docker ps']);
    expect(rec.spawned[2]?.env.DOCKER_HOST).toBe('unix:///run/test/podman.sock');
    expect(rec.spawned[1]?.env.DOCKER_HOST).toBeUndefined();
  });

  it('files run in-process and through filters', async () => {
    writeFileSync(join(dir, 'pods.txt'), 'web Running\napi Crash\ndb Running\n');
    const rec = recorder();
    const r = await runToolCall(parse(`cat ${join(dir, 'pods.txt')} | grep Running | wc -l`), ctx(rec.spawn));
    expect(r.stdout).toBe('2\n');
    expect(r.exitCode).toBe(0);
    expect(rec.spawned).toHaveLength(0);
  });
});

const jq = requireBinaries('jq:jq');

describe.skipIf(jq.skip)(`in-process tools and filters ${jq.reason}`, () => {
  it('http output goes through the pipeline (real local server, real jq)', async () => {
    const server = createServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ status: 'green', nodes: 3 }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    try {
      const port = (server.address() as AddressInfo).port;
      const r = await runToolCall(parse(`curl -s http://127.0.0.1:${port}/health | jq -r .status`), ctx(undefined));
      expect(r.exitCode).toBe(0);
      expect(r.stdout).toBe('green\n');
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});

describe('secrets', () => {
  it('handles are revealed only in the spawned argv; output is scrubbed before and after filters', async () => {
    const secrets = createSecretBroker();
    const value = 's3cr3t-token-value-XYZ';
    const handle = secrets.register('vault:kv/deploy#token', value);
    const b64 = Buffer.from(value).toString('base64');
    const rec = recorder({ 'create secret': { stdout: `token is ${value}\nencoded ${b64}\n`, stderr: `warning ${value}` } });
    const call = parse(`kubectl -n ffl create secret generic web --from-literal=token=${handle}`);
    expect(call.canonical).toContain(handle);
    const r = await runToolCall(call, ctx(rec.spawn, { secrets }));
    expect(rec.spawned[0]?.args).toContain(`--from-literal=token=${value}`);
    expect(r.stdout).toBe(`token is ${handle}\nencoded ${handle}\n`);
    expect(r.stderr).toBe(`warning ${handle}`);

    // A filter cannot decode a secret past the scrubber: it only ever sees handles.
    const rec2 = recorder({ get: { stdout: JSON.stringify({ data: { token: b64 } }) } });
    const piped = await runToolCall(parse(`kubectl -n ffl get deploy web -o json | jq -r '.data.token | @base64d'`), ctx(rec2.spawn, { secrets }));
    const jqRun = rec2.spawned.find((s) => s.file.endsWith('jq'));
    expect(jqRun?.input).toBe(JSON.stringify({ data: { token: handle } }));
    expect(piped.stdout).not.toContain(value);
  });

  it('an unknown handle is refused before anything is spawned', async () => {
    const rec = recorder();
    const r = await runToolCall(parse('kubectl -n ffl create secret generic web --from-literal=token={{secret:vault:kv/deploy#nope}}'), ctx(rec.spawn));
    expect(r.refused?.code).toBe('unknown-secret-handle');
    expect(rec.spawned).toHaveLength(0);
  });
});

describe('output bounds', () => {
  it('caps stdout at outputCap through the real spawner', async () => {
    writeFileSync(join(dir, 'big.txt'), 'y'.repeat(100_000));
    const r = await runToolCall(parse(`cat ${join(dir, 'big.txt')}`), { ...ctx(undefined), outputCap: 1000 });
    expect(r.stdout.length).toBe(1000);
    expect(r.truncated).toBe(true);
  });
});
