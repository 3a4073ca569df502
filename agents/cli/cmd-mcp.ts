// `opscrew mcp`: the MCP server over stdio (default) or Streamable HTTP (`--http HOST:PORT`).
// In stdio mode stdout belongs to the protocol: everything else goes to stderr.
import type { Command } from 'commander';
import { CliError, workspaceDir, type CliContext } from './context.js';
import { EXIT } from './exit-codes.js';
import type { CliIO } from './output.js';

export interface McpOptions {
  http?: string;
  allowRemote?: boolean;
  noAuth?: boolean;
  auth?: boolean;
  agent?: string;
  rateLimit?: string;
  allowedHost?: string[];
}

export function registerMcp(program: Command, ctx: CliContext): void {
  program
    .command('mcp')
    .description('serve the vetted tools and task tools over MCP (stdio, or Streamable HTTP with --http)')
    .option('--http <host:port>', 'serve Streamable HTTP on /mcp at HOST:PORT (e.g. 127.0.0.1:7077) instead of stdio')
    .option('--allow-remote', 'allow --http on a non-loopback address (tokens are still required)')
    .option('--no-auth', 'HTTP on loopback only: accept clients without a token; every session is --agent')
    .option('--agent <name>', 'identity of stdio sessions and of --no-auth HTTP sessions (default: observer, read-only)')
    .option('--rate-limit <n>', 'HTTP requests per minute per token', '600')
    .option('--allowed-host <host>', 'with --allow-remote: a Host name clients use to reach this server (repeatable)', (v: string, prev: string[] = []) => [...prev, v])
    .action(async (opts: McpOptions, cmd: Command) => {
      ctx.exitCode = await runMcp(ctx.io, workspaceDir(ctx.io, cmd), opts);
    });
}

export async function runMcp(io: CliIO, dir: string, opts: McpOptions): Promise<number> {
  const log = (line: string): void => io.err(`${line}\n`);
  const noAuth = opts.auth === false || opts.noAuth === true;
  if (noAuth && opts.http === undefined) throw new CliError(EXIT.USAGE, '--no-auth only applies to --http (stdio has no authentication: the launching process chooses --agent)');
  const [{ requireWorkspace }, { requireConfig }, { packageRoot }] = await Promise.all([
    import('./tasks-actions.js'),
    import('./lint-context.js'),
    import('./paths.js'),
  ]);
  const ws = requireWorkspace(dir);
  const config = await requireConfig(ws, io);
  const [{ join }, { openStore }, { createFolderQueue }, { loadSpecialists, OBSERVER_NAME }, { createSecretBroker }, server, { VERSION }] = await Promise.all([
    import('node:path'),
    import('../../mcp-server/core/store.js'),
    import('../../mcp-server/core/queue.js'),
    import('../../mcp-server/core/specialists.js'),
    import('../../tools/secret-broker.js'),
    import('../../mcp-server/server.js'),
    import('./main.js'),
  ]);
  const loaded = loadSpecialists(join(packageRoot(), 'agents', 'specialists'));
  if (!loaded.ok) throw new CliError(EXIT.CONFIG, `cannot load the specialist profiles: ${loaded.message}`);
  const specialists = loaded.value;
  const agent = opts.agent ?? OBSERVER_NAME;
  if (!server.identityFor(specialists, agent)) {
    throw new CliError(EXIT.FAILED, `unknown agent ${JSON.stringify(agent)}: use one of ${[OBSERVER_NAME, ...specialists.map((s) => s.name)].join(', ')}`);
  }
  const store = openStore(ws.dbPath);
  const queue = createFolderQueue({ workspace: ws, store, now: io.now });
  const broker = createSecretBroker();
  const env = { ...io.env };
  const make = (name: string): ReturnType<typeof server.createServer> | null => {
    const identity = server.identityFor(specialists, name);
    if (!identity) return null;
    return server.createServer({ workspace: ws, store, config, env, broker, queue, specialists, identity, now: io.now, version: VERSION });
  };
  try {
    if (opts.http === undefined) {
      const { serveStdio } = await import('../../mcp-server/stdio.js');
      await serveStdio(make(agent)!, { log });
      return EXIT.OK;
    }
    const [{ parseListen, startHttpServer }, { verifyToken }] = await Promise.all([import('../../mcp-server/http.js'), import('../../mcp-server/tokens.js')]);
    const { host, port } = parseListen(opts.http);
    const perMinute = Number(opts.rateLimit ?? '600');
    if (!Number.isInteger(perMinute) || perMinute < 1) throw new CliError(EXIT.USAGE, '--rate-limit must be a positive whole number');
    const running = await startHttpServer({
      host,
      port,
      allowRemote: opts.allowRemote === true,
      noAuth,
      noAuthAgent: agent,
      authenticate: (token) => verifyToken(store.db, token),
      makeServer: make,
      rateLimit: { max: perMinute, windowMs: 60_000 },
      ...(opts.allowedHost ? { allowedHosts: opts.allowedHost } : {}),
      log,
    });
    await new Promise<void>((resolve) => {
      const stop = (): void => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        resolve();
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
    log('opscrew mcp: shutting down');
    await running.close();
    return EXIT.OK;
  } finally {
    store.close();
  }
}
