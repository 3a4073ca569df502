// Bundles the `opscrew mcp` fast path (dist/agents/cli/cmd-mcp.js, already compiled by tsc) into
// one CommonJS file, dist/bundle/mcp.cjs, which bin/opscrew.js loads through node:vm with a V8
// code cache (agents/cli/cmd-mcp-bundle.ts). One file means no module resolution and one compile:
// on Node 20, which has no module compile cache, those were most of the stdio cold start.
// `npm run build` runs it after tsc; `node scripts/bundle-mcp.mjs` runs it alone.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const ENTRY = join(ROOT, 'dist', 'agents', 'cli', 'cmd-mcp.js');
export const OUTFILE = join(ROOT, 'dist', 'bundle', 'mcp.cjs');

/**
 * `await import('node:x')` would stay a real dynamic import in a CommonJS bundle, which a script
 * compiled by node:vm from cached data cannot run on Node 20: each becomes a require.
 */
const builtinDynamicImports = {
  name: 'builtin-dynamic-imports',
  setup(build) {
    build.onResolve({ filter: /^node:/ }, (args) => (args.kind === 'dynamic-import' ? { path: args.path, namespace: 'builtin-require' } : undefined));
    build.onLoad({ filter: /.*/, namespace: 'builtin-require' }, (args) => ({ contents: `module.exports = require(${JSON.stringify(args.path)});`, loader: 'js' }));
  },
};

const ESPRIMA_REQUIRE = "esprima = _require('esprima');";

/**
 * js-yaml 3 (under gray-matter) requires esprima when it loads, through a renamed require the
 * bundler cannot see, for its `!!js/function` type only. That type is in js-yaml's full schema,
 * which gray-matter never uses (safeLoad/safeDump), and opscrew parses front matter with its own
 * YAML module anyway: the bundle leaves esprima out (about 10 ms of every start) and js-yaml
 * takes its own "esprima not found" path.
 */
function withoutEsprima(warnings) {
  return {
    name: 'without-esprima',
    setup(build) {
      build.onLoad({ filter: /[\\/]js-yaml[\\/]lib[\\/]js-yaml[\\/]type[\\/]js[\\/]function\.js$/ }, (args) => {
        const text = readFileSync(args.path, 'utf8');
        if (!text.includes(ESPRIMA_REQUIRE)) {
          warnings.push(`${args.path}: no \`${ESPRIMA_REQUIRE}\` to leave out; esprima stays a runtime require`);
          return undefined;
        }
        return { contents: text.replace(ESPRIMA_REQUIRE, "throw new Error('esprima is not in the opscrew MCP bundle');"), loader: 'js' };
      });
    },
  };
}

/** Builds the bundle: { ok: true, bytes, warnings } or { ok: false, message }. */
export async function bundleMcp({ entry = ENTRY, outfile = OUTFILE } = {}) {
  const warnings = [];
  const result = await esbuild.build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    // A native addon: required at run time from dist/bundle/, which finds node_modules as before.
    external: ['better-sqlite3'],
    plugins: [builtinDynamicImports, withoutEsprima(warnings)],
    // packageRoot() walks up from its module's URL to package.json, which works from dist/bundle/
    // too; CommonJS has no import.meta, so the bundle's own URL stands in.
    define: { 'import.meta.url': '__bundleUrl' },
    banner: { js: 'var __bundleUrl = require("node:url").pathToFileURL(__filename).href;' },
    metafile: true,
    // Written below only when it passed the checks: a refused bundle leaves the old one, which the
    // build just made older than the compiled modules, so bin/opscrew.js does not use it.
    write: false,
    logLevel: 'silent',
    legalComments: 'none',
  });
  // esbuild's warnings (an import that will be undefined, an import.meta it cannot map...) each
  // mean a bundle that would misbehave where the compiled modules do not: refuse it.
  if (result.warnings.length > 0) {
    return { ok: false, message: result.warnings.map((w) => `${w.location ? `${w.location.file}:${w.location.line}: ` : ''}${w.text}`).join('\n') };
  }
  const [, meta] = Object.entries(result.metafile.outputs)[0] ?? [];
  const dynamic = (meta?.imports ?? []).filter((i) => i.kind === 'dynamic-import');
  if (dynamic.length > 0) {
    return { ok: false, message: `the bundle keeps dynamic imports that node:vm cannot run from cached data: ${dynamic.map((i) => i.path).join(', ')}` };
  }
  const file = result.outputFiles[0];
  if (!file) return { ok: false, message: 'esbuild wrote no output' };
  mkdirSync(dirname(outfile), { recursive: true });
  // A rename, so an `opscrew mcp` starting meanwhile reads the old bundle or the whole new one.
  writeFileSync(`${outfile}.${process.pid}.tmp`, file.contents);
  renameSync(`${outfile}.${process.pid}.tmp`, outfile);
  return { ok: true, bytes: file.contents.length, warnings };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const r = await bundleMcp().catch((e) => ({ ok: false, message: e instanceof Error ? e.message : String(e) }));
  if (r.ok) {
    for (const w of r.warnings) process.stderr.write(`bundle-mcp: warning: ${w}\n`);
  } else {
    process.stderr.write(`bundle-mcp: ${r.message}\n`);
    process.exitCode = 1;
  }
}
