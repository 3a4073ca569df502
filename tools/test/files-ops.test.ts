// The files tool on real temp directories: containment in the configured roots, symlink
// escape and traversal refused, and each verb doing what it says.
import { createHash } from 'node:crypto';
import { chmodSync, constants, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync, statSync, symlinkSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { runFilesCall } from '../files-ops.js';
import { openWithin } from '../fs-verified.js';
import { createSecretBroker } from '../secret-broker.js';
import type { ToolCall, ToolContext } from '../types.js';

const top = mkdtempSync(join(tmpdir(), 'opscrew-files-'));
afterAll(() => rmSync(top, { recursive: true, force: true }));

let n = 0;
let root = '';
let outside = '';
beforeEach(() => {
  n += 1;
  root = join(top, `root${n}`);
  outside = join(top, `outside${n}`);
  mkdirSync(join(root, 'sub'), { recursive: true });
  mkdirSync(outside);
  writeFileSync(join(root, 'a.txt'), 'alpha\n');
  writeFileSync(join(root, '.hidden'), 'h');
  writeFileSync(join(outside, 'secret.txt'), 'TOP-SECRET');
});

function ctx(extra: Partial<ToolContext> = {}): ToolContext {
  return {
    env: { files: { roots: [root] } },
    secrets: createSecretBroker(),
    timeoutMs: 5_000,
    outputCap: 64 * 1024,
    ...extra,
  };
}

function call(verb: string, args: string[], content?: string): ToolCall {
  return {
    tool: 'files',
    verb,
    args,
    class: 'read',
    scope: { paths: args.filter((a) => a.startsWith('/')) },
    canonical: ['files', verb, ...args].join(' '),
    pipeline: [],
    ...(content !== undefined ? { content } : {}),
  };
}

describe('files: containment', () => {
  it('reads a file inside a root', async () => {
    const r = await runFilesCall(call('cat', [join(root, 'a.txt')]), ctx());
    expect(r.refused).toBeUndefined();
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe('alpha\n');
  });

  it('refuses a path outside every root', async () => {
    const r = await runFilesCall(call('cat', [join(outside, 'secret.txt')]), ctx());
    expect(r.refused?.code).toBe('files-outside-roots');
    expect(r.exitCode).toBeNull();
    expect(r.stdout).toBe('');
  });

  it('refuses ../ traversal out of a root', async () => {
    const p = `${root}/sub/../../outside${n}/secret.txt`;
    const r = await runFilesCall(call('cat', [p]), ctx());
    expect(r.refused?.code).toBe('files-outside-roots');
    expect(r.stdout).not.toContain('TOP-SECRET');
  });

  it('refuses a symlink inside the root that points outside (read)', async () => {
    symlinkSync(join(outside, 'secret.txt'), join(root, 'link'));
    const r = await runFilesCall(call('cat', [join(root, 'link')]), ctx());
    expect(r.refused?.code).toBe('files-outside-roots');
    expect(r.refused?.message).toContain('resolves to');
    expect(r.stdout).not.toContain('TOP-SECRET');
  });

  it('refuses writing through a symlinked directory that points outside', async () => {
    symlinkSync(outside, join(root, 'escape'));
    const r = await runFilesCall(call('write', [join(root, 'escape', 'new.txt')], 'x'), ctx());
    expect(r.refused?.code).toBe('files-outside-roots');
    expect(existsSync(join(outside, 'new.txt'))).toBe(false);
  });

  it('refuses writing to a symlink file that points outside', async () => {
    symlinkSync(join(outside, 'secret.txt'), join(root, 'out-link'));
    const r = await runFilesCall(call('write', [join(root, 'out-link')], 'overwritten'), ctx());
    expect(r.refused?.code).toBe('files-outside-roots');
    expect(readFileSync(join(outside, 'secret.txt'), 'utf8')).toBe('TOP-SECRET');
  });

  it('follows a symlink that stays inside the root', async () => {
    symlinkSync(join(root, 'a.txt'), join(root, 'inner-link'));
    const r = await runFilesCall(call('cat', [join(root, 'inner-link')]), ctx());
    expect(r.stdout).toBe('alpha\n');
  });

  it('accepts a root that is itself reached through a symlink', async () => {
    const alias = join(top, `alias${n}`);
    symlinkSync(root, alias);
    const r = await runFilesCall(call('cat', [join(root, 'a.txt')]), ctx({ env: { files: { roots: [alias] } } }));
    expect(r.stdout).toBe('alpha\n');
  });

  it('refuses relative paths and a missing files config', async () => {
    expect((await runFilesCall(call('cat', ['a.txt']), ctx())).refused?.code).toBe('files-path');
    const none = await runFilesCall(call('cat', [join(root, 'a.txt')]), ctx({ env: {} }));
    expect(none.refused?.code).toBe('files-no-roots');
  });

  it('refuses cp when either side is outside', async () => {
    const out1 = await runFilesCall(call('cp', [join(outside, 'secret.txt'), join(root, 'copy')]), ctx());
    expect(out1.refused?.code).toBe('files-outside-roots');
    expect(existsSync(join(root, 'copy'))).toBe(false);
    const out2 = await runFilesCall(call('cp', [join(root, 'a.txt'), join(outside, 'copy')]), ctx());
    expect(out2.refused?.code).toBe('files-outside-roots');
    expect(existsSync(join(outside, 'copy'))).toBe(false);
  });

  it('refuses flags it does not run', async () => {
    const r = await runFilesCall(call('chmod', ['--reference=/etc/passwd', join(root, 'a.txt')]), ctx());
    expect(r.refused?.code).toBe('files-flag');
    const r2 = await runFilesCall(call('cp', ['-L', join(root, 'sub'), join(root, 'sub2')]), ctx());
    expect(r2.refused?.code).toBe('files-flag');
    expect(existsSync(join(root, 'sub2'))).toBe(false);
  });

  it('a recursive chmod does not follow a link out of the root', async () => {
    symlinkSync(outside, join(root, 'sub', 'out'));
    const before = statSync(join(outside, 'secret.txt')).mode & 0o777;
    const r = await runFilesCall(call('chmod', ['-R', '0700', root]), ctx());
    expect(r.exitCode).toBe(0);
    expect(statSync(join(root, 'a.txt')).mode & 0o777).toBe(0o700);
    expect(statSync(join(outside, 'secret.txt')).mode & 0o777).toBe(before);
    expect(statSync(outside).mode & 0o777).not.toBe(0o700);
  });
});

describe('files: a directory swapped after the check', () => {
  // `contained` resolves a path and checks it; the fs call comes later. If a directory on the
  // path became a symlink in between, the opened descriptor's name in /proc shows where the
  // kernel really went. Here the swap has already happened when openWithin runs.
  it('refuses a read that the kernel resolved outside the roots', async () => {
    symlinkSync(outside, join(root, 'swapped'));
    const roots = [realpathSync(root)];
    await expect(openWithin(join(root, 'swapped', 'secret.txt'), constants.O_RDONLY, roots)).rejects.toMatchObject({
      code: 'files-outside-roots',
      message: expect.stringContaining(`opened ${realpathSync(outside)}/secret.txt`),
    });
    const fh = await openWithin(join(root, 'a.txt'), constants.O_RDONLY, roots);
    expect((await fh.readFile()).toString()).toBe('alpha\n');
    await fh.close();
  });

  it('removes a file it created outside the roots, and leaves what was there', async () => {
    symlinkSync(outside, join(root, 'swapped'));
    const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL;
    await expect(openWithin(join(root, 'swapped', 'new.tmp'), flags, [realpathSync(root)], 0o600)).rejects.toMatchObject({ code: 'files-outside-roots' });
    expect(readdirSync(outside)).toEqual(['secret.txt']);
  });
});

describe('files: what people see is the folder, not the descriptor behind it', () => {
  it('ls -la of a root shows `.` and `..` as folders, and no /proc name anywhere', async () => {
    const r = await runFilesCall(call('ls', ['-la', root]), ctx());
    expect(r.exitCode).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^d\S+ .* \.$/);
    expect(lines[1]).toMatch(/^d\S+ .* \.\.$/);
    expect(r.stdout).toContain(' a.txt');
    expect(r.stdout + r.stderr).not.toContain('/proc/');
    const missing = await runFilesCall(call('ls', [join(root, 'nope', 'x')]), ctx());
    expect(missing.stderr).toContain(`ls: cannot access '${join(root, 'nope', 'x')}': No such file or directory`);
    expect(missing.stderr).not.toContain('/proc/');
  });
});

describe('files: GNU behaviour kept', () => {
  it('ls -ar sorts `.` and `..` like other names (last when reversed)', async () => {
    const r = await runFilesCall(call('ls', ['-ar', join(root, 'sub')]), ctx());
    expect(r.stdout.trim().split('\n')).toEqual(['..', '.']);
    writeFileSync(join(root, 'sub', 'b'), '');
    const r2 = await runFilesCall(call('ls', ['-ar', join(root, 'sub')]), ctx());
    expect(r2.stdout.trim().split('\n')).toEqual(['b', '..', '.']);
  });

  it('mkdir -p of an existing file says File exists; of a path through a file, Not a directory', async () => {
    const a = await runFilesCall(call('mkdir', ['-p', join(root, 'a.txt')]), ctx());
    expect(a.exitCode).toBe(1);
    expect(a.stderr).toContain('File exists');
    const b = await runFilesCall(call('mkdir', ['-p', join(root, 'a.txt', 'x')]), ctx());
    expect(b.exitCode).not.toBe(0);
    expect(b.stderr).toContain('Not a directory');
  });
});

describe('files: a directory swapped for a link while calls run', () => {
  // The race the pinning closes: between the path check and the fs call another writer turns a
  // directory on the path into a link to outside the roots. The swapper runs in this event
  // loop between the call's awaits, which is where that window is.
  function swapper(dir: string, parked: string): { stop: () => Promise<void> } {
    let stopped = false;
    const loop = (async () => {
      while (!stopped) {
        try {
          renameSync(dir, parked);
          symlinkSync(outside, dir);
        } catch {
          // a call holds it mid-way: try again
        }
        await new Promise((r) => setImmediate(r));
        try {
          unlinkSync(dir);
          renameSync(parked, dir);
        } catch {
          // as above
        }
        await new Promise((r) => setImmediate(r));
      }
    })();
    return {
      stop: async () => {
        stopped = true;
        await loop;
      },
    };
  }
  const realDir = (a: string, b: string): string | undefined => [a, b].find((x) => existsSync(x) && !lstatSync(x).isSymbolicLink());

  it('rm, chmod, write and mkdir -p never touch anything outside the roots', async () => {
    const d = join(root, 'd');
    const parked = join(root, 'd-parked');
    mkdirSync(d);
    const swap = swapper(d, parked);
    try {
      for (let i = 0; i < 150; i++) {
        const name = `victim-${i}`;
        writeFileSync(join(outside, name), 'outside');
        chmodSync(join(outside, name), 0o644);
        const inside = realDir(d, parked);
        if (inside) writeFileSync(join(inside, name), 'inside');
        await runFilesCall(call('rm', ['-f', join(d, name)]), ctx());
        await runFilesCall(call('chmod', ['0600', join(d, name)]), ctx());
        await runFilesCall(call('write', [join(d, `${name}.w`)], 'written'), ctx());
        await runFilesCall(call('mkdir', ['-p', join(d, `${name}.dir`, 'x')]), ctx());
        expect(readFileSync(join(outside, name), 'utf8'), name).toBe('outside');
        expect(statSync(join(outside, name)).mode & 0o777, name).toBe(0o644);
      }
    } finally {
      await swap.stop();
    }
    expect(readdirSync(outside).filter((f) => f.endsWith('.w') || f.endsWith('.dir'))).toEqual([]);
    expect(readdirSync(outside).filter((f) => f.startsWith('victim-')).length).toBe(150);
  });

  it('rm -r, chmod -R, cp -r and ls -R never enter a subfolder swapped for a link', async () => {
    writeFileSync(join(outside, 'keep'), 'outside');
    chmodSync(join(outside, 'keep'), 0o644);
    const before = readdirSync(outside).sort();
    for (let i = 0; i < 60; i++) {
      const tree = join(root, `t${i}`);
      const sub = join(tree, 'sub');
      const parked = join(tree, 'sub-parked');
      mkdirSync(sub, { recursive: true });
      writeFileSync(join(sub, 'f'), 'inside');
      const swap = swapper(sub, parked);
      try {
        const listed = await runFilesCall(call('ls', ['-R', tree]), ctx());
        expect(listed.stdout).not.toContain('keep');
        await runFilesCall(call('chmod', ['-R', '0700', tree]), ctx());
        await runFilesCall(call('cp', ['-r', tree, join(root, `copy${i}`)]), ctx());
        await runFilesCall(call('rm', ['-r', tree]), ctx());
      } finally {
        await swap.stop();
      }
      expect(readFileSync(join(outside, 'keep'), 'utf8')).toBe('outside');
      expect(statSync(join(outside, 'keep')).mode & 0o777).toBe(0o644);
      // A link is copied as a link (verbatim); what must never happen is outside content copied in.
      const copied = join(root, `copy${i}`, 'sub');
      if (existsSync(copied) && !lstatSync(copied).isSymbolicLink()) expect(existsSync(join(copied, 'keep'))).toBe(false);
    }
    expect(readdirSync(outside).sort()).toEqual(before);
  });
});

describe('files: verbs', () => {
  it('cat caps output and marks truncated', async () => {
    writeFileSync(join(root, 'big'), 'x'.repeat(10_000));
    const r = await runFilesCall(call('cat', [join(root, 'big')]), ctx({ outputCap: 100 }));
    expect(r.stdout).toBe('x'.repeat(100));
    expect(r.truncated).toBe(true);
  });

  it('cat of a missing file fails like cat does', async () => {
    const r = await runFilesCall(call('cat', [join(root, 'nope')]), ctx());
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('No such file or directory');
  });

  it('ls lists names; -a shows dotfiles; -l shows modes', async () => {
    const plain = await runFilesCall(call('ls', [root]), ctx());
    expect(plain.stdout).toBe('a.txt\nsub\n');
    const all = await runFilesCall(call('ls', ['-A', root]), ctx());
    expect(all.stdout).toBe('.hidden\na.txt\nsub\n');
    const long = await runFilesCall(call('ls', ['-l', root]), ctx());
    expect(long.stdout).toMatch(/^-rw.* a\.txt\n/m);
    expect(long.stdout).toMatch(/^drwx.* sub\n/m);
  });

  it('stat reports size, type and mode', async () => {
    const r = await runFilesCall(call('stat', [join(root, 'a.txt')]), ctx());
    expect(r.stdout).toContain('Size: 6');
    expect(r.stdout).toContain('regular file');
  });

  it('test answers with its exit code', async () => {
    expect((await runFilesCall(call('test', ['-f', join(root, 'a.txt')]), ctx())).exitCode).toBe(0);
    expect((await runFilesCall(call('test', ['-d', join(root, 'a.txt')]), ctx())).exitCode).toBe(1);
    expect((await runFilesCall(call('test', ['-e', join(root, 'missing')]), ctx())).exitCode).toBe(1);
    expect((await runFilesCall(call('test', ['-d', join(root, 'sub')]), ctx())).exitCode).toBe(0);
  });

  it('write creates and replaces a file atomically; secret handles revealed only in the file', async () => {
    const secrets = createSecretBroker();
    const handle = secrets.register('vault:kv/app#pw', 'hunter2-value');
    const target = join(root, 'sub', 'app.env');
    const r = await runFilesCall(call('write', [target], `PW=${handle}\n`), ctx({ secrets }));
    expect(r.exitCode).toBe(0);
    expect(readFileSync(target, 'utf8')).toBe('PW=hunter2-value\n');
    // A new file holding a secret is private.
    expect(statSync(target).mode & 0o777).toBe(0o600);
    const again = await runFilesCall(call('write', [target], 'PW=plain\n'), ctx({ secrets }));
    expect(again.exitCode).toBe(0);
    expect(readFileSync(target, 'utf8')).toBe('PW=plain\n');
  });

  it('write checks the sha256 the canonical line carries', async () => {
    const target = join(root, 'd.txt');
    const good = createHash('sha256').update('payload\n').digest('hex');
    const ok = await runFilesCall(call('write', [target, `sha256=${good}`], 'payload\n'), ctx());
    expect(ok.exitCode).toBe(0);
    expect(readFileSync(target, 'utf8')).toBe('payload\n');
    const bad = await runFilesCall(call('write', [target, `sha256=${good}`], 'other bytes\n'), ctx());
    expect(bad.refused?.code).toBe('files-digest');
    expect(readFileSync(target, 'utf8')).toBe('payload\n');
  });

  it('write with an unknown secret handle is refused and writes nothing', async () => {
    const target = join(root, 'x.env');
    const r = await runFilesCall(call('write', [target], 'PW={{secret:vault:kv/none#x}}'), ctx());
    expect(r.refused?.code).toBe('unknown-secret-handle');
    expect(existsSync(target)).toBe(false);
  });

  it('cp copies a file, into a directory too', async () => {
    const r = await runFilesCall(call('cp', [join(root, 'a.txt'), join(root, 'b.txt')]), ctx());
    expect(r.exitCode).toBe(0);
    expect(readFileSync(join(root, 'b.txt'), 'utf8')).toBe('alpha\n');
    const r2 = await runFilesCall(call('cp', [join(root, 'a.txt'), join(root, 'sub')]), ctx());
    expect(r2.exitCode).toBe(0);
    expect(readFileSync(join(root, 'sub', 'a.txt'), 'utf8')).toBe('alpha\n');
  });

  it('cp -r copies a tree to a new target and refuses an existing one', async () => {
    writeFileSync(join(root, 'sub', 'f'), 'f');
    symlinkSync(outside, join(root, 'sub', 'link-out'));
    const r = await runFilesCall(call('cp', ['-r', join(root, 'sub'), join(root, 'copy')]), ctx());
    expect(r.exitCode).toBe(0);
    expect(readFileSync(join(root, 'copy', 'f'), 'utf8')).toBe('f');
    // Links are copied as links, never as the outside tree they point to.
    expect(lstatSync(join(root, 'copy', 'link-out')).isSymbolicLink()).toBe(true);
    const again = await runFilesCall(call('cp', ['-r', join(root, 'sub'), join(root, 'copy', 'sub')]), ctx());
    expect(again.exitCode).toBe(0);
    const onto = await runFilesCall(call('cp', ['-r', join(root, 'sub'), join(root, 'copy')]), ctx());
    expect(onto.exitCode).toBe(1);
  });

  it('cp -r keeps folder modes (setgid too), copies a read-only folder, and links as links', async () => {
    mkdirSync(join(root, 'tree', 'ro'), { recursive: true });
    writeFileSync(join(root, 'tree', 'ro', 'f'), 'x');
    symlinkSync('ro/f', join(root, 'tree', 'link'));
    chmodSync(join(root, 'tree'), 0o2775);
    chmodSync(join(root, 'tree', 'ro'), 0o555);
    try {
      const r = await runFilesCall(call('cp', ['-a', join(root, 'tree'), join(root, 'copy')]), ctx());
      expect(r.stderr).toBe('');
      expect(r.exitCode).toBe(0);
      expect(statSync(join(root, 'copy')).mode & 0o7777).toBe(0o2775);
      expect(statSync(join(root, 'copy', 'ro')).mode & 0o7777).toBe(0o555);
      expect(readFileSync(join(root, 'copy', 'ro', 'f'), 'utf8')).toBe('x');
      expect(lstatSync(join(root, 'copy', 'link')).isSymbolicLink()).toBe(true);
    } finally {
      for (const d of ['tree', 'copy']) if (existsSync(join(root, d, 'ro'))) chmodSync(join(root, d, 'ro'), 0o755);
    }
  });

  it('a tree over the entry limit: cp -r and chmod -R say so and exit 1', async () => {
    const big = join(root, 'big');
    mkdirSync(big);
    for (let i = 0; i < 10_005; i++) writeFileSync(join(big, `f${i}`), '');
    const cp = await runFilesCall(call('cp', ['-r', big, join(root, 'big2')]), ctx());
    expect(cp.exitCode).toBe(1);
    expect(cp.stderr).toMatch(/stopped after 10000 entries; the copy is incomplete/);
    const ch = await runFilesCall(call('chmod', ['-R', '0600', big]), ctx());
    expect(ch.exitCode).toBe(1);
    expect(ch.stderr).toMatch(/stopped after 10000 entries; the rest are unchanged/);
  }, 60_000);

  it('write and cp take a name as long as the file system allows (the temp name is short)', async () => {
    const name = 'n'.repeat(250);
    const w = await runFilesCall(call('write', [join(root, name)], 'long'), ctx());
    expect(w.stderr).toBe('');
    expect(readFileSync(join(root, name), 'utf8')).toBe('long');
    const cp = await runFilesCall(call('cp', [join(root, 'a.txt'), join(root, `${name}x`)]), ctx());
    expect(cp.exitCode).toBe(0);
    const tooLong = await runFilesCall(call('write', [join(root, 'n'.repeat(300))], 'x'), ctx());
    expect(tooLong.stderr).toMatch(/File name too long/);
    expect(tooLong.stderr).not.toContain('/.opscrew-');
  });

  it('cp into a folder names the copy as given, even for a link (not by its target)', async () => {
    symlinkSync(join(root, 'a.txt'), join(root, 'alias.txt'));
    const r = await runFilesCall(call('cp', [join(root, 'alias.txt'), join(root, 'sub')]), ctx());
    expect(r.exitCode).toBe(0);
    expect(readFileSync(join(root, 'sub', 'alias.txt'), 'utf8')).toBe('alpha\n');
    expect(existsSync(join(root, 'sub', 'a.txt'))).toBe(false);
  });

  it('chmod with a numeric mode keeps a folder\'s setgid bit, as GNU chmod does; 00755 clears it', async () => {
    chmodSync(join(root, 'sub'), 0o2775);
    expect((await runFilesCall(call('chmod', ['755', join(root, 'sub')]), ctx())).exitCode).toBe(0);
    expect(statSync(join(root, 'sub')).mode & 0o7777).toBe(0o2755);
    expect((await runFilesCall(call('chmod', ['00755', join(root, 'sub')]), ctx())).exitCode).toBe(0);
    expect(statSync(join(root, 'sub')).mode & 0o7777).toBe(0o755);
    chmodSync(join(root, 'a.txt'), 0o2755);
    expect((await runFilesCall(call('chmod', ['644', join(root, 'a.txt')]), ctx())).exitCode).toBe(0);
    expect(statSync(join(root, 'a.txt')).mode & 0o7777).toBe(0o644);
  });

  it('cp -n keeps an existing target', async () => {
    writeFileSync(join(root, 'b.txt'), 'keep');
    expect((await runFilesCall(call('cp', ['-n', join(root, 'a.txt'), join(root, 'b.txt')]), ctx())).exitCode).toBe(0);
    expect(readFileSync(join(root, 'b.txt'), 'utf8')).toBe('keep');
  });

  it('ls -d, -R and -t behave like ls', async () => {
    writeFileSync(join(root, 'sub', 'inner'), 'i');
    expect((await runFilesCall(call('ls', ['-d', join(root, 'sub')]), ctx())).stdout).toBe(`${join(root, 'sub')}\n`);
    const rec = await runFilesCall(call('ls', ['-R', root]), ctx());
    expect(rec.stdout).toBe(`${root}:\na.txt\nsub\n\n${root}/sub:\ninner\n`);
    utimesSync(join(root, 'a.txt'), new Date(1_000_000), new Date(1_000_000));
    const byTime = await runFilesCall(call('ls', ['-t', root]), ctx());
    expect(byTime.stdout).toBe('sub\na.txt\n');
  });

  it('stat -c formats like stat', async () => {
    chmodSync(join(root, 'a.txt'), 0o640);
    const r = await runFilesCall(call('stat', ['-c', '%n %s %a %F', join(root, 'a.txt')]), ctx());
    expect(r.stdout).toBe(`${join(root, 'a.txt')} 6 640 regular file\n`);
  });

  it('chmod takes symbolic modes', async () => {
    chmodSync(join(root, 'a.txt'), 0o644);
    expect((await runFilesCall(call('chmod', ['u+x,g-r', join(root, 'a.txt')]), ctx())).exitCode).toBe(0);
    expect(statSync(join(root, 'a.txt')).mode & 0o777).toBe(0o704);
    expect((await runFilesCall(call('chmod', ['a=r', join(root, 'a.txt')]), ctx())).exitCode).toBe(0);
    expect(statSync(join(root, 'a.txt')).mode & 0o777).toBe(0o444);
    expect((await runFilesCall(call('chmod', ['u+s', join(root, 'a.txt')]), ctx())).refused?.code).toBe('files-mode');
  });

  it('rm -d removes an empty directory only', async () => {
    mkdirSync(join(root, 'empty'));
    expect((await runFilesCall(call('rm', ['-d', join(root, 'empty')]), ctx())).exitCode).toBe(0);
    expect(existsSync(join(root, 'empty'))).toBe(false);
    writeFileSync(join(root, 'sub', 'x'), 'x');
    expect((await runFilesCall(call('rm', ['-d', join(root, 'sub')]), ctx())).exitCode).toBe(1);
    expect(existsSync(join(root, 'sub', 'x'))).toBe(true);
  });

  it('mkdir -m sets the mode of the folder it makes, never of one already there', async () => {
    mkdirSync(join(root, 'exists'));
    chmodSync(join(root, 'exists'), 0o755);
    expect((await runFilesCall(call('mkdir', ['-p', '-m', '0700', join(root, 'exists')]), ctx())).exitCode).toBe(0);
    expect(statSync(join(root, 'exists')).mode & 0o777).toBe(0o755);
    expect((await runFilesCall(call('mkdir', ['-p', '-m', '0750', join(root, 'p1', 'p2')]), ctx())).exitCode).toBe(0);
    expect(statSync(join(root, 'p1', 'p2')).mode & 0o777).toBe(0o750);
    expect((await runFilesCall(call('mkdir', ['-m', '0711', join(root, 'one')]), ctx())).exitCode).toBe(0);
    expect(statSync(join(root, 'one')).mode & 0o777).toBe(0o711);
  });

  it('mkdir makes a directory; -p makes parents; without -p a missing parent fails', async () => {
    const fail = await runFilesCall(call('mkdir', [join(root, 'x', 'y')]), ctx());
    expect(fail.exitCode).toBe(1);
    const ok = await runFilesCall(call('mkdir', ['-p', join(root, 'x', 'y')]), ctx());
    expect(ok.exitCode).toBe(0);
    expect(statSync(join(root, 'x', 'y')).isDirectory()).toBe(true);
  });

  it('chmod sets an octal mode and refuses setuid', async () => {
    const r = await runFilesCall(call('chmod', ['0640', join(root, 'a.txt')]), ctx());
    expect(r.exitCode).toBe(0);
    expect(statSync(join(root, 'a.txt')).mode & 0o777).toBe(0o640);
    const s = await runFilesCall(call('chmod', ['4755', join(root, 'a.txt')]), ctx());
    expect(s.refused?.code).toBe('files-mode');
    expect(statSync(join(root, 'a.txt')).mode & 0o7777).toBe(0o640);
  });

  it('rm removes a file; a directory only with -r; -f ignores missing', async () => {
    expect((await runFilesCall(call('rm', [join(root, 'a.txt')]), ctx())).exitCode).toBe(0);
    expect(existsSync(join(root, 'a.txt'))).toBe(false);
    const dir = await runFilesCall(call('rm', [join(root, 'sub')]), ctx());
    expect(dir.exitCode).toBe(1);
    expect(existsSync(join(root, 'sub'))).toBe(true);
    expect((await runFilesCall(call('rm', ['-r', join(root, 'sub')]), ctx())).exitCode).toBe(0);
    expect(existsSync(join(root, 'sub'))).toBe(false);
    expect((await runFilesCall(call('rm', [join(root, 'gone')]), ctx())).exitCode).toBe(1);
    expect((await runFilesCall(call('rm', ['-f', join(root, 'gone')]), ctx())).exitCode).toBe(0);
  });

  it('rm never removes a root itself, whatever the flags', async () => {
    const r = await runFilesCall(call('rm', ['-rf', root]), ctx());
    expect(r.refused?.code).toBe('files-rm-root');
    expect(existsSync(join(root, 'a.txt'))).toBe(true);
    const viaDots = await runFilesCall(call('rm', ['-rf', `${root}/sub/..`]), ctx());
    expect(viaDots.refused?.code).toBe('files-rm-root');
    expect(existsSync(root)).toBe(true);
  });

  it('rm of a symlink removes the link, not its outside target', async () => {
    symlinkSync(outside, join(root, 'dirlink'));
    const r = await runFilesCall(call('rm', ['-r', join(root, 'dirlink')]), ctx());
    expect(r.exitCode).toBe(0);
    expect(() => lstatSync(join(root, 'dirlink'))).toThrow();
    expect(readFileSync(join(outside, 'secret.txt'), 'utf8')).toBe('TOP-SECRET');
  });
});
