// Loads the bundled `opscrew mcp` fast path (dist/bundle/mcp.cjs, made by scripts/bundle-mcp.mjs)
// through node:vm with a V8 code cache: Node 20 has no module compile cache, and resolving and
// compiling the ~300 modules of the server and its libraries was most of the stdio cold start.
// The cache file is named by a hash of the bundle's bytes, its path and the Node version; V8
// checks the rest (its own version, flags) and rejects a cache that does not fit. Every cache
// failure is ignored: the bundle then compiles from source, which only costs the saving.
import { isAscii } from 'node:buffer';
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { Script } from 'node:vm';
import type { CliIO } from './output.js';

/** What the bundle exports (cmd-mcp.ts). */
export interface McpBundle {
  mcpFastPath(argv: readonly string[], io?: CliIO): Promise<number | null>;
}

export interface McpBundleOptions {
  /** dist/bundle/mcp.cjs. */
  bundleFile: string;
  /** A module tsc writes on every build (dist/agents/cli/cmd-mcp.js): newer than the bundle means the bundle is stale. */
  sourceFile: string;
  /** Folder for the code cache (see mcpCacheDir); null: no cache. */
  cacheDir: string | null;
  /**
   * A session still running this long after the load has started fine: its cache is written then,
   * so it also holds the functions compiled while serving the first requests. Default 3 s.
   */
  saveAfterMs?: number;
}

export type CacheStatus = 'hit' | 'miss' | 'rejected' | 'off';

/** The code cache of one load. */
export interface BundleCache {
  status: CacheStatus;
  /** Writes the cache now unless V8 accepted the one read (call after a successful session); once. */
  save(): void;
  /** Drops the pending write (argv was not for the fast path after all). */
  cancel(): void;
}

export type McpBundleLoad =
  | { ok: true; bundle: McpBundle; cache: BundleCache }
  | { ok: false; code: 'bundle-missing' | 'bundle-stale'; message: string };

/** Caches kept in the folder, the current one included: every build makes a new one. */
const KEEP_CACHES = 3;
const CACHE_PREFIX = 'mcp-';
const CACHE_SUFFIX = '.v8';

/**
 * Where the code cache lives: nowhere with NODE_DISABLE_COMPILE_CACHE=1 (Node's own switch), else
 * under NODE_COMPILE_CACHE when set, else the user's cache folder ($XDG_CACHE_HOME or ~/.cache).
 * Never a shared temp folder: a cache holds code this process will run.
 */
export function mcpCacheDir(env: Readonly<Record<string, string | undefined>>): string | null {
  if (env['NODE_DISABLE_COMPILE_CACHE'] === '1') return null;
  const nodeCache = env['NODE_COMPILE_CACHE'];
  if (nodeCache && isAbsolute(nodeCache)) return join(nodeCache, 'opscrew');
  const xdg = env['XDG_CACHE_HOME'];
  if (xdg && isAbsolute(xdg)) return join(xdg, 'opscrew');
  try {
    return join(homedir(), '.cache', 'opscrew');
  } catch {
    return null; // no home folder: no cache
  }
}

/** Loads the bundle, or says why the caller should use the compiled modules instead. */
export function loadMcpBundle(opts: McpBundleOptions): McpBundleLoad {
  const stale = checkFresh(opts.bundleFile, opts.sourceFile);
  if (stale !== null) return stale;
  const bytes = readFileSync(opts.bundleFile);
  const cacheFile = opts.cacheDir === null ? null : join(opts.cacheDir, cacheName(bytes, opts.bundleFile));
  const cachedData = cacheFile === null ? undefined : readCache(cacheFile);
  const script = compileBundle(bytes, opts.bundleFile, cachedData);
  const bundle = runBundle(script, opts.bundleFile);
  const saveAfterMs = opts.saveAfterMs ?? 3000;
  let cache: BundleCache;
  if (cacheFile === null) cache = settledCache('off');
  else if (cachedData === undefined) cache = pendingCache('miss', script, cacheFile, saveAfterMs);
  else if (script.cachedDataRejected === true) cache = pendingCache('rejected', script, cacheFile, saveAfterMs);
  else cache = settledCache('hit');
  return { ok: true, bundle, cache };
}

function compileBundle(bytes: Buffer, file: string, cachedData: Buffer | undefined): Script {
  // esbuild writes ASCII, for which latin1 is the cheap exact decoding.
  const source = bytes.toString(isAscii(bytes) ? 'latin1' : 'utf8');
  // The wrapper opens on the bundle's first line, so stack traces keep its line numbers.
  return new Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
    filename: file,
    ...(cachedData ? { cachedData } : {}),
  });
}

/** Runs the bundle as the CommonJS module of its file and gives its exports. */
function runBundle(script: Script, file: string): McpBundle {
  const module = { exports: {} as Record<string, unknown> };
  const wrapper = script.runInThisContext() as (exports: unknown, require: NodeJS.Require, module: unknown, filename: string, dirname: string) => void;
  wrapper(module.exports, createRequire(file), module, file, dirname(file));
  return module.exports as unknown as McpBundle;
}

function checkFresh(bundleFile: string, sourceFile: string): McpBundleLoad | null {
  let bundleMtime: number;
  try {
    bundleMtime = statSync(bundleFile).mtimeMs;
  } catch {
    return { ok: false, code: 'bundle-missing', message: `no MCP bundle at ${bundleFile} (npm run build makes it)` };
  }
  try {
    if (statSync(sourceFile).mtimeMs > bundleMtime) {
      return { ok: false, code: 'bundle-stale', message: `the MCP bundle is older than ${sourceFile}: using the compiled modules (npm run build remakes it)` };
    }
  } catch {
    // no compiled modules next to it: the bundle is all there is
  }
  return null;
}

function cacheName(bytes: Buffer, bundleFile: string): string {
  const h = createHash('sha256').update(bytes).update(`\0${bundleFile}\0${process.version}\0${process.arch}`).digest('hex');
  return `${CACHE_PREFIX}${h.slice(0, 32)}${CACHE_SUFFIX}`;
}

/** The cache's bytes if it is a plain file of this user that nobody else can write; else undefined. */
function readCache(file: string): Buffer | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    // Checked on the open descriptor, so the bytes read are the file checked.
    const st = fstatSync(fd);
    const uid = process.getuid?.();
    if (!st.isFile() || (uid !== undefined && (st.uid !== uid || (st.mode & 0o022) !== 0))) return undefined;
    return readFileSync(fd);
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function settledCache(status: CacheStatus): BundleCache {
  return { status, save: () => undefined, cancel: () => undefined };
}

/** A cache to write once: by save(), or by a timer that never keeps the process alive. */
function pendingCache(status: CacheStatus, script: Script, file: string, afterMs: number): BundleCache {
  let pending = true;
  const timer = setTimeout(() => save(), afterMs);
  timer.unref();
  const cancel = (): void => {
    pending = false;
    clearTimeout(timer);
  };
  const save = (): void => {
    if (!pending) return;
    cancel();
    writeCache(file, script.createCachedData());
  };
  return { status, save, cancel };
}

function writeCache(file: string, data: Buffer): void {
  const dir = dirname(file);
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    // 'wx': never through a file or link someone else put at this name.
    writeFileSync(tmp, data, { mode: 0o600, flag: 'wx' });
    // A rename, so a concurrent start reads the old file or the whole new one.
    renameSync(tmp, file);
  } catch {
    try {
      unlinkSync(tmp);
    } catch {
      // never created
    }
    return;
  }
  pruneCaches(dir, file);
}

/** Deletes all but the newest few caches in the folder (another process may be doing the same). */
function pruneCaches(dir: string, current: string): void {
  try {
    const others: Array<{ file: string; mtime: number }> = [];
    for (const n of readdirSync(dir)) {
      const file = join(dir, n);
      if (!n.startsWith(CACHE_PREFIX) || !n.endsWith(CACHE_SUFFIX) || file === current) continue;
      try {
        others.push({ file, mtime: statSync(file).mtimeMs });
      } catch {
        // already gone
      }
    }
    others.sort((a, b) => b.mtime - a.mtime);
    for (const o of others.slice(KEEP_CACHES - 1)) {
      try {
        unlinkSync(o.file);
      } catch {
        // already gone
      }
    }
  } catch {
    // the folder cannot be listed: nothing to prune
  }
}
