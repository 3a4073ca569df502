// The bundled `opscrew mcp` fast path (scripts/bundle-mcp.mjs → dist/bundle/mcp.cjs, loaded by
// agents/cli/cmd-mcp-bundle.ts with a V8 code cache): the loader's cache rules on small bundles
// made here, the real bundle serving exactly what the compiled modules serve, and its error
// mapping matching the full CLI's.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { OpsError } from '../../mcp-server/core/errors.js';
import { makeHarness, type Harness } from '../../mcp-server/test/mcp-harness.js';
import { loadMcpBundle, mcpCacheDir, type McpBundleLoad } from '../cli/cmd-mcp-bundle.js';
import { mcpErrorExit } from '../cli/cmd-mcp.js';
import { CliError } from '../cli/context.js';
import { EXIT } from '../cli/exit-codes.js';
import { handleError } from '../cli/main.js';
import type { CliIO } from '../cli/output.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = join(ROOT, 'bin', 'opscrew.js');
const BUNDLE = join(ROOT, 'dist', 'bundle', 'mcp.cjs');
const LOADER = join(ROOT, 'dist', 'agents', 'cli', 'cmd-mcp-bundle.js');

function memIO(): CliIO & { errText: () => string } {
  let err = '';
  return { out: () => undefined, err: (t) => void (err += t), env: {}, cwd: '/', now: Date.now, errText: () => err };
}

function loaded(r: McpBundleLoad): Extract<McpBundleLoad, { ok: true }> {
  if (!r.ok) throw new Error(`expected a loaded bundle, got ${r.code}: ${r.message}`);
  return r;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('loadMcpBundle', () => {
  let dir: string;
  let bundleFile: string;
  let sourceFile: string;
  let cacheDir: string;
  /** A bundle that answers with what its CommonJS wrapper handed it. */
  const writeBundle = (tag: string): void =>
    writeFileSync(
      bundleFile,
      `exports.mcpFastPath = async (argv) => ({ tag: ${JSON.stringify(tag)}, argv, file: __filename, dir: __dirname, hasRequire: typeof require('node:path').join === 'function', same: module.exports === exports });\n`,
    );
  const cacheFiles = (): string[] => (existsSync(cacheDir) ? readdirSync(cacheDir).filter((n) => n.endsWith('.v8')) : []);
  const load = (opts: { cacheDir?: string | null; saveAfterMs?: number } = {}): McpBundleLoad =>
    loadMcpBundle({ bundleFile, sourceFile, cacheDir: opts.cacheDir === undefined ? cacheDir : opts.cacheDir, saveAfterMs: opts.saveAfterMs ?? 60_000 });

  /**
   * Loads the bundle in a fresh process (V8 keeps compiled scripts per process, so only another
   * process shows whether it took the cache file) through the compiled loader; `save` saves its
   * cache (`save twice`: twice). Gives the cache status and what the bundle answered.
   */
  const inChild = (save: '' | 'save' | 'save twice' = ''): { status: string; answer: unknown } => {
    const script = [
      `import { loadMcpBundle } from ${JSON.stringify(pathToFileURL(LOADER).href)};`,
      `const r = loadMcpBundle(${JSON.stringify({ bundleFile, sourceFile, cacheDir, saveAfterMs: 60_000 })});`,
      `if (!r.ok) throw new Error(r.message);`,
      `for (let i = 0; i < ${save === 'save twice' ? 2 : save === 'save' ? 1 : 0}; i++) r.cache.save();`,
      `const a = await r.bundle.mcpFastPath([]);`,
      `process.stdout.write(JSON.stringify({ status: r.cache.status, answer: a.tag }));`,
    ].join('\n');
    const out = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
    if (out.status !== 0) throw new Error(`child failed: ${out.stderr}`);
    return JSON.parse(out.stdout) as { status: string; answer: unknown };
  };

  beforeEach(() => {
    expect(existsSync(LOADER), 'build first: npm run build').toBe(true);
    dir = mkdtempSync(join(tmpdir(), 'opscrew-bundle-'));
    bundleFile = join(dir, 'bundle', 'mcp.cjs');
    sourceFile = join(dir, 'cmd-mcp.js');
    cacheDir = join(dir, 'cache', 'opscrew');
    writeFileSync(sourceFile, '// compiled module\n');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const makeBundle = (tag = 'a'): void => {
    mkdirSync(dirname(bundleFile), { recursive: true });
    writeBundle(tag);
  };

  it('says when there is no bundle or it is older than the compiled modules', () => {
    expect(load()).toMatchObject({ ok: false, code: 'bundle-missing' });
    makeBundle();
    const past = new Date(Date.now() - 60_000);
    utimesSync(bundleFile, past, past);
    expect(load()).toMatchObject({ ok: false, code: 'bundle-stale' });
  });

  it('runs the bundle as a CommonJS module of its own file', async () => {
    makeBundle('plain');
    const r = loaded(load({ cacheDir: null }));
    expect(r.cache.status).toBe('off');
    expect(await r.bundle.mcpFastPath(['mcp'])).toEqual({ tag: 'plain', argv: ['mcp'], file: bundleFile, dir: dirname(bundleFile), hasRequire: true, same: true });
  });

  it('writes the cache once on save, and a later process runs the bundle from it', () => {
    makeBundle('one');
    const first = inChild('save twice');
    expect(first).toEqual({ status: 'miss', answer: 'one' });
    const files = cacheFiles();
    expect(files).toHaveLength(1);
    expect(statSync(join(cacheDir, files[0]!)).mode & 0o777).toBe(0o600);
    expect(statSync(cacheDir).mode & 0o777).toBe(0o700);
    expect(inChild()).toEqual({ status: 'hit', answer: 'one' });
    // a changed bundle is another cache
    writeBundle('two');
    expect(inChild('save')).toEqual({ status: 'miss', answer: 'two' });
    expect(cacheFiles()).toHaveLength(2);
    expect(inChild()).toEqual({ status: 'hit', answer: 'two' });
  });

  it('rewrites a cache V8 rejects, and ignores one others can write', () => {
    makeBundle();
    inChild('save');
    const [name] = cacheFiles();
    const file = join(cacheDir, name!);
    writeFileSync(file, Buffer.alloc(64, 7), { mode: 0o600 });
    expect(inChild('save')).toEqual({ status: 'rejected', answer: 'a' });
    expect(inChild()).toEqual({ status: 'hit', answer: 'a' });
    chmodSync(file, 0o666);
    expect(inChild()).toEqual({ status: 'miss', answer: 'a' });
  });

  it('saves on its timer unless cancelled, and never fails the load over the cache', async () => {
    makeBundle();
    loaded(load({ saveAfterMs: 5 })).cache.cancel();
    await sleep(60);
    expect(cacheFiles()).toEqual([]);
    loaded(load({ saveAfterMs: 5 }));
    await sleep(60);
    expect(cacheFiles()).toHaveLength(1);

    // a cache folder that cannot exist (under a file)
    const blocked = join(sourceFile, 'cache');
    const r = loaded(load({ cacheDir: blocked }));
    expect(r.cache.status).toBe('miss');
    expect(() => r.cache.save()).not.toThrow();
    expect(await r.bundle.mcpFastPath([])).toMatchObject({ tag: 'a' });
  });

  it('keeps the newest three caches in the folder', () => {
    makeBundle();
    mkdirSync(cacheDir, { recursive: true });
    for (let i = 0; i < 5; i++) {
      const f = join(cacheDir, `mcp-old${i}.v8`);
      writeFileSync(f, 'x', { mode: 0o600 });
      const t = new Date(Date.now() - (i + 1) * 60_000);
      utimesSync(f, t, t);
    }
    writeFileSync(join(cacheDir, 'unrelated.txt'), 'kept');
    loaded(load()).cache.save();
    const left = cacheFiles().sort();
    expect(left).toHaveLength(3);
    expect(left).toEqual(expect.arrayContaining(['mcp-old0.v8', 'mcp-old1.v8']));
    expect(existsSync(join(cacheDir, 'unrelated.txt'))).toBe(true);
  });
});

describe('mcpCacheDir', () => {
  it("follows Node's switches, then the user's cache folder", () => {
    expect(mcpCacheDir({ NODE_DISABLE_COMPILE_CACHE: '1', XDG_CACHE_HOME: '/x' })).toBeNull();
    expect(mcpCacheDir({ NODE_COMPILE_CACHE: '/nc', XDG_CACHE_HOME: '/x' })).toBe(join('/nc', 'opscrew'));
    expect(mcpCacheDir({ XDG_CACHE_HOME: '/x' })).toBe(join('/x', 'opscrew'));
    // relative folders are not trusted: they would depend on where the client starts the server
    expect(mcpCacheDir({ NODE_COMPILE_CACHE: 'rel', XDG_CACHE_HOME: 'rel' })).toMatch(/[\\/]\.cache[\\/]opscrew$/);
  });
});

describe('mcpErrorExit', () => {
  it('maps every error as the full CLI does', () => {
    const sys = Object.assign(new Error('EACCES: permission denied, open x'), { code: 'EACCES' });
    const errors: unknown[] = [
      new CliError(EXIT.USAGE, 'usage'),
      new CliError(EXIT.CONFIG, 'config'),
      new OpsError('config-invalid', 'bad config'),
      new OpsError('workspace-missing', 'no workspace'),
      new OpsError('store-busy', 'busy'),
      sys,
      new Error('boom'),
      'a string',
    ];
    for (const e of errors) {
      const a = memIO();
      const b = memIO();
      expect(mcpErrorExit(e, a), String(e)).toBe(handleError(e, b));
      expect(a.errText()).toBe(b.errText());
    }
  });
});

describe('the built bundle', () => {
  let h: Harness;
  let cacheHome: string;
  beforeEach(async () => {
    h = await makeHarness();
    cacheHome = mkdtempSync(join(tmpdir(), 'opscrew-bundle-cache-'));
  });
  afterEach(async () => {
    await h.close();
    rmSync(cacheHome, { recursive: true, force: true });
  });

  async function listsOf(client: Client): Promise<unknown> {
    const [tools, prompts, resources, templates] = await Promise.all([client.listTools(), client.listPrompts(), client.listResources(), client.listResourceTemplates()]);
    return { tools, prompts, resources, templates, instructions: client.getInstructions() };
  }

  async function viaBin(agent: string): Promise<unknown> {
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [BIN, 'mcp', '--workspace', h.ws.root, '--agent', agent],
      stderr: 'pipe',
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', XDG_CACHE_HOME: cacheHome },
    });
    const client = new Client({ name: 'bundle-test', version: '0' });
    await client.connect(transport);
    try {
      return await listsOf(client);
    } finally {
      await client.close();
    }
  }

  it('serves what the compiled modules serve, first from source and then from its code cache', async () => {
    expect(existsSync(BUNDLE), 'build first: npm run build').toBe(true);
    expect(statSync(BUNDLE).mtimeMs, 'the bundle is older than the compiled modules: npm run build').toBeGreaterThanOrEqual(statSync(join(ROOT, 'dist', 'agents', 'cli', 'cmd-mcp.js')).mtimeMs);
    // js-yaml's optional esprima require is left out (see scripts/bundle-mcp.mjs)
    expect(readFileSync(BUNDLE, 'latin1')).not.toContain("_require('esprima')");
    for (const agent of ['k8s-specialist', 'observer']) {
      const expected = await listsOf(await h.connect(agent));
      expect(await viaBin(agent), agent).toEqual(expected);
      // only the bundle's loader writes this cache, after a session that served
      const cached = readdirSync(join(cacheHome, 'opscrew')).filter((n) => n.endsWith('.v8'));
      expect(cached).toHaveLength(1);
      expect(await viaBin(agent), `${agent}, from the cache`).toEqual(expected);
    }
  });
});
