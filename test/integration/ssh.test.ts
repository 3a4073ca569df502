// ssh against a real Debian sshd on 127.0.0.1 (throwaway host and user keys): remote commands
// run as vetted calls, host-key checking is on, and arguments reach the remote program as ONE
// argument each whatever shell metacharacters they hold.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runProcess } from '../../tools/exec.js';
import { parseCommandLine } from '../../tools/parse-command.js';
import { runToolCall } from '../../tools/run-call.js';
import { createSecretBroker } from '../../tools/secret-broker.js';
import type { FilterCall, SpawnRequest, SpawnResult, ToolCall, ToolContext, ToolName } from '../../tools/types.js';
import { requireBinaries } from '../harness/require.js';
import { startSshd, type SshdHandle } from '../harness/sshd.js';

const req = requireBinaries('sshd:openssh-server', 'ssh:openssh-client', 'ssh-keygen:openssh-client');

/** Hand-built calls: for checks of the executor itself, below what the parser lets through. */
function remote(tool: ToolName, verb: string, args: string[]): ToolCall {
  return { tool, verb, args, class: 'read', scope: {}, canonical: [verb, ...args].join(' '), pipeline: [] };
}

function sshCall(host: string, inner: ToolCall, pipeline: FilterCall[] = []): ToolCall {
  return {
    tool: 'ssh',
    verb: inner.verb,
    args: [],
    class: inner.class,
    scope: { host },
    canonical: `ssh ${host} ${inner.canonical}`,
    pipeline,
    remote: inner,
  };
}

describe.skipIf(req.skip)(`ssh through a real sshd ${req.reason}`, () => {
  let sshd: SshdHandle;
  let work: string;
  const spawned: SpawnRequest[] = [];
  const spy = async (r: SpawnRequest): Promise<SpawnResult> => {
    spawned.push(r);
    return runProcess(r);
  };

  /** A real command line through the real parser, with the same config the executor gets. */
  function line(text: string, c: ToolContext = ctx()): ToolCall {
    const r = parseCommandLine(text, { env: c.env });
    if (!r.ok) throw new Error(`${text}: ${r.message}`);
    return r.value;
  }

  function ctx(knownHosts = sshd.knownHosts, secrets = createSecretBroker()): ToolContext {
    return {
      env: {
        ssh: {
          hosts: {
            edge: { host: '127.0.0.1', port: sshd.port, user: sshd.user, identityFile: sshd.identityFile, knownHosts },
          },
        },
      },
      secrets,
      timeoutMs: 20_000,
      outputCap: 64 * 1024,
      spawn: spy,
    };
  }

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'opscrew-ssh-work-'));
    writeFileSync(join(work, 'motd.txt'), 'hello from the remote side\nsecond line\n');
    writeFileSync(join(work, 'other.txt'), 'x');
    sshd = await startSshd({ timeoutMs: 20_000 });
  }, 60_000);

  afterAll(async () => {
    await sshd?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('runs `cat FILE` on the remote host', async () => {
    const r = await runToolCall(line(`ssh edge cat ${join(work, 'motd.txt')}`), ctx());
    expect(r.stderr).not.toMatch(/Permission denied|verification failed/);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe('hello from the remote side\nsecond line\n');
  });

  it('runs `ls DIR` on the remote host', async () => {
    const r = await runToolCall(line(`ssh edge ls ${work}`), ctx());
    expect(r.exitCode).toBe(0);
    expect(r.stdout.split('\n').filter(Boolean).sort()).toEqual(['motd.txt', 'other.txt']);
  });

  it('runs the remote journalctl when the host has one (with --no-pager)', async () => {
    const r = await runToolCall(line('ssh edge journalctl -n 1'), ctx());
    const last = spawned[spawned.length - 1];
    expect(last?.args[last.args.length - 1]).toBe(`'journalctl' '--no-pager' '-n' '1'`);
    if (existsSync('/usr/bin/journalctl') || existsSync('/bin/journalctl')) {
      // It ran remotely: the remote shell found it (127 = not found) and ssh itself worked (255).
      expect(r.exitCode).not.toBe(127);
      expect(r.exitCode).not.toBe(255);
      expect(r.exitCode).not.toBeNull();
    } else {
      expect(r.exitCode).toBe(127);
    }
  });

  it('pipes the remote output through local filters', async () => {
    const r = await runToolCall(line(`ssh edge cat ${join(work, 'motd.txt')} | grep second`), ctx());
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe('second line\n');
  });

  it('a wrong known_hosts entry fails host-key verification', async () => {
    const c = ctx(sshd.wrongKnownHosts);
    const r = await runToolCall(line(`ssh edge cat ${join(work, 'motd.txt')}`, c), c);
    expect(r.exitCode).toBe(255);
    expect(r.stderr).toMatch(/host key|verification failed/i);
    expect(r.stdout).toBe('');
  });

  it('shell metacharacters inside an argument arrive as ONE argument', async () => {
    const pwned = join(tmpdir(), `opscrew-pwned-${process.pid}-${Date.now()}`);
    const evil = `/tmp/x; touch ${pwned}`;
    // The line as an author writes it: the remote command quoted so `;` is inside one word.
    const call = line(`ssh edge "cat '${evil}'"`);
    expect(call.remote?.args).toEqual([evil]);
    const r = await runToolCall(call, ctx());
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('No such file or directory');
    expect(r.stderr).toContain(evil);
    expect(existsSync(pwned)).toBe(false);

    // Words the parser refuses outright; the executor must still quote them if one ever got here.
    const nasty = [`$(touch ${pwned})`, `\`touch ${pwned}\``, `x' ; touch ${pwned}; echo '`, `a\nb && touch ${pwned}`, `| touch ${pwned}`];
    const outcomes = await Promise.all(nasty.map((arg) => runToolCall(sshCall('edge', remote('files', 'ls', ['-d', '--', arg])), ctx())));
    for (const o of outcomes) {
      expect(o.exitCode).not.toBe(0);
      // Exactly one operand reached ls: one complaint, about one (whole) name.
      expect(o.stderr.match(/cannot access/g)).toHaveLength(1);
      expect(o.stderr).toContain('No such file or directory');
    }
    expect(existsSync(pwned)).toBe(false);
  });

  it('scrubs a known secret from the output, and refuses a handle in the remote command', async () => {
    const secrets = createSecretBroker();
    const value = 'pa55-word-only-the-executor-sees';
    const handle = secrets.register('vault:kv/edge#pw', value);
    writeFileSync(join(work, 'app.env'), `PASSWORD=${value}\n`);
    const c = ctx(sshd.knownHosts, secrets);
    const r = await runToolCall(line(`ssh edge cat ${join(work, 'app.env')}`, c), c);
    // The file was read remotely, and the value came back only as its handle.
    expect(r.stdout).toBe(`PASSWORD=${handle}\n`);
    expect(JSON.stringify(r)).not.toContain(value);
    // A handle would put the value on the remote host's command line (its process list, its
    // logs): no remote command takes one.
    const refused = parseCommandLine(`ssh edge cat ${join(work, `${handle}.missing`)}`, { env: c.env });
    expect(refused).toMatchObject({ ok: false, code: 'refused', message: expect.stringMatching(/holds a secret handle/) });
    rmSync(join(work, 'app.env'));
  });

  it('the executor refuses a host that is not in the config, spawning nothing', async () => {
    expect(parseCommandLine('ssh not-configured cat /etc/hostname', { env: ctx().env }).ok).toBe(false);
    const before = spawned.length;
    const r = await runToolCall(sshCall('not-configured', remote('files', 'cat', ['/etc/hostname'])), ctx());
    expect(r.refused?.code).toBe('ssh-host');
    expect(spawned.length).toBe(before);
  });
});
