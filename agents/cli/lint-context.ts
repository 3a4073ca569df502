// The workspace pieces lint, check-command, exec and the demo share: the config, the scope
// of `--agent NAME` (or a person's: the whole config), and a line checker for `tasks lint`.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Issue } from '../../mcp-server/core/errors.js';
import type { Config } from '../../mcp-server/core/config.js';
import type { AgentScope } from '../../mcp-server/core/scope.js';
import { openStore } from '../../mcp-server/core/store.js';
import type { Workspace } from '../../mcp-server/core/workspace.js';
import { CliError } from './context.js';
import { EXIT } from './exit-codes.js';
import type { CliIO } from './output.js';
import { packageRoot } from './paths.js';
import type { LineChecker } from './task-lint.js';

export const PERSON = 'person';

export type LoadedConfig = { ok: true; config: Config; fromFile: boolean } | { ok: false; issues: Issue[]; message: string };

export async function loadWorkspaceConfig(ws: Workspace, io: CliIO): Promise<LoadedConfig> {
  const { loadConfig } = await import('../../mcp-server/core/config.js');
  const r = loadConfig({ workspaceDir: ws.root, env: { ...io.env } });
  if (r.ok) return { ok: true, config: r.value, fromFile: r.value.source.file !== null };
  const issues = (r.cause as { issues?: Issue[] } | undefined)?.issues ?? [{ file: ws.configPath, line: 0, message: r.message }];
  return { ok: false, issues, message: r.message };
}

/** The config or a CONFIG exit with every located problem. */
export async function requireConfig(ws: Workspace, io: CliIO): Promise<Config> {
  const c = await loadWorkspaceConfig(ws, io);
  if (c.ok) return c.config;
  const { formatIssue } = await import('../../mcp-server/core/errors.js');
  throw new CliError(EXIT.CONFIG, `opscrew.config.yaml is invalid:\n${c.issues.map((i) => `  ${formatIssue(i)}`).join('\n')}`);
}

/** `--agent NAME` → that specialist's scope; no name → a person, whose scope is the whole config. */
export async function resolveScope(agent: string | undefined): Promise<{ agent: string; scope: AgentScope | 'person' }> {
  if (agent === undefined || agent === PERSON) return { agent: PERSON, scope: 'person' };
  const { findSpecialist, loadSpecialists, specialistScope } = await import('../../mcp-server/core/specialists.js');
  const dir = join(packageRoot(), 'agents', 'specialists');
  const loaded = existsSync(dir) ? loadSpecialists(dir) : { ok: true as const, value: [] };
  if (!loaded.ok) throw new CliError(EXIT.CONFIG, `cannot load the specialist profiles: ${loaded.message}`);
  const s = findSpecialist(loaded.value, agent);
  if (!s) {
    const names = [PERSON, ...loaded.value.map((x) => x.name), 'observer'];
    throw new CliError(EXIT.FAILED, `unknown agent ${JSON.stringify(agent)}: use one of ${names.join(', ')} (or leave out --agent to act as a person)`);
  }
  return { agent: s.name, scope: specialistScope(s) };
}

/** Task ids the store knows (no scan, nothing written): what linted files may depend on. */
export function knownWorkspaceTasks(ws: Workspace): Array<{ id: string; path: string; dependsOn: string[] }> {
  if (!existsSync(ws.dbPath)) return [];
  let store: ReturnType<typeof openStore> | undefined;
  try {
    store = openStore(ws.dbPath, { readonly: true });
    return store.db.all<{ id: string; file: string; depends_on: string }>('SELECT id, file, depends_on FROM tasks').map((r) => ({
      id: r.id,
      path: join(ws.root, ...r.file.split('/')),
      dependsOn: JSON.parse(r.depends_on) as string[],
    }));
  } catch {
    return []; // an unreadable store only means fewer known dependencies
  } finally {
    store?.close();
  }
}


export interface PolicyChecker {
  check?: LineChecker;
  configIssues: Issue[];
  notes: string[];
}

/**
 * For `tasks lint`: every command line must be one a vetted tool runs and the policy (as a
 * person: the whole config) would not refuse. "Needs approval" is not a problem: a person
 * approves at run time or pre-approves in the task's `approve:` list.
 */
export async function policyLineChecker(ws: Workspace, io: CliIO): Promise<PolicyChecker> {
  const c = await loadWorkspaceConfig(ws, io);
  if (!c.ok) return { configIssues: c.issues, notes: ['command lines were not checked against the policy: fix opscrew.config.yaml first'] };
  const { checkLine } = await import('../../mcp-server/core/gate.js');
  const notes = c.fromFile ? [] : [`no ${ws.configPath}: command lines were checked against the default config (empty scopes)`];
  const deps = { config: c.config, env: { ...io.env }, now: io.now };
  const check: LineChecker = (task, line) => {
    const r = checkLine(deps, { line: line.text, vars: line.vars, agent: PERSON, scope: 'person', ...(line.fileBlock ? { fileBlock: line.fileBlock } : {}) });
    if (r.parseError) {
      return [
        {
          file: task.file,
          line: line.line,
          field: line.section,
          message: r.parseError.code === 'unparseable' ? `no vetted tool runs this line: ${r.parseError.message}` : `refused: ${r.parseError.message}`,
          fix: 'rewrite it as one vetted tool call (see `opscrew check-command --help`), or move it into ## Context as prose',
        },
      ];
    }
    if (r.decision.verdict === 'deny') {
      return [
        {
          file: task.file,
          line: line.line,
          field: line.section,
          message: `the policy refuses \`${r.call?.canonical ?? line.text}\` (${r.decision.rule}): ${r.decision.reason}`,
          fix: 'narrow the command to the configured scopes, or ask a person to widen opscrew.config.yaml',
        },
      ];
    }
    return [];
  };
  return { check, configIssues: [], notes };
}
