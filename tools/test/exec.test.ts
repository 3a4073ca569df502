// Real processes through the one execa wrapper: exit codes, exact env, process-group kill on
// timeout and abort (grandchildren included), output caps, missing programs as data.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';
import { afterAll, describe, expect, it } from 'vitest';
import { baseEnv, runProcess } from '../exec.js';

const dir = mkdtempSync(join(tmpdir(), 'opscrew-exec-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const env = baseEnv();
const base = { env, timeoutMs: 10_000, outputCap: 64 * 1024 };

/** Running (not gone, not a zombie waiting for init to reap it). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

async function waitGone(pid: number, ms = 3_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (!alive(pid)) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return !alive(pid);
}

describe('runProcess', () => {
  it('returns exit code, stdout and stderr of a real process', async () => {
    const r = await runProcess({ ...base, file: 'sh', args: ['-c', 'printf out; printf err >&2; exit 3'] });
    expect(r.exitCode).toBe(3);
    expect(r.stdout).toBe('out');
    expect(r.stderr).toBe('err');
    expect(r.timedOut).toBe(false);
    expect(r.truncated).toBe(false);
    expect(r.spawnError).toBeUndefined();
    expect(r.durationMs).toBeGreaterThan(0);
  });

  it('passes arguments as one word each, no shell interpretation', async () => {
    const r = await runProcess({ ...base, file: 'printf', args: ['%s|', 'a b', '$(id)', '; rm -rf /', '`x`'] });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe('a b|$(id)|; rm -rf /|`x`|');
  });

  it('gives the child exactly the env it was given', async () => {
    process.env.OPSCREW_LEAK_CANARY = 'leaked';
    try {
      const r = await runProcess({ ...base, file: '/usr/bin/env', args: [], env: { ONLY: 'this', PATH: '/usr/bin:/bin' } });
      expect(r.exitCode).toBe(0);
      const lines = r.stdout.trim().split('\n').sort();
      expect(lines).toEqual(['ONLY=this', 'PATH=/usr/bin:/bin']);
    } finally {
      delete process.env.OPSCREW_LEAK_CANARY;
    }
  });

  it('baseEnv holds PATH, HOME, LANG and only the extras passed', () => {
    const e = baseEnv({ KUBECONFIG: '/k' }, { PATH: '/p', HOME: '/h', SECRET: 'x' });
    expect(e).toEqual({ PATH: '/p', HOME: '/h', LANG: 'C.UTF-8', KUBECONFIG: '/k' });
  });

  it('uses cwd and feeds input on stdin', async () => {
    const r = await runProcess({ ...base, file: 'sh', args: ['-c', 'pwd; cat'], cwd: dir, input: 'from-stdin' });
    expect(r.stdout).toBe(`${dir}\nfrom-stdin`);
  });

  it('gives a process without input a closed stdin instead of hanging', async () => {
    const r = await runProcess({ ...base, timeoutMs: 3_000, file: 'cat', args: [] });
    expect(r.timedOut).toBe(false);
    expect(r.exitCode).toBe(0);
  });

  it('reports a missing program as data (ENOENT), never throws', async () => {
    const r = await runProcess({ ...base, file: 'opscrew-no-such-program', args: ['x'] });
    expect(r.exitCode).toBeNull();
    expect(r.spawnError).toMatch(/ENOENT/);
  });

  it('an empty program name or a bad cwd is data too', async () => {
    const r = await runProcess({ ...base, file: '', args: [] });
    expect(r.spawnError).toBeTruthy();
    const c = await runProcess({ ...base, file: 'true', args: [], cwd: join(dir, 'no-such-dir') });
    expect(c.spawnError).toMatch(/ENOENT/);
  });

  it('on timeout kills the whole process group, grandchild included', async () => {
    const pidFile = join(dir, 'grandchild.pid');
    // The child starts a grandchild that ignores SIGTERM, then waits; both must die.
    const script = `sh -c 'trap "" TERM; sleep 60' & echo $! > ${pidFile}; sleep 60`;
    const t0 = Date.now();
    const r = await runProcess({ ...base, timeoutMs: 400, file: 'sh', args: ['-c', script] });
    const took = Date.now() - t0;
    expect(r.timedOut).toBe(true);
    expect(r.exitCode).toBeNull();
    expect(r.signal).toBe('SIGTERM');
    expect(took).toBeLessThan(5_000);
    const gpid = Number(readFileSync(pidFile, 'utf8').trim());
    expect(gpid).toBeGreaterThan(1);
    expect(await waitGone(gpid)).toBe(true);
  });

  it('reaps stragglers left in the group after the program exits', async () => {
    const r = await runProcess({ ...base, file: 'sh', args: ['-c', 'sleep 60 & echo $!'] });
    expect(r.exitCode).toBe(0);
    const gpid = Number(r.stdout.trim());
    expect(await waitGone(gpid)).toBe(true);
  });

  it('returns in bounded time when a descendant escaped the group and holds the pipes', async () => {
    const pidFile = join(dir, 'escaped.pid');
    const t0 = Date.now();
    // setsid: a new session, out of reach of the group kill; it keeps stdout open.
    const r = await runProcess({ ...base, file: 'sh', args: ['-c', `setsid sh -c 'echo $$ > ${pidFile}; exec sleep 30' & sleep 0.2; echo done`] });
    expect(Date.now() - t0).toBeLessThan(6_000);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe('done\n');
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    if (pid > 1) process.kill(pid, 'SIGKILL');
  });

  it('keeps the first outputCap bytes of a 50 MB writer, marks truncated, stays bounded', async () => {
    const before = process.memoryUsage().rss;
    const r = await runProcess({ ...base, outputCap: 1000, file: 'head', args: ['-c', String(50 * 1024 * 1024), '/dev/zero'] });
    expect(r.exitCode).toBe(0);
    expect(r.truncated).toBe(true);
    expect(r.stdout.length).toBe(1000);
    // Nowhere near 50 MB retained.
    expect(process.memoryUsage().rss - before).toBeLessThan(40 * 1024 * 1024);
  });

  it('caps stderr separately from stdout', async () => {
    const r = await runProcess({ ...base, outputCap: 4, file: 'sh', args: ['-c', 'printf 12; printf abcdefgh >&2'] });
    expect(r.stdout).toBe('12');
    expect(r.stderr).toBe('abcd');
    expect(r.truncated).toBe(true);
  });

  it('an abort signal ends the process group', async () => {
    const ac = new AbortController();
    const t0 = Date.now();
    setTimeout(() => ac.abort(), 200);
    const r = await runProcess({ ...base, file: 'sleep', args: ['30'], signal: ac.signal });
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(r.aborted).toBe(true);
    expect(r.timedOut).toBe(false);
    expect(r.exitCode).toBeNull();
  });

  it('groups still running when this process exits are ended (detached children miss SIGINT)', async () => {
    // A separate node process running this very module: transpiled here (not from a shared
    // dist/ another build may be rewriting), with execa resolved to its installed entry.
    const source = readFileSync(fileURLToPath(new URL('../exec.ts', import.meta.url)), 'utf8');
    const js = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
    const execaEntry = pathToFileURL(createRequire(import.meta.url).resolve('execa')).href;
    const compiled = join(dir, 'exec-under-test.mjs');
    writeFileSync(compiled, js.replace(/from ['"]execa['"]/, `from ${JSON.stringify(execaEntry)}`));
    const script = `
      import { runProcess, baseEnv } from ${JSON.stringify(compiled)};
      void runProcess({ file: 'sh', args: ['-c', 'echo $$ > ${join(dir, 'orphan.pid')}; exec sleep 60'], env: baseEnv(), timeoutMs: 60000, outputCap: 100 });
      const until = Date.now() + 5000;
      const { existsSync } = await import('node:fs');
      while (!existsSync(${JSON.stringify(join(dir, 'orphan.pid'))}) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      process.exit(0);
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { timeout: 20_000 });
    expect(r.status).toBe(0);
    const pid = Number(readFileSync(join(dir, 'orphan.pid'), 'utf8').trim());
    expect(pid).toBeGreaterThan(1);
    expect(await waitGone(pid)).toBe(true);
  });

  it('an already-aborted signal starts nothing', async () => {
    const marker = join(dir, 'should-not-exist');
    const ac = new AbortController();
    ac.abort();
    const r = await runProcess({ ...base, file: 'touch', args: [marker], signal: ac.signal });
    expect(r.aborted).toBe(true);
    expect(existsSync(marker)).toBe(false);
  });
});
