// stdio transport: stdout carries nothing but protocol messages; every log line goes to stderr.
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import type { Readable, Writable } from 'node:stream';

export interface StdioOptions {
  stdin?: Readable;
  stdout?: Writable;
  log?: (line: string) => void;
}

/** Serves `server` over stdio; resolves when the client goes away (stdin ends) or the transport closes. */
export async function serveStdio(server: McpServer, opts: StdioOptions = {}): Promise<void> {
  const stdin = opts.stdin ?? process.stdin;
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const transport = new StdioServerTransport(stdin, opts.stdout ?? process.stdout);
  const closed = new Promise<void>((resolve) => {
    transport.onclose = () => resolve();
    stdin.once('end', () => resolve());
    stdin.once('close', () => resolve());
  });
  await server.connect(transport);
  log('opscrew mcp: serving on stdio');
  await closed;
  await server.close().catch(() => undefined);
}
