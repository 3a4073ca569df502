// `opscrew tokens`: bearer tokens for `opscrew mcp --http`. The plaintext is printed once, by
// `create`; the store keeps only its sha256, and nothing ever prints it again.
import type { Command } from 'commander';
import type { Db } from '../../mcp-server/core/store.js';
import { CliError, workspaceDir, type CliContext } from './context.js';
import { EXIT } from './exit-codes.js';
import { printJson, printLines, renderTable, type CliIO } from './output.js';

export function registerTokens(program: Command, ctx: CliContext): void {
  const tokens = program.command('tokens').description('bearer tokens for MCP clients over HTTP (one identity each)');
  tokens
    .command('create')
    .description('create a token for an agent identity; it is shown once')
    .requiredOption('--agent <name>', 'the specialist (or observer) the token acts as')
    .option('--json', 'print JSON')
    .action(async (opts: { agent: string; json?: boolean }, cmd: Command) => {
      ctx.exitCode = await tokensCreate(ctx.io, workspaceDir(ctx.io, cmd), opts);
    });
  tokens
    .command('list')
    .description('list tokens: id, agent, created, revoked (never the token)')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      ctx.exitCode = await tokensList(ctx.io, workspaceDir(ctx.io, cmd), opts);
    });
  tokens
    .command('revoke')
    .description('revoke a token by its id (from `tokens list`), or every token of an agent with --agent')
    .argument('[id]', 'token id (8+ hex characters)')
    .option('--agent <name>', 'revoke every live token of this agent')
    .action(async (id: string | undefined, opts: { agent?: string }, cmd: Command) => {
      ctx.exitCode = await tokensRevoke(ctx.io, workspaceDir(ctx.io, cmd), id, opts);
    });
}

async function openWs(dir: string): Promise<{ db: Db; close: () => void }> {
  const [{ requireWorkspace }, { openStore }] = await Promise.all([import('./tasks-actions.js'), import('../../mcp-server/core/store.js')]);
  const store = openStore(requireWorkspace(dir).dbPath);
  return { db: store.db, close: () => store.close() };
}

export async function tokensCreate(io: CliIO, dir: string, opts: { agent: string; json?: boolean }): Promise<number> {
  const [{ join }, { loadSpecialists, OBSERVER_NAME }, { packageRoot }, { createToken }] = await Promise.all([
    import('node:path'),
    import('../../mcp-server/core/specialists.js'),
    import('./paths.js'),
    import('../../mcp-server/tokens.js'),
  ]);
  const loaded = loadSpecialists(join(packageRoot(), 'agents', 'specialists'));
  if (!loaded.ok) throw new CliError(EXIT.CONFIG, `cannot load the specialist profiles: ${loaded.message}`);
  const names = [OBSERVER_NAME, ...loaded.value.map((s) => s.name)];
  if (!names.includes(opts.agent)) throw new CliError(EXIT.FAILED, `unknown agent ${JSON.stringify(opts.agent)}: use one of ${names.join(', ')}`);
  const s = await openWs(dir);
  try {
    const r = createToken(s.db, opts.agent, io.now);
    if (!r.ok) throw new CliError(EXIT.FAILED, r.message);
    if (opts.json) printJson(io, { id: r.value.id, agent: opts.agent, token: r.value.token });
    else {
      printLines(io, [r.value.token]);
      io.err(`token ${r.value.id} for ${opts.agent}: shown once, stored only as a hash. Clients send it as "Authorization: Bearer <token>".\n`);
    }
    return EXIT.OK;
  } finally {
    s.close();
  }
}

export async function tokensList(io: CliIO, dir: string, opts: { json?: boolean }): Promise<number> {
  const { listTokens } = await import('../../mcp-server/tokens.js');
  const s = await openWs(dir);
  try {
    const rows = listTokens(s.db);
    if (opts.json) {
      printJson(io, rows.map((r) => ({ id: r.id, agent: r.agent, created: new Date(r.createdMs).toISOString(), revoked: r.revokedMs === null ? null : new Date(r.revokedMs).toISOString() })));
    } else {
      printLines(
        io,
        renderTable(rows, [
          { header: 'ID', get: (r) => r.id },
          { header: 'AGENT', get: (r) => r.agent },
          { header: 'CREATED', get: (r) => new Date(r.createdMs).toISOString() },
          { header: 'REVOKED', get: (r) => (r.revokedMs === null ? '-' : new Date(r.revokedMs).toISOString()) },
        ]),
      );
    }
    return EXIT.OK;
  } finally {
    s.close();
  }
}

export async function tokensRevoke(io: CliIO, dir: string, id: string | undefined, opts: { agent?: string }): Promise<number> {
  if ((id === undefined) === (opts.agent === undefined)) throw new CliError(EXIT.USAGE, 'give a token id or --agent NAME (one of them)');
  const { revokeToken } = await import('../../mcp-server/tokens.js');
  const s = await openWs(dir);
  try {
    const r = revokeToken(s.db, id !== undefined ? { id } : { agent: opts.agent! }, io.now);
    if (!r.ok) throw new CliError(EXIT.FAILED, r.message);
    io.err(`revoked ${r.value} token${r.value === 1 ? '' : 's'}\n`);
    return EXIT.OK;
  } finally {
    s.close();
  }
}
