#!/usr/bin/env node
// Entry point: wires the compiled CLI. Build first (`npm run build`).
// MCP clients start `opscrew mcp` for every session, so a plain `mcp` invocation is served
// without loading commander and the other commands (cold start); anything else, `mcp --help`
// included, goes through the full CLI.
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
