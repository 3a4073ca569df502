// The files tool, in-process with node:fs: cat ls stat test (read), cp mkdir chmod write
// (mutate), rm (destructive). Every path is resolved through symlinks and must land inside
// one of the configured roots (also resolved); the operation then runs through a verified
// descriptor of its folder (fs-verified.ts), so what was checked is what is touched even if a
// folder on the way is swapped for a link meanwhile.
import { createHash } from 'node:crypto';
import { constants, promises as fsp, type Stats } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve, sep } from 'node:path';
import { chmodNoFollow, inside, O_PATH, openVerified, openWithin, outsideProc, writeAtomic } from './fs-verified.js';
import { ToolError } from './secret-broker.js';
import type { ExecOutcome, ToolCall, ToolContext } from './types.js';

export const FILES_VERBS = ['cat', 'ls', 'stat', 'test', 'cp', 'mkdir', 'chmod', 'rm', 'write'] as const;

interface FlagSpec {
  /** Boolean short letters. */
  bool: string;
  /** Short letters taking a value. */
  value?: string;
  /** Long names → short letter. */
  long?: Readonly<Record<string, string>>;
}

/** The flags each verb runs (the vetted set of tools/defs/files.ts); anything else is refused before touching the disk. */
const FLAGS: Readonly<Record<string, FlagSpec>> = {
  cat: { bool: '' },
  ls: { bool: 'laAhd1RtrSni' },
  stat: { bool: 'Lt', value: 'c', long: { dereference: 'L', terse: 't', format: 'c' } },
  test: { bool: 'efdrwxsLh' },
  cp: { bool: 'parRnfvb' },
  mkdir: { bool: 'pv', value: 'm', long: { parents: 'p', mode: 'm' } },
  chmod: { bool: 'Rvc', long: { recursive: 'R' } },
  rm: { bool: 'frRdv', long: { force: 'f', recursive: 'r' } },
  write: { bool: '' },
};

/** Entries a recursive listing, copy or chmod may visit before it stops. */
const MAX_TREE_ENTRIES = 10_000;

/** A refusal of the whole call: a code and a message naming the path and why. */
export class Refusal {
  constructor(
    readonly code: string,
    readonly message: string,
  ) {}
}

interface Parsed {
  flags: Set<string>;
  values: Map<string, string>;
  operands: string[];
}

function parseArgs(verb: string, args: string[]): Parsed | Refusal {
  const spec = FLAGS[verb] ?? { bool: '' };
  const values = spec.value ?? '';
  const allowed = (): string => [...spec.bool, ...values].map((x) => '-' + x).join(' ') || 'none';
  const flags = new Set<string>();
  const vals = new Map<string, string>();
  const operands: string[] = [];
  let endOfFlags = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    if (!endOfFlags && a === '--') {
      endOfFlags = true;
      continue;
    }
    // A chmod mode like `-x` is not a flag we run; modes are written `a-x` or octal.
    if (endOfFlags || !a.startsWith('-') || a.length < 2) {
      operands.push(a);
      continue;
    }
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = eq === -1 ? a.slice(2) : a.slice(2, eq);
      const letter = spec.long?.[name];
      if (letter === undefined) return new Refusal('files-flag', `files ${verb}: flag --${name} is not supported (allowed: ${allowed()})`);
      if (values.includes(letter)) {
        const v = eq !== -1 ? a.slice(eq + 1) : args[++i];
        if (v === undefined) return new Refusal('files-flag', `files ${verb}: --${name} needs a value`);
        vals.set(letter, v);
      } else flags.add(letter);
      continue;
    }
    for (let j = 1; j < a.length; j++) {
      const f = a[j] ?? '';
      if (values.includes(f)) {
        const v = a.slice(j + 1) || args[++i];
        if (v === undefined) return new Refusal('files-flag', `files ${verb}: -${f} needs a value`);
        vals.set(f, v);
        break;
      }
      if (!spec.bool.includes(f)) return new Refusal('files-flag', `files ${verb}: flag -${f} is not supported (allowed: ${allowed()})`);
      flags.add(f);
    }
  }
  return { flags, values: vals, operands };
}

/**
 * Applies a chmod mode (octal, or symbolic like `u+x,g-w,o=r`, with X s t) to `current`.
 * Returns null when the mode does not parse.
 */
export function applyMode(spec: string, current: number, isDir: boolean): number | null {
  // As GNU chmod: a numeric mode keeps a folder's setuid/setgid bits unless it has a fifth digit (00755).
  if (/^[0-7]{1,4}$/.test(spec)) return parseInt(spec, 8) | (isDir ? current & 0o6000 : 0);
  if (/^0[0-7]{4}$/.test(spec)) return parseInt(spec, 8);
  let mode = current & 0o7777;
  for (const clause of spec.split(',')) {
    const m = /^([ugoa]*)((?:[-+=][rwxXst]*)+)$/.exec(clause);
    if (!m) return null;
    const who = m[1] || 'a';
    const has = (c: string): boolean => who.includes(c) || who.includes('a');
    for (const op of (m[2] ?? '').match(/[-+=][rwxXst]*/g) ?? []) {
      const perms = op.slice(1);
      let bits = 0;
      const anyX = isDir || (mode & 0o111) !== 0;
      for (const p of perms) {
        const rwx = p === 'r' ? 4 : p === 'w' ? 2 : p === 'x' || (p === 'X' && anyX) ? 1 : 0;
        if (rwx) {
          if (has('u')) bits |= rwx << 6;
          if (has('g')) bits |= rwx << 3;
          if (has('o')) bits |= rwx;
        }
        if (p === 's') {
          if (has('u')) bits |= 0o4000;
          if (has('g')) bits |= 0o2000;
        }
        if (p === 't' && has('o')) bits |= 0o1000;
      }
      let mask = 0;
      if (has('u')) mask |= 0o4700;
      if (has('g')) mask |= 0o2070;
      if (has('o')) mask |= 0o1007;
      if (op[0] === '+') mode |= bits;
      else if (op[0] === '-') mode &= ~bits;
      else mode = (mode & ~mask) | bits;
    }
  }
  return mode;
}

function errText(e: unknown): string {
  const code = e && typeof e === 'object' && 'code' in e ? String((e as { code: unknown }).code) : '';
  switch (code) {
    case 'ENOENT':
      return 'No such file or directory';
    case 'EACCES':
    case 'EPERM':
      return 'Permission denied';
    case 'EISDIR':
      return 'Is a directory';
    case 'ENOTDIR':
      return 'Not a directory';
    case 'EEXIST':
      return 'File exists';
    case 'ENOTEMPTY':
      return 'Directory not empty';
    case 'ELOOP':
      return 'Too many levels of symbolic links';
    case 'ENAMETOOLONG':
      return 'File name too long';
    default:
      return outsideProc(e instanceof Error ? e.message : String(e));
  }
}


function isEnoent(e: unknown): boolean {
  return !!e && typeof e === 'object' && 'code' in e && (e as { code: unknown }).code === 'ENOENT';
}


/** The configured roots, resolved; roots that do not exist are dropped. */
export async function resolveRoots(roots: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const r of roots) {
    if (!isAbsolute(r)) continue;
    try {
      out.push(await fsp.realpath(r));
    } catch {
      // A root that does not exist holds nothing.
    }
  }
  return out;
}

/**
 * Resolves `p` through every symlink; for a path that does not exist yet, the nearest
 * existing ancestor is resolved and the rest appended. With `keepLast`, the last component
 * itself is not followed (rm removes a link, not its target).
 */
export async function resolvePath(p: string, keepLast = false): Promise<string> {
  const abs = resolve(p);
  if (keepLast && abs !== sep) {
    return join(await resolvePath(dirname(abs)), basename(abs));
  }
  const rest: string[] = [];
  let cur = abs;
  for (;;) {
    try {
      const real = await fsp.realpath(cur);
      return rest.length ? join(real, ...rest.reverse()) : real;
    } catch (e) {
      if (!isEnoent(e) || cur === sep) throw e;
      rest.push(basename(cur));
      cur = dirname(cur);
    }
  }
}

/** `p` resolved through its links and inside one of `roots` (resolved), or the refusal saying why not. */
export async function contained(p: string, roots: string[], keepLast = false, tool = 'files'): Promise<string | Refusal> {
  if (p.includes('\0') || p.includes('\n')) return new Refusal(`${tool}-path`, `${tool}: NUL or newline in a path`);
  if (!isAbsolute(p)) return new Refusal(`${tool}-path`, `${tool}: ${p} is not an absolute path`);
  let real: string;
  try {
    real = await resolvePath(p, keepLast);
  } catch (e) {
    return new Refusal(`${tool}-path`, `${tool}: cannot resolve ${p}: ${errText(e)}`);
  }
  if (!roots.some((r) => inside(real, r))) {
    const via = real === resolve(p) ? '' : ` (resolves to ${real})`;
    return new Refusal(`${tool}-outside-roots`, `${tool}: ${p}${via} is outside the configured roots (${roots.join(', ') || 'none'})`);
  }
  return real;
}

/** Appends to a byte-capped output. */
class Out {
  private parts: string[] = [];
  private size = 0;
  truncated = false;
  constructor(private readonly cap: number) {}
  add(s: string): void {
    const b = Buffer.byteLength(s);
    if (this.size + b <= this.cap) {
      this.parts.push(s);
      this.size += b;
      return;
    }
    const room = this.cap - this.size;
    if (room > 0) this.parts.push(Buffer.from(s).subarray(0, room).toString('utf8'));
    this.size = this.cap;
    this.truncated = true;
  }
  get full(): boolean {
    return this.size >= this.cap;
  }
  text(): string {
    return this.parts.join('');
  }
}

function modeString(st: Stats): string {
  const t = st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : st.isFile() ? '-' : '?';
  const bits = 'rwxrwxrwx';
  let s = t;
  for (let i = 0; i < 9; i++) s += st.mode & (1 << (8 - i)) ? bits[i] : '-';
  return s;
}

function typeName(st: Stats): string {
  if (st.isFile()) return 'regular file';
  if (st.isDirectory()) return 'directory';
  if (st.isSymbolicLink()) return 'symbolic link';
  if (st.isFIFO()) return 'fifo';
  if (st.isSocket()) return 'socket';
  return 'special file';
}


/**
 * The path an operation on `real` (already checked inside the roots) should use: its directory
 * is opened (never through a link) and verified by openWithin, and the last name is reached
 * through that descriptor (`/proc/self/fd/N/name`). A directory on the way swapped for a link
 * after the check cannot move the operation outside the roots: the kernel resolves from the
 * directory that was verified. The descriptor stays open until the call ends (`c.pins`).
 * A missing directory fails as the operation would (ENOENT).
 */
async function pin(c: OpCtx, real: string): Promise<string> {
  const isRoot = c.roots.includes(real);
  const dir = isRoot ? real : dirname(real);
  const { fh, real: opened } = await openVerified(dir, O_PATH | constants.O_DIRECTORY, c.roots);
  c.pins.push(fh);
  // Inside a root is not enough with nested roots: it must be the very folder that was checked.
  if (opened !== dir) throw new ToolError('files-moved', `files: ${dir} changed while the call ran (it is now ${opened}); refused`);
  // `N/.` for a root itself: `N` alone is the magic link, which lstat would describe.
  return `/proc/self/fd/${fh.fd}/${isRoot ? '.' : basename(real)}`;
}


/**
 * Runs `fn` on the directory at `path` (a verified descriptor path), itself opened without
 * following a link and verified, as `/proc/self/fd/N`; closed afterwards. Recursion goes from
 * one such directory to the next, so a subfolder swapped for a link is never entered.
 */
async function inDir<T>(c: OpCtx, path: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const fh = await openWithin(path, O_PATH | constants.O_DIRECTORY, c.roots);
  try {
    return await fn(`/proc/self/fd/${fh.fd}`);
  } finally {
    await fh.close();
  }
}

/**
 * mkdir -p through verified descriptors: from the root holding `real`, each component is made
 * (if missing) and then opened without following links before the next is made inside it, so a
 * link planted on the way fails the call instead of leading out of the roots. True if it made the
 * last one (the folder asked for); `lastMode` is that one's creation mode.
 */
async function mkdirPinned(c: OpCtx, real: string, lastMode?: number): Promise<boolean> {
  const root = c.roots.filter((r) => inside(real, r)).sort((a, b) => b.length - a.length)[0];
  if (root === undefined) throw new ToolError('files-outside-roots', `files: ${real} is outside the configured roots`);
  let fh = await openWithin(root, O_PATH | constants.O_DIRECTORY, c.roots);
  c.pins.push(fh);
  let made = false;
  const parts = (root === sep ? real.slice(1) : real.slice(root.length + 1)).split(sep).filter(Boolean);
  for (const [i, part] of parts.entries()) {
    const next = `/proc/self/fd/${fh.fd}/${part}`;
    try {
      await fsp.mkdir(next, i === parts.length - 1 && lastMode !== undefined ? { mode: lastMode } : {});
      made = true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      made = false;
    }
    try {
      fh = await openWithin(next, O_PATH | constants.O_DIRECTORY, c.roots);
    } catch (e) {
      // As GNU mkdir -p: the folder asked for exists as a file → "File exists".
      if ((e as NodeJS.ErrnoException).code === 'ENOTDIR' && i === parts.length - 1) throw Object.assign(new Error('exists'), { code: 'EEXIST' });
      throw e;
    }
    c.pins.push(fh);
  }
  return made;
}

async function readCapped(path: string, out: Out, roots: readonly string[]): Promise<void> {
  const fh = await openWithin(path, constants.O_RDONLY, roots);
  try {
    const st = await fh.stat();
    if (st.isDirectory()) throw Object.assign(new Error('dir'), { code: 'EISDIR' });
    const buf = Buffer.alloc(64 * 1024);
    for (;;) {
      if (out.full) {
        const { bytesRead } = await fh.read(buf, 0, 1, null);
        if (bytesRead > 0) out.truncated = true;
        return;
      }
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) return;
      out.add(buf.subarray(0, bytesRead).toString('utf8'));
    }
  } finally {
    await fh.close();
  }
}



interface OpCtx {
  verb: string;
  flags: Set<string>;
  values: Map<string, string>;
  operands: string[];
  roots: string[];
  out: Out;
  err: Out;
  content: string | undefined;
  reveal: (s: string) => string;
  /** Directories opened by pin(), closed when the call ends. */
  pins: fsp.FileHandle[];
}

type Step = Promise<number | Refusal>;

/** Resolves every operand first: one path outside the roots refuses the whole call. */
async function containAll(c: OpCtx, paths: string[], keepLast = false): Promise<string[] | Refusal> {
  const real: string[] = [];
  for (const p of paths) {
    const r = await contained(p, c.roots, keepLast);
    if (r instanceof Refusal) return r;
    real.push(r);
  }
  return real;
}

async function doCat(c: OpCtx): Step {
  if (c.operands.length === 0) return new Refusal('files-usage', 'files cat: needs at least one path');
  const real = await containAll(c, c.operands);
  if (real instanceof Refusal) return real;
  let code = 0;
  for (const [i, p] of real.entries()) {
    try {
      await readCapped(p, c.out, c.roots);
    } catch (e) {
      if (e instanceof ToolError) return new Refusal(e.code, e.message);
      c.err.add(`cat: ${c.operands[i]}: ${errText(e)}\n`);
      code = 1;
    }
  }
  return code;
}

function humanSize(n: number): string {
  if (n < 1024) return String(n);
  const units = ['K', 'M', 'G', 'T', 'P'];
  let v = n;
  let u = -1;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v < 10 ? Math.ceil(v * 10) / 10 : Math.ceil(v)}${units[u]}`;
}

async function lsLine(c: OpCtx, full: string, shown: string): Promise<string> {
  const inode = async (): Promise<string> => (c.flags.has('i') ? `${(await fsp.lstat(full)).ino} ` : '');
  if (!c.flags.has('l')) return `${await inode()}${shown}\n`;
  const st = await fsp.lstat(full);
  const size = c.flags.has('h') ? humanSize(st.size) : String(st.size);
  let line = `${await inode()}${modeString(st)} ${st.nlink} ${st.uid} ${st.gid} ${size} ${st.mtime.toISOString()} ${shown}`;
  if (st.isSymbolicLink()) line += ` -> ${await fsp.readlink(full)}`;
  return `${line}\n`;
}

async function sortedEntries(c: OpCtx, dir: string): Promise<string[]> {
  let names = await fsp.readdir(`${dir}/.`);
  if (!c.flags.has('a') && !c.flags.has('A')) names = names.filter((n) => !n.startsWith('.'));
  // As GNU ls: `.` and `..` are sorted (and reversed) like any other name.
  if (c.flags.has('a')) names = ['.', '..', ...names];
  if (c.flags.has('t') || c.flags.has('S')) {
    const withStat = await Promise.all(names.map(async (n) => ({ n, st: await fsp.lstat(`${dir}/${n}`).catch(() => null) })));
    withStat.sort((x, y) => {
      const d = c.flags.has('S') ? (y.st?.size ?? 0) - (x.st?.size ?? 0) : (y.st?.mtimeMs ?? 0) - (x.st?.mtimeMs ?? 0);
      return d || (x.n < y.n ? -1 : x.n > y.n ? 1 : 0);
    });
    names = withStat.map((x) => x.n);
  } else names.sort();
  if (c.flags.has('r')) names.reverse();
  return names;
}

async function doLs(c: OpCtx): Step {
  const operands = c.operands;
  if (operands.length === 0) return new Refusal('files-usage', 'files ls: needs a path (there is no working directory)');
  const real = await containAll(c, operands);
  if (real instanceof Refusal) return real;
  let code = 0;
  let visited = 0;
  const multi = real.length > 1 || c.flags.has('R');
  let first = true;
  // `path` names the folder; it is opened (never through a link) and listed through that descriptor.
  const listDir = async (path: string, shown: string): Promise<void> => {
    if (c.out.full || visited > MAX_TREE_ENTRIES) {
      c.out.truncated = true;
      return;
    }
    await inDir(c, path, async (dir) => {
      if (multi) c.out.add(`${first ? '' : '\n'}${shown}:\n`);
      first = false;
      const names = await sortedEntries(c, dir);
      const subdirs: string[] = [];
      for (const n of names) {
        if (c.out.full || ++visited > MAX_TREE_ENTRIES) {
          c.out.truncated = true;
          return;
        }
        // Not join(): it would fold `N/..` into /proc/self/fd.
        const full = `${dir}/${n}`;
        c.out.add(await lsLine(c, full, n));
        if (c.flags.has('R') && n !== '.' && n !== '..' && (await fsp.lstat(full)).isDirectory()) subdirs.push(n);
      }
      for (const n of subdirs) {
        const sub = `${shown.replace(/\/$/, '')}/${n}`;
        try {
          await listDir(`${dir}/${n}`, sub);
        } catch (e) {
          // As GNU ls: a folder below that cannot be read is reported (exit 1) and the rest listed.
          if (e instanceof ToolError) throw e;
          c.err.add(`ls: cannot open directory '${sub}': ${errText(e)}\n`);
          code = Math.max(code, 1);
        }
      }
    });
  };
  for (const [i, r] of real.entries()) {
    const shown = operands[i] ?? r;
    try {
      const p = await pin(c, r);
      const st = await fsp.stat(p);
      if (!st.isDirectory() || c.flags.has('d')) {
        c.out.add(await lsLine(c, p, shown));
        continue;
      }
      await listDir(p, shown);
    } catch (e) {
      if (e instanceof ToolError) throw e;
      c.err.add(`ls: cannot access '${shown}': ${errText(e)}\n`);
      code = 2;
    }
  }
  return code;
}

/** A few of stat(1)'s format sequences. */
function statFormat(fmt: string, name: string, st: Stats): string {
  const secs = (d: Date): string => String(Math.floor(d.getTime() / 1000));
  const map: Record<string, () => string> = {
    n: () => name,
    s: () => String(st.size),
    a: () => (st.mode & 0o7777).toString(8),
    A: () => modeString(st),
    u: () => String(st.uid),
    g: () => String(st.gid),
    U: () => String(st.uid),
    G: () => String(st.gid),
    F: () => typeName(st),
    h: () => String(st.nlink),
    i: () => String(st.ino),
    b: () => String(st.blocks),
    y: () => st.mtime.toISOString(),
    Y: () => secs(st.mtime),
    x: () => st.atime.toISOString(),
    X: () => secs(st.atime),
    z: () => st.ctime.toISOString(),
    Z: () => secs(st.ctime),
    '%': () => '%',
  };
  return fmt.replace(/%(.)/g, (m, k: string) => map[k]?.() ?? m) + '\n';
}

async function doStat(c: OpCtx): Step {
  if (c.operands.length === 0) return new Refusal('files-usage', 'files stat: needs a path');
  // Without -L the link itself is described (its parent must be inside a root); with -L its target.
  const deref = c.flags.has('L');
  const real = await containAll(c, c.operands, !deref);
  if (real instanceof Refusal) return real;
  let code = 0;
  for (const [i, checked] of real.entries()) {
    const p = c.operands[i] ?? checked;
    try {
      const r = await pin(c, checked);
      const st = deref ? await fsp.stat(r) : await fsp.lstat(r);
      const fmt = c.values.get('c');
      if (fmt !== undefined) c.out.add(statFormat(fmt, p, st));
      else if (c.flags.has('t')) c.out.add(statFormat('%n %s %b %f %u %g %D %i %h %t %T %X %Y %Z %W %o', p, st).replace(/%[fDtTWo]/g, '0'));
      else
        c.out.add(
          `  File: ${p}${st.isSymbolicLink() ? ` -> ${await fsp.readlink(r)}` : ''}\n  Size: ${st.size}\tType: ${typeName(st)}\n` +
            `  Mode: ${(st.mode & 0o7777).toString(8).padStart(4, '0')}/${modeString(st)}\tUid: ${st.uid}\tGid: ${st.gid}\n` +
            `Modify: ${st.mtime.toISOString()}\n`,
        );
    } catch (e) {
      if (e instanceof ToolError) throw e;
      c.err.add(`stat: cannot statx '${p}': ${errText(e)}\n`);
      code = 1;
    }
  }
  return code;
}

async function doTest(c: OpCtx): Step {
  const [p, ...extra] = c.operands;
  if (c.flags.size !== 1 || p === undefined || extra.length) return new Refusal('files-usage', 'files test: use exactly one of -e -f -d -r -w -x -s -L -h and one path');
  const flag = [...c.flags][0] ?? 'e';
  const link = flag === 'L' || flag === 'h';
  const checked = await contained(p, c.roots, link);
  if (checked instanceof Refusal) return checked;
  try {
    const r = await pin(c, checked);
    if (link) return (await fsp.lstat(r)).isSymbolicLink() ? 0 : 1;
    const st = await fsp.stat(r);
    switch (flag) {
      case 'e':
        return 0;
      case 'f':
        return st.isFile() ? 0 : 1;
      case 'd':
        return st.isDirectory() ? 0 : 1;
      case 's':
        return st.size > 0 ? 0 : 1;
      default: {
        const mode = flag === 'r' ? constants.R_OK : flag === 'w' ? constants.W_OK : constants.X_OK;
        await fsp.access(r, mode);
        return 0;
      }
    }
  } catch (e) {
    if (e instanceof ToolError) throw e;
    return 1;
  }
}

async function exists(p: string): Promise<boolean> {
  return fsp.lstat(p).then(
    () => true,
    () => false,
  );
}

/**
 * cp -r through descriptors (see inDir): `to` (a new folder) is made, then each entry of `from`
 * copied: folders recursively, files by content, links verbatim (never followed).
 */
async function copyTree(c: OpCtx, from: string, to: string, preserve: boolean, budget: { left: number }): Promise<void> {
  const st = await fsp.lstat(from);
  // Writable for the copy itself (a read-only source folder); its own mode is set at the end.
  await fsp.mkdir(to, { mode: 0o700 });
  await inDir(c, from, (src) =>
    inDir(c, to, async (dst) => {
      for (const n of (await fsp.readdir(`${src}/.`)).sort()) {
        if (--budget.left < 0) return;
        const s = `${src}/${n}`;
        const est = await fsp.lstat(s);
        if (est.isDirectory()) await copyTree(c, s, `${dst}/${n}`, preserve, budget);
        else if (est.isSymbolicLink()) await fsp.symlink(await fsp.readlink(s), `${dst}/${n}`);
        else if (est.isFile()) {
          const fh = await openWithin(s, constants.O_RDONLY, c.roots);
          const data = await fh.readFile().finally(() => fh.close());
          await writeAtomic(`${dst}/${n}`, data, est.mode & (preserve ? 0o7777 : 0o777), c.roots, preserve ? { atime: est.atime, mtime: est.mtime } : undefined);
        }
      }
      // As GNU cp: the source folder's mode bits (setgid included; all of them with -p).
      await fsp.chmod(dst, st.mode & (preserve ? 0o7777 : 0o3777));
      if (preserve) await fsp.utimes(dst, st.atime, st.mtime);
    }),
  );
}

async function doCp(c: OpCtx): Step {
  if (c.operands.length !== 2) return new Refusal('files-usage', 'files cp: needs exactly SOURCE and DEST');
  const [srcArg, dstArg] = c.operands as [string, string];
  const recursive = c.flags.has('r') || c.flags.has('R') || c.flags.has('a');
  const preserve = c.flags.has('p') || c.flags.has('a');
  const srcReal = await contained(srcArg, c.roots);
  if (srcReal instanceof Refusal) return srcReal;
  let dst = await contained(dstArg, c.roots);
  if (dst instanceof Refusal) return dst;
  try {
    const src = await pin(c, srcReal);
    const sst = await fsp.stat(src);
    const dstStat = await fsp.stat(await pin(c, dst)).catch(() => null);
    if (dstStat?.isDirectory()) {
      // The name as given (`cp /srv/link dir/` makes dir/link, not the link target's name).
      dst = await contained(join(dst, basename(srcArg)), c.roots);
      if (dst instanceof Refusal) return dst;
    }
    if (dst === srcReal || inside(dst, srcReal)) {
      c.err.add(`cp: cannot copy '${srcArg}' into itself\n`);
      return 1;
    }
    const target = await pin(c, dst);
    const targetStat = await fsp.stat(target).catch(() => null);
    if (c.flags.has('n') && (await exists(target))) return 0;
    if (sst.isDirectory()) {
      if (!recursive) {
        c.err.add(`cp: -r not specified; omitting directory '${srcArg}'\n`);
        return 1;
      }
      // Copying into an existing tree could write through links planted in it: only a new target.
      if (await exists(target)) {
        c.err.add(`cp: '${dstArg}': a recursive copy needs a target that does not exist yet\n`);
        return 1;
      }
      const budget = { left: MAX_TREE_ENTRIES };
      await copyTree(c, src, target, preserve, budget);
      if (budget.left < 0) {
        c.err.add(`cp: stopped after ${MAX_TREE_ENTRIES} entries; the copy is incomplete\n`);
        return 1;
      }
    } else {
      const read = async (path: string): Promise<Buffer> => {
        const fh = await openWithin(path, constants.O_RDONLY, c.roots);
        return fh.readFile().finally(() => fh.close());
      };
      // The backup is written like any target: a link planted at `target~` is replaced, not followed.
      if (c.flags.has('b') && targetStat && !targetStat.isDirectory()) await writeAtomic(`${target}~`, await read(target), targetStat.mode & 0o7777, c.roots);
      const data = await read(src);
      const mode = preserve ? sst.mode & 0o7777 : targetStat && !targetStat.isDirectory() ? targetStat.mode & 0o7777 : sst.mode & 0o777;
      await writeAtomic(target, data, mode, c.roots, preserve ? { atime: sst.atime, mtime: sst.mtime } : undefined);
    }
    if (c.flags.has('v')) c.out.add(`'${srcArg}' -> '${dstArg}'\n`);
    return 0;
  } catch (e) {
    if (e instanceof ToolError) return new Refusal(e.code, e.message);
    c.err.add(`cp: cannot copy '${srcArg}' to '${dstArg}': ${errText(e)}\n`);
    return 1;
  }
}

async function doMkdir(c: OpCtx): Step {
  if (c.operands.length === 0) return new Refusal('files-usage', 'files mkdir: needs a path');
  const modeSpec = c.values.get('m');
  let mode: number | undefined;
  if (modeSpec !== undefined) {
    const m = applyMode(modeSpec, 0o777, true);
    if (m === null) return new Refusal('files-mode', `files mkdir: mode ${modeSpec} is not a mode`);
    if (m & 0o6000) return new Refusal('files-mode', `files mkdir: setuid/setgid mode ${modeSpec} is refused`);
    mode = m;
  }
  const real = await containAll(c, c.operands);
  if (real instanceof Refusal) return real;
  let code = 0;
  for (const [i, r] of real.entries()) {
    try {
      let made: boolean;
      if (c.flags.has('p')) made = await mkdirPinned(c, r, mode === undefined ? undefined : 0o700);
      else {
        await fsp.mkdir(await pin(c, r), mode === undefined ? {} : { mode: 0o700 });
        made = true;
      }
      // As GNU mkdir: -m sets the mode of the folder this call made (exactly, past the umask),
      // never of one that was there already. Made at 0700 first, so it is never wider meanwhile.
      if (made && mode !== undefined) await chmodNoFollow(await pin(c, r), mode);
      if (c.flags.has('v') && (made || !c.flags.has('p'))) c.out.add(`mkdir: created directory '${c.operands[i]}'\n`);
    } catch (e) {
      if (e instanceof ToolError) throw e;
      c.err.add(`mkdir: cannot create directory '${c.operands[i]}': ${errText(e)}\n`);
      code = 1;
    }
  }
  return code;
}

async function doChmod(c: OpCtx): Step {
  const [spec, ...paths] = c.operands;
  if (spec === undefined || paths.length === 0 || applyMode(spec, 0o644, false) === null) {
    return new Refusal('files-usage', 'files chmod: use MODE (octal like 0644 or symbolic like g+w) and at least one path');
  }
  const real = await containAll(c, paths);
  if (real instanceof Refusal) return real;
  let code = 0;
  let visited = 0;
  const one = async (p: string, shown: string): Promise<void> => {
    const st = await fsp.lstat(p);
    // Links are never followed (the kernel would change the target, maybe outside the roots).
    if (st.isSymbolicLink()) return;
    const before = st.mode & 0o7777;
    const after = applyMode(spec, before, st.isDirectory()) ?? before;
    // setuid/setgid: a vetted tool does not mint privileged binaries.
    if (after & 0o6000 && !(before & 0o6000)) throw new Refusal('files-mode', `files chmod: mode ${spec} adds setuid/setgid; refused`);
    await chmodNoFollow(p, after);
    if (c.flags.has('v') || (c.flags.has('c') && after !== before)) {
      const fmt = (m: number): string => m.toString(8).padStart(4, '0');
      c.out.add(after === before ? `mode of '${shown}' retained as ${fmt(after)}\n` : `mode of '${shown}' changed from ${fmt(before)} to ${fmt(after)}\n`);
    }
    if (c.flags.has('R') && st.isDirectory()) {
      await inDir(c, p, async (dir) => {
        for (const n of await fsp.readdir(`${dir}/.`)) {
          if (++visited > MAX_TREE_ENTRIES) return;
          await one(`${dir}/${n}`, `${shown.replace(/\/$/, '')}/${n}`);
        }
      });
    }
  };
  for (const [i, r] of real.entries()) {
    try {
      await one(await pin(c, r), paths[i] ?? r);
    } catch (e) {
      if (e instanceof Refusal) return e;
      if (e instanceof ToolError) throw e;
      c.err.add(`chmod: cannot access '${paths[i]}': ${errText(e)}\n`);
      code = 1;
    }
  }
  if (visited > MAX_TREE_ENTRIES) {
    c.err.add(`chmod: stopped after ${MAX_TREE_ENTRIES} entries; the rest are unchanged\n`);
    code = 1;
  }
  return code;
}

/** Empties the folder at `path` through descriptors (see inDir); links are removed, never followed. */
async function rmTree(c: OpCtx, path: string, budget = { left: MAX_TREE_ENTRIES }): Promise<void> {
  await inDir(c, path, async (dir) => {
    for (const n of await fsp.readdir(`${dir}/.`)) {
      if (--budget.left < 0) throw Object.assign(new Error(`more than ${MAX_TREE_ENTRIES} entries`), { code: 'E2BIG' });
      const child = `${dir}/${n}`;
      if ((await fsp.lstat(child)).isDirectory()) {
        await rmTree(c, child, budget);
        await fsp.rmdir(child);
      } else await fsp.unlink(child);
    }
  });
}

async function doRm(c: OpCtx): Step {
  if (c.operands.length === 0) return new Refusal('files-usage', 'files rm: needs a path');
  const recursive = c.flags.has('r') || c.flags.has('R');
  const force = c.flags.has('f');
  const real = await containAll(c, c.operands, true);
  if (real instanceof Refusal) return real;
  for (const [i, r] of real.entries()) {
    // A root (or anything holding one) is never removed, whatever the flags.
    if (c.roots.some((root) => inside(root, r))) return new Refusal('files-rm-root', `files rm: ${c.operands[i]} is a configured root or holds one; refused`);
  }
  let code = 0;
  for (const [i, r] of real.entries()) {
    const shown = c.operands[i] ?? r;
    try {
      const p = await pin(c, r);
      const st = await fsp.lstat(p);
      if (st.isDirectory()) {
        if (recursive) {
          await rmTree(c, p);
          await fsp.rmdir(p);
        } else if (c.flags.has('d')) await fsp.rmdir(p);
        else {
          c.err.add(`rm: cannot remove '${shown}': Is a directory\n`);
          code = 1;
          continue;
        }
      } else {
        await fsp.unlink(p);
      }
      if (c.flags.has('v')) c.out.add(`removed '${shown}'\n`);
    } catch (e) {
      if (e instanceof ToolError) throw e;
      if (force && isEnoent(e)) continue;
      c.err.add(`rm: cannot remove '${shown}': ${errText(e)}\n`);
      code = 1;
    }
  }
  return code;
}

async function doWrite(c: OpCtx): Step {
  const [p, digestArg, ...extra] = c.operands;
  if (p === undefined || extra.length) return new Refusal('files-usage', 'files write: needs one path (and its sha256=DIGEST)');
  if (c.content === undefined) return new Refusal('files-usage', 'files write: the call has no content');
  // The canonical line carries the content's digest (approvals bind to it): write only those bytes.
  if (digestArg !== undefined) {
    const m = /^sha256=([0-9a-f]{64})$/.exec(digestArg);
    const actual = createHash('sha256').update(c.content, 'utf8').digest('hex');
    if (!m || m[1] !== actual) return new Refusal('files-digest', `files write: the content does not match ${digestArg}`);
  }
  const r = await contained(p, c.roots);
  if (r instanceof Refusal) return r;
  // Secret values enter only here, at exec time; a file holding one is private by default.
  const text = c.reveal(c.content);
  try {
    const target = await pin(c, r);
    const existing = await fsp.stat(target).catch(() => null);
    if (existing?.isDirectory()) throw Object.assign(new Error('dir'), { code: 'EISDIR' });
    const mode = existing ? existing.mode & 0o777 : text !== c.content ? 0o600 : 0o644;
    await writeAtomic(target, text, mode, c.roots);
    return 0;
  } catch (e) {
    if (e instanceof ToolError) return new Refusal(e.code, e.message);
    c.err.add(`write: ${p}: ${errText(e)}\n`);
    return 1;
  }
}

const OPS: Record<string, (c: OpCtx) => Step> = {
  cat: doCat,
  ls: doLs,
  stat: doStat,
  test: doTest,
  cp: doCp,
  mkdir: doMkdir,
  chmod: doChmod,
  rm: doRm,
  write: doWrite,
};

/** Runs a `files` call inside env.files.roots. Never throws; refusals come back in `refused`. */
export async function runFilesCall(call: ToolCall, ctx: ToolContext): Promise<ExecOutcome> {
  const started = performance.now();
  const done = (exitCode: number | null, out: Out, err: Out, refusal?: Refusal): ExecOutcome => ({
    exitCode,
    stdout: out.text(),
    stderr: refusal ? refusal.message : err.text(),
    durationMs: Math.round((performance.now() - started) * 10) / 10,
    timedOut: false,
    truncated: out.truncated || err.truncated,
    ...(refusal ? { refused: { code: refusal.code, message: refusal.message } } : {}),
  });
  const out = new Out(ctx.outputCap);
  const err = new Out(ctx.outputCap);
  const op = OPS[call.verb];
  if (!op) return done(null, out, err, new Refusal('files-verb', `files: unknown verb ${call.verb} (known: ${FILES_VERBS.join(' ')})`));
  const parsed = parseArgs(call.verb, call.args);
  if (parsed instanceof Refusal) return done(null, out, err, parsed);
  const roots = await resolveRoots(ctx.env.files?.roots ?? []);
  if (roots.length === 0) return done(null, out, err, new Refusal('files-no-roots', 'files: no configured file roots exist (config files.roots)'));
  const pins: fsp.FileHandle[] = [];
  try {
    const r = await op({
      verb: call.verb,
      flags: parsed.flags,
      values: parsed.values,
      operands: parsed.operands,
      roots,
      out,
      err,
      content: call.content,
      reveal: (s) => ctx.secrets.reveal(s),
      pins,
    });
    return r instanceof Refusal ? done(null, out, err, r) : done(r, out, err);
  } catch (e) {
    // reveal() refuses unknown handles with a coded error: nothing was written.
    if (e instanceof ToolError) return done(null, out, err, new Refusal(e.code, e.message));
    err.add(`files ${call.verb}: ${errText(e)}\n`);
    return done(1, out, err);
  } finally {
    await Promise.all(pins.map((fh) => fh.close().catch(() => undefined)));
  }
}
