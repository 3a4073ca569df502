#!/usr/bin/env node
// Entry point: wires the compiled CLI. Build first (`npm run build`).
// MCP clients start `opscrew mcp` for every session, so a plain `mcp` invocation is served
// without loading commander and the other commands (cold start); anything else, `mcp --help`
// included, goes through the full CLI.
import * as nodeModule from 'node:module';

// V8 compile cache (Node >= 22.1): later starts skip compiling the ~500 modules of the MCP
// server and its libraries. Node 20 has no such API: a no-op there. Node's own switches apply
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

async function run() {
  if (argv.includes('mcp')) {
    const { mcpFastPath } = await import('../dist/agents/cli/cmd-mcp.js');
    const code = await mcpFastPath(argv);
    if (code !== null) return code;
  }
  const { main } = await import('../dist/agents/cli/main.js');
  return main(argv);
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
