// The catalogue: every vetted tool and filter, how a line's first word selects one, and the
// message that lists them when nothing matches.

import { fail, ok, type Result } from './result.js';
import type { Word } from './tokenize.js';
import { FILTER_NAMES, type FilterName, type OpClass, type ToolName } from './types.js';
import { named, type ParseCode, type ToolParser } from './defs/common.js';
import { COMPOSE_CLASSES, parseCompose } from './defs/compose.js';
import { DOCKER_CLASSES, parseDocker } from './defs/docker.js';
import { FILES_CLASSES, FILES_PROGRAMS, parseFiles } from './defs/files.js';
import { FILTER_SPECS } from './defs/filters.js';
import { HTTP_CLASSES, parseHttp } from './defs/http.js';
import { JOURNALCTL_CLASSES, parseJournalctl } from './defs/journalctl.js';
import { KUBECTL_CLASSES, parseKubectl } from './defs/kubectl.js';
import { parseSsh } from './defs/ssh.js';
import { SYSTEMCTL_CLASSES, parseSystemctl } from './defs/systemctl.js';
import { VAULT_CLASSES, parseVault } from './defs/vault.js';

export interface ToolDefinition {
  name: ToolName;
  /** How a line for this tool starts. */
  usage: string;
  /** The commands it answers to, for messages. */
  commands: string;
  /** verb → class (ssh takes the class of its remote call). */
  classes: Readonly<Record<string, OpClass>>;
  parse: ToolParser;
  /**
   * The tool has places a secret's value may go (a Secret, a Vault path, a request to an
   * allowed host) and its parser checks that a handle is only there. Every other tool
   * refuses a line holding a handle.
   */
  takesHandles?: true;
}

export interface FilterDefinition {
  name: FilterName;
  usage: string;
}

export const TOOL_DEFINITIONS: Readonly<Record<ToolName, ToolDefinition>> = {
  kubectl: { name: 'kubectl', commands: 'kubectl', usage: 'kubectl [--context C] [-n NS] VERB ...', classes: KUBECTL_CLASSES, parse: parseKubectl, takesHandles: true },
  compose: { name: 'compose', commands: 'docker compose / docker-compose', usage: 'docker compose -p PROJECT SUBCOMMAND ... (or docker-compose)', classes: COMPOSE_CLASSES, parse: parseCompose },
  docker: { name: 'docker', commands: 'docker ps|logs|inspect|stats', usage: 'docker ps|logs|inspect|stats --no-stream', classes: DOCKER_CLASSES, parse: parseDocker },
  vault: { name: 'vault', commands: 'vault kv', usage: 'vault kv get|list|put|patch|delete|destroy|undelete|metadata get|metadata delete MOUNT/PATH', classes: VAULT_CLASSES, parse: parseVault, takesHandles: true },
  ssh: { name: 'ssh', commands: 'ssh HOST', usage: 'ssh HOST systemctl|journalctl|cat|ls|stat|test ...', classes: {}, parse: parseSsh },
  systemctl: { name: 'systemctl', commands: 'systemctl', usage: 'systemctl VERB [UNIT...]', classes: SYSTEMCTL_CLASSES, parse: parseSystemctl },
  journalctl: { name: 'journalctl', commands: 'journalctl', usage: 'journalctl [-u UNIT] [-n N] [--since T] ...', classes: JOURNALCTL_CLASSES, parse: parseJournalctl },
  http: { name: 'http', commands: 'curl', usage: 'curl [-fsSL] [-X METHOD] [-H "K: V"] [-d DATA] URL', classes: HTTP_CLASSES, parse: parseHttp, takesHandles: true },
  files: { name: 'files', commands: 'cat|ls|stat|test|cp|mkdir|chmod|rm', usage: 'cat|ls|stat|test|cp|mkdir|chmod|rm /ABSOLUTE/PATH ...', classes: FILES_CLASSES, parse: parseFiles },
};

export const FILTER_DEFINITIONS: Readonly<Record<FilterName, FilterDefinition>> = Object.fromEntries(
  FILTER_NAMES.map((f) => [f, { name: f, usage: FILTER_SPECS[f].summary }]),
) as Record<FilterName, FilterDefinition>;

/** One line naming every vetted tool and filter, for refusal messages. */
export function describeTools(): string {
  const tools = Object.values(TOOL_DEFINITIONS).map((d) => d.commands);
  return `vetted tools: ${tools.join(', ')}; pipeline filters (stdin only): ${FILTER_NAMES.join(', ')}`;
}

const FILE_PROGRAMS = new Set<string>(FILES_PROGRAMS);
const ASSIGNMENT = /^[A-Za-z_][A-Za-z0-9_]*=/;

/** Chooses the tool definition for a stage by its first word(s). */
export function resolveTool(stage: readonly Word[]): Result<ToolDefinition, ParseCode> {
  const first = stage[0];
  if (first === undefined) return fail('unparseable', 'empty command');
  const w = first.text;
  const pick = (name: ToolName): Result<ToolDefinition, ParseCode> => ok(TOOL_DEFINITIONS[name]);
  if (w === 'kubectl') return pick('kubectl');
  if (w === 'docker-compose') return pick('compose');
  if (w === 'docker') return stage[1]?.text === 'compose' ? pick('compose') : pick('docker');
  if (w === 'vault') return pick('vault');
  if (w === 'ssh') return pick('ssh');
  if (w === 'systemctl') return pick('systemctl');
  if (w === 'journalctl') return pick('journalctl');
  if (w === 'curl') return pick('http');
  if (FILE_PROGRAMS.has(w)) return pick('files');
  if (ASSIGNMENT.test(w) && !first.text.startsWith('=')) {
    if (w.startsWith('export') || stage.length === 1)
      return fail('unparseable', `${named(first)} is a variable assignment, not a command; use \`export NAME=value\` on its own line`);
    return fail('refused', `environment prefix ${named(first)} is refused; tool environments come from the config`);
  }
  if (w === 'export') return fail('unparseable', `${named(first)} sets a variable for later lines; the task runner handles it, it does not run`);
  if ((FILTER_NAMES as readonly string[]).includes(w))
    return fail('unparseable', `${named(first)} is only a pipeline filter (it reads its pipe, never files); e.g. \`cat /srv/app.log | ${w} ...\`. ${describeTools()}`);
  if (w === 'sudo') return fail('unparseable', `${named(first)} is not supported; vetted tools run with the runner's own rights. ${describeTools()}`);
  return fail('unparseable', `${named(first)} is not a vetted tool. ${describeTools()}`);
}
