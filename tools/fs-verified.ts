// Opening files and folders so that what the kernel opened is known to be inside the roots:
// never through a last-component link, and checked by the descriptor's own /proc name. The
// files tool (files-ops.ts) acts only through such descriptors, so a folder swapped for a link
// after a path was checked cannot carry an operation outside the roots.
import { randomBytes } from 'node:crypto';
import { constants, promises as fsp } from 'node:fs';
import { dirname, join, sep } from 'node:path';
import { ToolError } from './secret-broker.js';

/** `path` is `root` or lies below it (both resolved). */
export function inside(path: string, root: string): boolean {
  if (root === sep) return true;
  return path === root || path.startsWith(root + sep);
}

/** `/proc/self/fd/N/name`: one directory entry under a verified descriptor (see pin, inDir). */
const ONE_NAME_UNDER_FD = /^\/proc\/self\/fd\/\d+\/[^/]+$/;

/**
 * Linux's O_PATH: a descriptor that only names a file (no read permission needed, so a `--x`
 * folder works, and opening a device or FIFO has no side effect); /proc resolves through it.
 * Node does not export the constant; this is its value on Linux (x86, arm).
 */
export const O_PATH = 0o10000000;

/** A message without the /proc/self/fd/N/ names operations use internally (see pin). */
export function outsideProc(text: string): string {
  return text.replace(/\/proc\/self\/fd\/\d+\/?/g, '…/');
}

/**
 * Opens `path` (never following a last-component link) and checks what the kernel actually
 * opened, by the descriptor's own name in /proc: a directory swapped for a symlink after
 * `contained` checked the path cannot make a read or write land outside the roots. A file
 * this call created out there is removed again. Where /proc is missing, the path check alone
 * stands.
 */
export async function openWithin(path: string, flags: number, roots: readonly string[], mode?: number): Promise<fsp.FileHandle> {
  return (await openVerified(path, flags, roots, mode)).fh;
}

/** openWithin, also giving where the kernel opened it (undefined only past PATH_MAX, see there). */
export async function openVerified(path: string, flags: number, roots: readonly string[], mode?: number): Promise<{ fh: fsp.FileHandle; real: string | undefined }> {
  const fh = await fsp.open(path, flags | constants.O_NOFOLLOW, mode);
  let real: string;
  try {
    real = await fsp.readlink(`/proc/self/fd/${fh.fd}`);
  } catch (cause) {
    // Past PATH_MAX the kernel cannot name the file; one name opened without following a link
    // inside a directory already verified (`/proc/self/fd/N/name`) cannot be elsewhere anyway.
    if ((cause as NodeJS.ErrnoException).code === 'ENAMETOOLONG' && ONE_NAME_UNDER_FD.test(path)) return { fh, real: undefined };
    await fh.close();
    if (flags & constants.O_CREAT) await fsp.rm(path, { force: true });
    throw new ToolError('files-unverifiable', `files: cannot tell where ${outsideProc(path)} was opened (/proc/self/fd is not readable); refused`, { cause });
  }
  if (roots.some((r) => inside(real, r))) return { fh, real };
  await fh.close();
  if (flags & constants.O_CREAT && real.startsWith(sep)) await fsp.rm(real, { force: true });
  throw new ToolError('files-outside-roots', `files: ${outsideProc(path)} opened ${real}, outside the configured roots (${roots.join(', ')}): a directory on the path changed after it was checked`);
}

/** Writes via a temp file and rename: a symlink planted at the target is replaced, never followed. */
export async function writeAtomic(target: string, data: Buffer | string, mode: number, roots: readonly string[], times?: { atime: Date; mtime: Date }): Promise<void> {
  // Short and fixed-length: a long name plus a suffix could pass NAME_MAX where the name did not.
  const tmp = join(dirname(target), `.opscrew-${randomBytes(6).toString('hex')}`);
  const fh = await openWithin(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, roots, mode);
  try {
    await fh.writeFile(data);
    await fh.chmod(mode);
    if (times) await fh.utimes(times.atime, times.mtime);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await fsp.rename(tmp, target);
  } catch (e) {
    await fsp.rm(tmp, { force: true });
    throw e;
  }
}

/**
 * chmod that never follows a link (the kernel would change its target, maybe outside the
 * roots): the file is named by an O_PATH descriptor opened without following, and changed
 * through its /proc name (as glibc's fchmodat does), so no read permission is needed.
 */
export async function chmodNoFollow(path: string, mode: number): Promise<void> {
  const fh = await fsp.open(path, O_PATH | constants.O_NOFOLLOW);
  try {
    if ((await fh.stat()).isSymbolicLink()) return;
    await fsp.chmod(`/proc/self/fd/${fh.fd}`, mode);
  } finally {
    await fh.close();
  }
}
