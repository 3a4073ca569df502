// compose against a real engine: Debian docker-compose (v1) talking to `podman system service`
// on a unix socket, a busybox image imported from busybox-static, a busybox httpd container
// serving HTTP on loopback. up (after a recorded `config`), ps, logs, restart, down.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runProcess } from '../../tools/exec.js';
import { parseCommandLine } from '../../tools/parse-command.js';
import { runToolCall } from '../../tools/run-call.js';
import { createSecretBroker } from '../../tools/secret-broker.js';
import type { SpawnRequest, SpawnResult, ToolCall, ToolContext } from '../../tools/types.js';
import { isStaticElf, startPodman, type PodmanHandle } from '../harness/podman.js';
import { requireBinaries } from '../harness/require.js';

const req = requireBinaries('podman:podman', 'docker-compose:docker-compose', 'busybox:busybox-static', 'tar:tar');

/** A real command line through the real parser, with the config the executor gets. */
function line(text: string, ctx: ToolContext): ToolCall {
  const r = parseCommandLine(text, { env: ctx.env });
  if (!r.ok) throw new Error(`${text}: ${r.message}`);
  return r.value;
}

async function fetchText(url: string, timeoutMs: number): Promise<{ status: number; body: string } | null> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      return { status: res.status, body: await res.text() };
    } catch {
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  return null;
}

async function refusesConnections(url: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      await fetch(url, { signal: AbortSignal.timeout(1_000) });
    } catch {
      return true;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

describe.skipIf(req.skip)(`compose against podman ${req.reason}`, () => {
  let pod: PodmanHandle;
  let url: string;
  const spawned: SpawnRequest[] = [];
  const spy = async (r: SpawnRequest): Promise<SpawnResult> => {
    spawned.push(r);
    return runProcess(r);
  };
  let ctx: ToolContext;

  function podman(args: string[]): string {
    const r = spawnSync('podman', args, { env: pod.podmanEnv, encoding: 'utf8', timeout: 30_000 });
    return `${r.stdout}${r.stderr}`;
  }

  beforeAll(async () => {
    pod = await startPodman({ timeoutMs: 90_000 });
    url = `http://127.0.0.1:${pod.port}/index.html`;
    const broken = join(pod.dir, 'broken.yml');
    writeFileSync(broken, 'services:\n  web:\n    image: [not, a, string\n');
    ctx = {
      env: {
        compose: {
          dockerHost: pod.dockerHost,
          projects: { [pod.project]: { file: pod.composeFile }, broken: { file: broken } },
        },
      },
      secrets: createSecretBroker(),
      timeoutMs: 90_000,
      outputCap: 256 * 1024,
      spawn: spy,
    };
  }, 150_000);

  afterAll(async () => {
    await pod?.stop();
  }, 120_000);

  it('up -d runs `config` first (recorded), then starts a container that serves HTTP', async () => {
    const r = await runToolCall(line(`docker-compose -p ${pod.project} up -d`, ctx), ctx);
    expect(r.stderr).not.toMatch(/Traceback/);
    expect(r.exitCode).toBe(0);
    expect(r.preSteps).toHaveLength(1);
    expect(r.preSteps?.[0]?.canonical).toMatch(/ config -q$/);
    expect(r.preSteps?.[0]?.exitCode).toBe(0);
    // The config step really ran before up, with the configured file, project and socket.
    const steps = spawned.filter((s) => s.args.includes(pod.composeFile));
    const configIdx = steps.findIndex((s) => s.args.includes('config'));
    const upIdx = steps.findIndex((s) => s.args.includes('up'));
    expect(configIdx).toBeGreaterThanOrEqual(0);
    expect(upIdx).toBeGreaterThan(configIdx);
    expect(steps[upIdx]?.env.DOCKER_HOST).toBe(pod.dockerHost);
    expect(steps[upIdx]?.args.slice(0, 4)).toEqual(['-p', pod.project, '-f', pod.composeFile]);

    const got = await fetchText(url, 30_000);
    expect(got?.status).toBe(200);
    expect(got?.body).toBe(`opscrew compose test ${pod.project}\n`);
  });

  it('the image came from a static busybox (the harness refuses a dynamic one)', () => {
    expect(isStaticElf('/bin/busybox')).toBe(true);
    expect(isStaticElf(process.execPath)).toBe(false);
  });

  it('ps lists the running container', async () => {
    const r = await runToolCall(line(`docker-compose -p ${pod.project} ps`, ctx), ctx);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain(`${pod.project}_web_1`);
    expect(r.stdout).toMatch(/\bUp\b/);
  });

  it('logs shows the container output', async () => {
    await fetchText(`http://127.0.0.1:${pod.port}/missing-page`, 10_000);
    const r = await runToolCall(line(`docker-compose -p ${pod.project} logs --no-color`, ctx), ctx);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain(`${pod.project}_web_1`);
  });

  it('restart restarts the container, which serves again', async () => {
    const name = `${pod.project}_web_1`;
    const before = podman(['inspect', '--format', '{{.State.StartedAt}}', name]).trim();
    const r = await runToolCall(line(`docker-compose -p ${pod.project} restart`, ctx), ctx);
    expect(r.exitCode).toBe(0);
    const after = podman(['inspect', '--format', '{{.State.StartedAt}}', name]).trim();
    expect(after).not.toBe(before);
    const got = await fetchText(url, 30_000);
    expect(got?.status).toBe(200);
  });

  it('a failing `config` stops up before anything starts', async () => {
    const before = spawned.length;
    const r = await runToolCall(line(`docker-compose -p broken up -d`, ctx), ctx);
    expect(r.exitCode).not.toBe(0);
    expect(r.preSteps?.[0]?.exitCode).not.toBe(0);
    const ran = spawned.slice(before);
    expect(ran.some((s) => s.args.includes('config'))).toBe(true);
    expect(ran.some((s) => s.args.includes('up'))).toBe(false);
  });

  it('refuses a project that is not configured, spawning nothing', async () => {
    expect(parseCommandLine('docker-compose -p elsewhere ps', { env: ctx.env }).ok).toBe(false);
    // The executor refuses it too, should a call for it ever be built by hand.
    const before = spawned.length;
    const handBuilt: ToolCall = { tool: 'compose', verb: 'ps', args: ['ps'], class: 'read', scope: { project: 'elsewhere' }, canonical: 'docker compose -p elsewhere ps', pipeline: [] };
    const r = await runToolCall(handBuilt, ctx);
    expect(r.refused?.code).toBe('compose-project');
    expect(spawned.length).toBe(before);
  });

  it('down removes the container and the port stops answering', async () => {
    const r = await runToolCall(line(`docker-compose -p ${pod.project} down`, ctx), ctx);
    expect(r.exitCode).toBe(0);
    expect(await refusesConnections(url, 20_000)).toBe(true);
    expect(podman(['ps', '-a', '--filter', `label=com.docker.compose.project=${pod.project}`, '--format', '{{.Names}}']).trim()).toBe('');
  });
});
