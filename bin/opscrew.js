#!/usr/bin/env node
// Entry point: wires the compiled CLI. Build first (`npm run build`).
// MCP clients start `opscrew mcp` for every session, so a plain `mcp` invocation is served
// without loading commander and the other commands (cold start); anything else, `mcp --help`
// included, goes through the full CLI.
import * as nodeModule from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// V8 compile cache (Node >= 22.1): later starts skip compiling the modules of the CLI and its
// libraries. Node 20 has no such API: a no-op there. Node's own switches apply
// (NODE_COMPILE_CACHE picks the folder, NODE_DISABLE_COMPILE_CACHE=1 turns it off); a cache
// that cannot be written only costs the saving, so failures are ignored.
if (typeof nodeModule.enableCompileCache === 'function') {
  try {
    nodeModule.enableCompileCache();
  } catch {
    // keep going without the cache
  }
}

const argv = process.argv.slice(2);

// A reader that stops early (`opscrew tasks list --json | head`) closes the pipe: stop quietly with
// the exit code so far, as command-line tools do on SIGPIPE, instead of dying on an unhandled
// 'error' event with a stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e) => {
    if (e.code !== 'EPIPE') throw e;
    process.exit(process.exitCode ?? 0);
  });
}

async function run() {
  if (argv.includes('mcp')) {
    const mcp = await mcpFastPath();
    const code = await mcp.run(argv);
    if (code !== null) {
      if (code === 0) mcp.served();
      return code;
    }
    mcp.notServed();
  }
  const { main } = await import('../dist/agents/cli/main.js');
  return main(argv);
}

/**
 * The `opscrew mcp` fast path from the one-file bundle `npm run build` makes, loaded with a code
 * cache (dist/agents/cli/cmd-mcp-bundle.js: the Node 20 answer to the compile cache above); from
 * the compiled modules when there is no bundle or it is older than them. A session that served
 * (or is still serving after a few seconds) saves the cache for the next start.
 */
async function mcpFastPath() {
  const { loadMcpBundle, mcpCacheDir } = await import('../dist/agents/cli/cmd-mcp-bundle.js');
  const dist = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist');
  const loaded = loadMcpBundle({
    bundleFile: join(dist, 'bundle', 'mcp.cjs'),
    sourceFile: join(dist, 'agents', 'cli', 'cmd-mcp.js'),
    cacheDir: mcpCacheDir(process.env),
  });
  if (loaded.ok) {
    return { run: (a) => loaded.bundle.mcpFastPath(a), served: loaded.cache.save, notServed: loaded.cache.cancel };
  }
  if (loaded.code === 'bundle-stale') process.stderr.write(`opscrew: ${loaded.message}\n`);
  const { mcpFastPath: run } = await import('../dist/agents/cli/cmd-mcp.js');
  return { run, served: () => undefined, notServed: () => undefined };
}

run().then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`opscrew: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 70;
  },
);
