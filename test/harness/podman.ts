// A real container engine for the compose suite: `podman system service` on a unix socket in a
// temp dir (Docker-compatible API), a busybox image imported from Debian's busybox-static (no
// image can be pulled here), and a compose file for a busybox httpd on a loopback port.
// podman needs `default_ulimits = []` (CONTAINERS_CONF) to start containers on these machines.
// stop() kills the service, removes the project's containers and the temp dir.
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.js';

export const BUSYBOX_IMAGE = 'localhost/busybox:local';
/** podman's default ulimits cannot be set in these containers: drop them. */
const CONTAINERS_CONF_BASE = '[containers]\ndefault_ulimits = []\n';
const BUSYBOX_APPLETS = ['sh', 'ls', 'cat', 'httpd', 'sleep', 'echo', 'true'];

export interface PodmanHandle {
  /** `unix:///…/podman.sock`: what DOCKER_HOST must be. */
  dockerHost: string;
  /** The env podman itself needs (CONTAINERS_CONF); compose talks to the socket only. */
  podmanEnv: Record<string, string>;
  /** A compose file: service `web`, busybox httpd on 127.0.0.1:`port` serving `wwwDir`. */
  composeFile: string;
  project: string;
  port: number;
  wwwDir: string;
  dir: string;
  stop(): Promise<void>;
}

function run(file: string, args: string[], env: Record<string, string>, timeoutMs: number): { status: number | null; out: string } {
  const r = spawnSync(file, args, { env, timeout: timeoutMs, encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? r.error.message : ''}` };
}

/** True when an ELF64 file has no program interpreter (PT_INTERP), i.e. runs without libraries. */
export function isStaticElf(file: string): boolean {
  const b = readFileSync(file);
  if (b.length < 64 || b.readUInt32BE(0) !== 0x7f454c46 || b[4] !== 2) return false;
  const phoff = Number(b.readBigUInt64LE(0x20));
  const phentsize = b.readUInt16LE(0x36);
  const phnum = b.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) {
    const off = phoff + i * phentsize;
    if (off + 4 > b.length) return false;
    if (b.readUInt32LE(off) === 3) return false;
  }
  return true;
}

/** Imports /bin/busybox as BUSYBOX_IMAGE unless the image is already there. */
export function ensureBusyboxImage(env: Record<string, string>, workDir: string, busybox = '/bin/busybox'): void {
  if (run('podman', ['image', 'exists', BUSYBOX_IMAGE], env, 30_000).status === 0) return;
  // The image has no libraries: Debian's dynamic `busybox` package would not start in it.
  if (!isStaticElf(busybox)) throw new Error(`${busybox} is not statically linked; install busybox-static`);
  const root = join(workDir, 'rootfs');
  mkdirSync(join(root, 'bin'), { recursive: true });
  mkdirSync(join(root, 'www'), { recursive: true });
  copyFileSync(busybox, join(root, 'bin', 'busybox'));
  for (const a of BUSYBOX_APPLETS) symlinkSync('busybox', join(root, 'bin', a));
  const tar = join(workDir, 'busybox.tar');
  const t = run('tar', ['-C', root, '-cf', tar, '.'], env, 30_000);
  if (t.status !== 0) throw new Error(`tar failed: ${t.out}`);
  const i = run('podman', ['import', '--change', 'ENV=PATH=/bin', tar, BUSYBOX_IMAGE], env, 60_000);
  if (i.status !== 0) throw new Error(`podman import failed: ${i.out}`);
}

/**
 * crun (podman's default) refuses hosts with hybrid cgroups ("cgroups in hybrid mode not
 * supported"); runc runs there. Probe with a real container and switch when needed.
 */
function chooseRuntime(env: Record<string, string>, conf: string): void {
  const probe = (): { status: number | null; out: string } => run('podman', ['run', '--rm', '--network', 'none', BUSYBOX_IMAGE, 'true'], env, 60_000);
  const first = probe();
  if (first.status === 0) return;
  writeFileSync(conf, `${CONTAINERS_CONF_BASE}\n[engine]\nruntime = "runc"\n`);
  const second = probe();
  if (second.status === 0) return;
  throw new Error(`podman cannot run a container here.\ndefault runtime: ${first.out}\nrunc: ${second.out}`);
}

function ping(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath: socket, path: '/_ping', method: 'GET', timeout: 2_000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

/** Starts the podman API service and prepares image and compose file; bounded by `timeoutMs`. */
export async function startPodman(opts: { timeoutMs?: number; project?: string } = {}): Promise<PodmanHandle> {
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  const dir = mkdtempSync(join(tmpdir(), 'opscrew-podman-'));
  const conf = join(dir, 'containers.conf');
  writeFileSync(conf, CONTAINERS_CONF_BASE);
  const podmanEnv: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: process.env.HOME ?? '/root',
    CONTAINERS_CONF: conf,
  };
  const project = opts.project ?? `opscrewtest${process.pid}`;
  const socket = join(dir, 'podman.sock');
  const log = join(dir, 'service.log');
  let service: ReturnType<typeof spawn> | null = null;
  let exited = false;

  const removeProject = (): void => {
    const ids = run('podman', ['ps', '-a', '-q', '--filter', `label=com.docker.compose.project=${project}`], podmanEnv, 30_000);
    const list = ids.out.split(/\s+/).filter((x) => /^[0-9a-f]{12,64}$/.test(x));
    if (list.length) run('podman', ['rm', '-f', '-t', '0', ...list], podmanEnv, 60_000);
  };

  const stop = async (): Promise<void> => {
    removeProject();
    if (service && !exited) {
      const s = service;
      const gone = new Promise<void>((r) => s.once('exit', () => r()));
      s.kill('SIGTERM');
      const t = setTimeout(() => s.kill('SIGKILL'), 5_000);
      await gone;
      clearTimeout(t);
    }
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    ensureBusyboxImage(podmanEnv, dir);
    chooseRuntime(podmanEnv, conf);
    const logFd = openSync(log, 'a');
    service = spawn('podman', ['system', 'service', '--time=0', `unix://${socket}`], { env: podmanEnv, stdio: ['ignore', logFd, logFd] });
    closeSync(logFd);
    service.once('exit', () => {
      exited = true;
    });
    while (!(existsSync(socket) && (await ping(socket)))) {
      if (exited) throw new Error('podman system service exited');
      if (Date.now() > deadline) throw new Error('podman system service did not answer on its socket');
      await new Promise((r) => setTimeout(r, 200));
    }
  } catch (e) {
    const text = existsSync(log) ? readFileSync(log, 'utf8').slice(-4000) : '';
    await stop();
    throw new Error(`${e instanceof Error ? e.message : String(e)}\n${text}`);
  }

  const port = await freePort();
  const wwwDir = join(dir, 'www');
  mkdirSync(wwwDir);
  writeFileSync(join(wwwDir, 'index.html'), `opscrew compose test ${project}\n`);
  const composeFile = join(dir, 'docker-compose.yml');
  writeFileSync(
    composeFile,
    [
      "version: '3'",
      'services:',
      '  web:',
      `    image: ${BUSYBOX_IMAGE}`,
      '    network_mode: host',
      // httpd as PID 1 ignores SIGTERM: do not wait the default 10 s on every stop.
      '    stop_grace_period: 1s',
      `    command: ["httpd", "-f", "-v", "-p", "127.0.0.1:${port}", "-h", "/www"]`,
      '    volumes:',
      `      - ${wwwDir}:/www:ro`,
      '',
    ].join('\n'),
  );
  return { dockerHost: `unix://${socket}`, podmanEnv, composeFile, project, port, wwwDir, dir, stop };
}
