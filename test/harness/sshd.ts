// A throwaway Debian sshd on 127.0.0.1: fresh host and user keys, a free port, a known_hosts
// line for exactly that key, our own config (no PAM, no StrictModes). Start-up is bounded and
// stop() kills the daemon and removes the temp dir.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.js';

export interface SshdHandle {
  port: number;
  /** Private key of the user allowed to log in (the user running the tests). */
  identityFile: string;
  /** known_hosts holding exactly this server's host key, `[127.0.0.1]:PORT ssh-ed25519 …`. */
  knownHosts: string;
  /** A known_hosts naming the same address with a different key (host-key checking must fail). */
  wrongKnownHosts: string;
  user: string;
  dir: string;
  stop(): Promise<void>;
}

function keygen(file: string): void {
  const r = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'opscrew-test', '-f', file], { timeout: 15_000 });
  if (r.status !== 0) throw new Error(`ssh-keygen failed: ${r.stderr?.toString() ?? r.error?.message}`);
}

async function waitForBanner(port: number, deadline: number): Promise<void> {
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const sock = connect(port, '127.0.0.1');
      const done = (v: boolean): void => {
        sock.destroy();
        resolve(v);
      };
      sock.setTimeout(1_000, () => done(false));
      sock.once('data', (d) => done(d.toString().startsWith('SSH-')));
      sock.once('error', () => done(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`sshd did not answer on 127.0.0.1:${port}`);
}

/** Starts sshd; throws (with sshd's log) if it is not answering within `timeoutMs`. */
export async function startSshd(opts: { sshdPath?: string; timeoutMs?: number } = {}): Promise<SshdHandle> {
  const sshdPath = opts.sshdPath ?? '/usr/sbin/sshd';
  const dir = mkdtempSync(join(tmpdir(), 'opscrew-sshd-'));
  // sshd insists on its privilege-separation directory even when not separating to a user.
  try {
    mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  } catch {
    // Not root: sshd then runs unprivileged and only the same user can log in.
  }
  const hostKey = join(dir, 'host_ed25519');
  const userKey = join(dir, 'user_ed25519');
  const otherKey = join(dir, 'other_ed25519');
  keygen(hostKey);
  keygen(userKey);
  keygen(otherKey);
  const authorized = join(dir, 'authorized_keys');
  writeFileSync(authorized, readFileSync(`${userKey}.pub`), { mode: 0o600 });
  const port = await freePort();
  const pidFile = join(dir, 'sshd.pid');
  const log = join(dir, 'sshd.log');
  const config = join(dir, 'sshd_config');
  writeFileSync(
    config,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${hostKey}`,
      `PidFile ${pidFile}`,
      `AuthorizedKeysFile ${authorized}`,
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PermitRootLogin prohibit-password',
      'StrictModes no',
      'UsePAM no',
      'AllowTcpForwarding no',
      'X11Forwarding no',
      'PrintMotd no',
      'LogLevel VERBOSE',
      '',
    ].join('\n'),
  );
  const hostPub = readFileSync(`${hostKey}.pub`, 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
  const otherPub = readFileSync(`${otherKey}.pub`, 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
  const knownHosts = join(dir, 'known_hosts');
  const wrongKnownHosts = join(dir, 'known_hosts.wrong');
  writeFileSync(knownHosts, `[127.0.0.1]:${port} ${hostPub}\n`);
  writeFileSync(wrongKnownHosts, `[127.0.0.1]:${port} ${otherPub}\n`);

  // -D: stay in the foreground so the child is the daemon and we can kill it by pid.
  const child = spawn(sshdPath, ['-D', '-f', config, '-E', log], { stdio: 'ignore' });
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });

  const stop = async (): Promise<void> => {
    if (!exited) {
      const gone = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 3_000);
      await gone;
      clearTimeout(t);
    }
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    await waitForBanner(port, Date.now() + (opts.timeoutMs ?? 15_000));
  } catch (e) {
    const text = existsSync(log) ? readFileSync(log, 'utf8') : '(no log)';
    await stop();
    throw new Error(`${e instanceof Error ? e.message : String(e)}\n${text}`);
  }
  return { port, identityFile: userKey, knownHosts, wrongKnownHosts, user: userInfo().username, dir, stop };
}
