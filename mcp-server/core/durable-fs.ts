// Crash-safe file primitives: a write is temp file + fsync + rename + directory fsync, so after
// a crash a path holds either the old bytes or the new bytes, never a torn or empty file.
import { closeSync, existsSync, fstatSync, fsync, fsyncSync, open as openCb, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';

const TEMP_RE = /^\.(.+)\.(\d+)\.([0-9a-f]{8})\.opscrew-tmp$/;

/** A temp path next to `path` (same directory, so rename is atomic); names the writing pid. */
export function tempPathFor(path: string, pid: number = process.pid): string {
  return join(dirname(path), `.${basename(path)}.${pid}.${randomBytes(4).toString('hex')}.opscrew-tmp`);
}

/** The pid that wrote a temp file named by tempPathFor, or null for any other name. */
export function tempFilePid(name: string): number | null {
  const m = TEMP_RE.exec(name);
  return m ? Number(m[2]) : null;
}

export function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export async function fsyncDirAsync(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Writes `text` to a new temp file beside `path` and fsyncs it; returns the temp path. */
export function writeTempSynced(path: string, text: string): string {
  const { tmp, fd } = createTempBeside(path);
  try {
    writeAllSync(fd, text);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    unlinkQuiet(tmp);
    throw e;
  }
  closeSync(fd);
  return tmp;
}

/** One fsync as ONE thread-pool job: it runs while the main thread does other blocking work. */
export function fsyncFdAsync(fd: number): Promise<void> {
  return new Promise((res, rej) => {
    fsync(fd, (err) => (err ? rej(err) : res()));
  });
}

export interface PendingTemp {
  tmp: string;
  fd: number;
  /** What the target will stat as after `rename(tmp, target)` (rename keeps size and mtime). */
  size: number;
  mtimeMs: number;
}

/** A new, empty temp file beside `path` (created exclusively), open for writing. */
export function createTempBeside(path: string): { tmp: string; fd: number } {
  const tmp = tempPathFor(path);
  return { tmp, fd: openSync(tmp, 'wx', 0o644) };
}

/**
 * createTempBeside as ONE thread-pool job, for a caller that creates the file ahead of need:
 * creating a file waits on the file system's journal while other syncs are in flight (half a
 * millisecond or more under a busy crew), and this thread goes on meanwhile.
 */
export function createTempBesideAsync(path: string): Promise<{ tmp: string; fd: number }> {
  const tmp = tempPathFor(path);
  return new Promise((res, rej) => {
    openCb(tmp, 'wx', 0o644, (err, fd) => (err ? rej(err) : res({ tmp, fd })));
  });
}

/** Writes all of `text` at the descriptor's position. */
export function writeAllSync(fd: number, text: string): void {
  const buf = Buffer.from(text, 'utf8');
  let off = 0;
  while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
}

/**
 * Writes a temp file beside `path` without fsync yet; the caller fsyncs `fd` (e.g. with
 * fsyncFdAsync). `made`: an empty temp beside `path` created earlier (createTempBesideAsync).
 */
export function writeTempPending(path: string, text: string, made?: { tmp: string; fd: number }): PendingTemp {
  const { tmp, fd } = made ?? createTempBeside(path);
  try {
    writeAllSync(fd, text);
    const st = fstatSync(fd);
    return { tmp, fd, size: st.size, mtimeMs: st.mtimeMs };
  } catch (e) {
    closeSync(fd);
    unlinkQuiet(tmp);
    throw e;
  }
}

export function closeQuiet(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed
  }
}

/** fsync a file descriptor and directories concurrently (each its own thread-pool job). */
export function fsyncAll(fd: number, dirs: readonly string[]): Promise<void> {
  const dirFds = [...new Set(dirs)].map((d) => openSync(d, 'r'));
  return Promise.all([fsyncFdAsync(fd), ...dirFds.map((f) => fsyncFdAsync(f))]).then(
    () => dirFds.forEach(closeQuiet),
    (e: unknown) => {
      dirFds.forEach(closeQuiet);
      throw e;
    },
  );
}

export function unlinkQuiet(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone: nothing to clean
  }
}

/** temp + fsync + rename + fsync(dir). `syncDir: false` when a later directory fsync covers it. */
export function writeFileDurable(path: string, text: string, opts: { syncDir?: boolean } = {}): void {
  const tmp = writeTempSynced(path, text);
  try {
    renameSync(tmp, path);
  } catch (e) {
    unlinkQuiet(tmp);
    throw e;
  }
  if (opts.syncDir !== false) fsyncDir(dirname(path));
}

/**
 * rename + fsync of both directories. Returns false when the source is gone (someone else
 * moved it first: a lost race, not an error). Overwrites `to` like rename(2): callers check.
 */
export function renameDurable(from: string, to: string): boolean {
  try {
    renameSync(from, to);
  } catch (e) {
    // ENOENT also means "no destination directory": only a missing source is a lost race.
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' && !existsSync(from)) return false;
    throw e;
  }
  const a = dirname(from);
  const b = dirname(to);
  fsyncDir(b);
  if (a !== b) fsyncDir(a);
  return true;
}
