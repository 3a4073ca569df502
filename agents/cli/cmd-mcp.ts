// `opscrew mcp`: the MCP server over stdio (default) or Streamable HTTP (`--http HOST:PORT`).
// In stdio mode stdout belongs to the protocol: everything else goes to stderr.
// MCP clients start a server per session, so `opscrew mcp` has a fast path (`mcpFastPath`, used
// by bin/opscrew.js) that reads its own options and never loads commander or the other commands.
// `npm run build` also bundles this module and what it loads into dist/bundle/mcp.cjs
// (scripts/bundle-mcp.mjs), which bin/opscrew.js runs with a code cache (cmd-mcp-bundle.ts).
import type { Command } from 'commander';
import { OpsError } from '../../mcp-server/core/errors.js';
import { CliError, exitForCode, workspaceDir, workspaceDirFrom, type CliContext } from './context.js';
import { EXIT } from './exit-codes.js';
import { processIO, type CliIO } from './output.js';
import { VERSION } from './version.js';

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

/** `opscrew mcp`'s options that take a value (and the global `-w, --workspace`), by flag. */
const VALUE_FLAGS: Readonly<Record<string, 'http' | 'agent' | 'rateLimit' | 'allowedHost' | 'workspace'>> = {
  '--http': 'http',
  '--agent': 'agent',
  '--rate-limit': 'rateLimit',
  '--allowed-host': 'allowedHost',
  '--workspace': 'workspace',
  '-w': 'workspace',
};

export interface McpArgv {
  workspace?: string;
  opts: McpOptions;
}

/**
 * `opscrew [-w DIR] mcp [options]` read without commander, giving the options commander would
 * (`auth` true unless --no-auth, `rateLimit` '600' by default). Only a plain, well-formed
 * invocation is read: anything else (help, version, an unknown option, a missing or dash-leading
 * value, `--flag=` on a boolean, a second positional) gives null and goes through the full CLI,
 * which prints its usual messages.
 */
export function parseMcpArgv(argv: readonly string[]): McpArgv | null {
  const opts: McpOptions = { auth: true, rateLimit: '600' };
  let workspace: string | undefined;
  let sawMcp = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === 'mcp' && !sawMcp) {
      sawMcp = true;
      continue;
    }
    if (!a.startsWith('--') && a !== '-w') return null;
    const eq = a.startsWith('--') ? a.indexOf('=') : -1;
    const name = eq > 0 ? a.slice(0, eq) : a;
    if (name === '--allow-remote' || name === '--no-auth') {
      if (!sawMcp || eq > 0) return null;
      if (name === '--allow-remote') opts.allowRemote = true;
      else opts.auth = false;
      continue;
    }
    const key = VALUE_FLAGS[name];
    // The subcommand's options only after `mcp`; the global workspace option anywhere.
    if (key === undefined || (key !== 'workspace' && !sawMcp)) return null;
    const value = eq > 0 ? a.slice(eq + 1) : argv[++i];
    if (value === undefined || value === '' || value.startsWith('-')) return null;
    if (key === 'workspace') workspace = value;
    else if (key === 'allowedHost') opts.allowedHost = [...(opts.allowedHost ?? []), value];
    else opts[key] = value;
  }
  return sawMcp ? { ...(workspace !== undefined ? { workspace } : {}), opts } : null;
}

/**
 * Runs `opscrew mcp` when argv is a plain mcp invocation (see parseMcpArgv) and returns its exit
 * code, or null to let the full CLI handle argv. Errors map to exit codes exactly as in main.
 */
export async function mcpFastPath(argv: readonly string[], io: CliIO = processIO()): Promise<number | null> {
  const parsed = parseMcpArgv(argv);
  if (parsed === null) return null;
  try {
    return await runMcp(io, workspaceDirFrom(io, parsed.workspace), parsed.opts);
  } catch (e) {
    return mcpErrorExit(e, io);
  }
}

/**
 * Error → message and exit code for every command (main's handleError adds commander's own cases).
 * It lives here, without commander, because the mcp fast path is bundled on its own
 * (scripts/bundle-mcp.mjs) and must not pull the whole CLI into the bundle.
 */
export function mcpErrorExit(e: unknown, io: CliIO): number {
  if (e instanceof CliError) {
    io.err(`opscrew: ${e.message}\n`);
    return e.exitCode;
  }
  if (e instanceof OpsError) {
    io.err(`opscrew: ${e.message}\n`);
    return exitForCode(e.code);
  }
  // A system error (EACCES, ENOSPC...) is the machine's answer, not a bug: no stack.
  const sys = (e as { code?: unknown } | null)?.code;
  if (e instanceof Error && typeof sys === 'string' && /^E[A-Z0-9]+$/.test(sys)) {
    io.err(`opscrew: ${e.message}\n`);
    return EXIT.FAILED;
  }
  io.err(`opscrew: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  return EXIT.INTERNAL;
}

export async function runMcp(io: CliIO, dir: string, opts: McpOptions): Promise<number> {
  const log = (line: string): void => io.err(`${line}\n`);
  const noAuth = opts.auth === false || opts.noAuth === true;
  if (noAuth && opts.http === undefined) throw new CliError(EXIT.USAGE, '--no-auth only applies to --http (stdio has no authentication: the launching process chooses --agent)');
  // The server's modules are requested now, with the config's: the loader overlaps their file
  // reads with the config work (cold start). Importing them does no work (definitions only).
  const serverModules = Promise.all([
    import('node:path'),
    import('../../mcp-server/core/store.js'),
    import('../../mcp-server/core/queue.js'),
    import('../../mcp-server/core/specialists.js'),
    import('../../tools/secret-broker.js'),
    import('../../mcp-server/server.js'),
  ]);
  serverModules.catch(() => undefined); // awaited below; a workspace error first must not leave it unhandled
  const [{ requireWorkspace }, { requireConfig }, { packageRoot }] = await Promise.all([
    import('./tasks-actions.js'),
    import('./lint-context.js'),
    import('./paths.js'),
  ]);
  const ws = requireWorkspace(dir);
  const config = await requireConfig(ws, io);
  const [{ join }, { openStore }, { createFolderQueue }, { loadSpecialists, OBSERVER_NAME }, { createSecretBroker }, server] = await serverModules;
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
