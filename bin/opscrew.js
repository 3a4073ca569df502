#!/usr/bin/env node
// Entry point: wires the compiled CLI. Build first (`npm run build`).
import { main } from '../dist/agents/cli/main.js';

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`opscrew: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 70;
  },
);
