// System binaries the real-parts suites need. Outside CI a missing binary skips the suite with
// a one-line reason; under CI=true it is a failure (a skipped real-parts suite proves nothing).
import { accessSync, constants } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';

const EXTRA_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/** The absolute path of `name` on PATH (plus the sbin dirs), or null. */
export function findBinary(name: string, pathVar: string = process.env.PATH ?? ''): string | null {
  const candidates = isAbsolute(name) ? [name] : [...pathVar.split(delimiter).filter(Boolean), ...EXTRA_DIRS].map((d) => join(d, name));
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      // next
    }
  }
  return null;
}

export interface Requirement {
  /** True when the suite must skip (only ever outside CI). */
  skip: boolean;
  /** One line: what is missing and what provides it; '' when nothing is. */
  reason: string;
  /** name → absolute path, for the binaries that exist. */
  paths: Record<string, string>;
}

/**
 * Checks binaries (`name` or `name:debian-package`). Use as
 * `const req = requireBinaries('sshd:openssh-server'); describe.skipIf(req.skip)(`ssh ${req.reason}`, …)`.
 * Throws under CI=true when one is missing.
 */
export function requireBinaries(...specs: string[]): Requirement {
  const paths: Record<string, string> = {};
  const missing: string[] = [];
  for (const spec of specs) {
    const [name = spec, pkg] = spec.split(':');
    const p = findBinary(name);
    if (p) paths[name] = p;
    else missing.push(pkg ? `${name} (apt-get install ${pkg})` : name);
  }
  if (missing.length === 0) return { skip: false, reason: '', paths };
  const reason = `skipped: missing ${missing.join(', ')}`;
  if (process.env.CI === 'true') throw new Error(`CI=true and a real-parts suite cannot run: missing ${missing.join(', ')}`);
  return { skip: true, reason, paths };
}

/** Single-binary form of requireBinaries. */
export function requireBinary(spec: string): Requirement {
  return requireBinaries(spec);
}
