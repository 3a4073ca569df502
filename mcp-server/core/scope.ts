// Specialist scopes: what one agent may touch. A scope can only NARROW the workspace config:
// the policy engine requires a target to be allowed by the config AND by the scope.
// A person (no `--agent`) has the whole config as scope: the literal 'person'.
import { z } from 'zod';
import { TOOL_NAMES, type ToolName } from '../../tools/types.js';
import type { Config } from './config.js';

export const SCOPE_MODES = ['read', 'mutate', 'destructive'] as const;
export type ScopeMode = (typeof SCOPE_MODES)[number];

export interface ToolScope {
  /** The riskiest class this agent may use the tool for (sensitive-read counts as read). */
  mode: ScopeMode;
  /** kubectl */
  contexts?: string[];
  /** kubectl; '*' allows `-A` only if the config allows '*' too. */
  namespaces?: string[];
  /** compose */
  projects?: string[];
  /** ssh, and systemctl/journalctl (a local call is the host name `local`). */
  hosts?: string[];
  /** files: absolute path prefixes. */
  paths?: string[];
  /** vault: KV path prefixes. */
  vault_paths?: string[];
  /** http: host patterns (`*.example.org`), for every method. */
  http_hosts?: string[];
}

export interface AgentScope {
  name: string;
  tools: Partial<Record<ToolName, ToolScope>>;
}

/** The pseudo-host name a specialist lists to run systemctl/journalctl on the local machine. */
export const LOCAL_HOST = 'local';

const nameList = z.array(z.string().min(1)).optional();

export const toolScopeSchema = z.strictObject({
  mode: z.enum(SCOPE_MODES).default('read'),
  contexts: nameList,
  namespaces: nameList,
  projects: nameList,
  hosts: nameList,
  paths: nameList,
  vault_paths: nameList,
  http_hosts: nameList,
});

const toolsShape = Object.fromEntries(TOOL_NAMES.map((t) => [t, toolScopeSchema.optional()])) as Record<
  ToolName,
  z.ZodOptional<typeof toolScopeSchema>
>;

/** `tools:` of a specialist profile's front matter. Unknown tool names are errors. */
export const toolsScopeSchema = z.strictObject(toolsShape);

export const agentScopeSchema = z.strictObject({
  name: z.string().min(1),
  tools: toolsScopeSchema,
});

/** Parse a scope from profile front matter (`name` + `tools`). */
export function parseAgentScope(input: unknown): z.ZodSafeParseResult<AgentScope> {
  return agentScopeSchema.safeParse(input) as z.ZodSafeParseResult<AgentScope>;
}

const MODE_RANK: Record<ScopeMode, number> = { read: 0, mutate: 1, destructive: 2 };

export function scopeModeRank(m: ScopeMode): number {
  return MODE_RANK[m];
}

/** The person's scope for a tool: everything, subject to the config and approvals. */
const PERSON_TOOL: ToolScope = { mode: 'destructive' };

/** The tool's scope entry, or undefined when the tool is not in the agent's scope. */
export function toolScope(scope: AgentScope | 'person', tool: ToolName): ToolScope | undefined {
  if (scope === 'person') return PERSON_TOOL;
  return scope.tools[tool];
}

export function scopeName(scope: AgentScope | 'person'): string {
  return scope === 'person' ? 'person' : scope.name;
}

/**
 * Entries of a specialist scope that the config does not back (a context, project, host,
 * vault path or file root the config lacks). They grant nothing — the policy requires both —
 * but a profile author wants to hear about them.
 */
export function scopeOutsideConfig(scope: AgentScope, config: Config): string[] {
  const out: string[] = [];
  const t = scope.tools;
  for (const c of t.kubectl?.contexts ?? []) {
    if (!(c in config.kubernetes.contexts)) out.push(`tools.kubectl.contexts: context "${c}" is not in the config's kubernetes.contexts`);
  }
  for (const p of t.compose?.projects ?? []) {
    if (!(p in config.compose.projects)) out.push(`tools.compose.projects: project "${p}" is not in the config's compose.projects`);
  }
  for (const tool of ['ssh', 'systemctl', 'journalctl'] as const) {
    for (const h of t[tool]?.hosts ?? []) {
      if (h === LOCAL_HOST && tool !== 'ssh') continue;
      if (!(h in config.ssh.hosts)) out.push(`tools.${tool}.hosts: host "${h}" is not in the config's ssh.hosts`);
    }
  }
  return out;
}
