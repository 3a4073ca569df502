// The router: which specialist runs a task. Explicit `agent:` first, then tags/keywords, then
// the specialist whose scope covers every command the task runs, then devops-specialist. A
// keyword match never wins over scope: a specialist that cannot run the task's commands is
// passed over for one that can. Pure apart from the policy check (checkLine decides only).
import type { Config } from '../../mcp-server/core/config.js';
import { checkLine } from '../../mcp-server/core/gate.js';
import { specialistScope, type Specialist } from '../../mcp-server/core/specialists.js';
import type { StepItem, Task } from '../../mcp-server/core/task-types.js';

export const DEFAULT_SPECIALIST = 'devops-specialist';

export type RouteReason = 'explicit' | 'keyword' | 'scope-cover' | 'fallback';

export type RouteResult =
  | { ok: true; specialist: Specialist; reason: string; via: RouteReason }
  | { ok: false; code: 'unknown-agent' | 'no-specialist'; message: string };

export interface RouterDeps {
  env?: NodeJS.ProcessEnv;
  now?: () => number;
}

/** A command the task runs, with the variables its `export` lines set before it. */
export interface TaskCommand {
  text: string;
  vars: Record<string, string>;
}

/** Every command line of a task in run order (preflight, steps, criteria, rollback), deduplicated. */
export function taskCommands(task: Task): TaskCommand[] {
  const vars: Record<string, string> = {};
  const out: TaskCommand[] = [];
  const seen = new Set<string>();
  const walk = (items: readonly StepItem[]): void => {
    for (const it of items) {
      if (it.kind === 'export') vars[it.name] = it.value;
      else if (it.kind === 'command' && !seen.has(it.text)) {
        seen.add(it.text);
        out.push({ text: it.text, vars: { ...vars } });
      }
    }
  };
  walk(task.preflight);
  walk(task.steps);
  for (const c of task.criteria) if (c.kind === 'verify') walk(c.items);
  walk(task.rollback);
  return out;
}

const WORD_RE = /[a-z0-9][a-z0-9-]*/g;

function words(text: string): Set<string> {
  const out = new Set<string>();
  for (const m of text.toLowerCase().matchAll(WORD_RE)) {
    const w = m[0];
    out.add(w);
    // A light plural fold: "deployments" finds "deployment", "secrets" finds "secret".
    if (w.length > 3 && w.endsWith('s')) out.add(w.slice(0, -1));
  }
  return out;
}

/** How well a task's tags, title and context match a profile's keywords and tags. */
export function keywordScore(task: Task, s: Specialist): number {
  const kw = new Set([...s.keywords, ...s.tags].map((k) => k.toLowerCase()));
  if (kw.size === 0) return 0;
  const tags = new Set(task.fm.tags.map((t) => t.toLowerCase()));
  const title = words(task.title);
  const context = words(task.context);
  let score = 0;
  for (const k of kw) {
    if (tags.has(k)) score += 3;
    if (title.has(k)) score += 2;
    if (context.has(k)) score += 1;
  }
  return score;
}

/** Commands of `cmds` this specialist's scope (and the config) would refuse, with why. */
export function uncoveredCommands(
  cmds: readonly TaskCommand[],
  s: Specialist,
  config: Config,
  deps: RouterDeps = {},
): Array<{ command: string; why: string }> {
  const scope = specialistScope(s);
  const now = deps.now ?? Date.now;
  const out: Array<{ command: string; why: string }> = [];
  for (const c of cmds) {
    const r = checkLine({ config, env: deps.env ?? {}, now }, { line: c.text, vars: c.vars, agent: s.name, scope });
    if (r.decision.verdict === 'deny') out.push({ command: c.text, why: `${r.decision.rule}: ${r.decision.reason}` });
  }
  return out;
}

function pickBest(cands: readonly Specialist[], scores: ReadonlyMap<string, number>): Specialist | undefined {
  let best: Specialist | undefined;
  for (const s of cands) {
    const sc = scores.get(s.name) ?? 0;
    if (sc <= 0) continue;
    if (!best || sc > (scores.get(best.name) ?? 0)) best = s;
  }
  return best;
}

/** The narrowest covering specialist: fewest tools in scope (least privilege), then name order. */
function narrowest(cands: readonly Specialist[]): Specialist | undefined {
  return [...cands].sort((a, b) => Object.keys(a.tools).length - Object.keys(b.tools).length || a.name.localeCompare(b.name))[0];
}

export function routeTask(task: Task, specialists: readonly Specialist[], config: Config, deps: RouterDeps = {}): RouteResult {
  const known = specialists.map((s) => s.name);
  const explicit = task.fm.agent;
  if (explicit !== undefined) {
    const s = specialists.find((x) => x.name === explicit);
    if (s) return { ok: true, specialist: s, via: 'explicit', reason: `agent: ${explicit} (set in the task)` };
    return {
      ok: false,
      code: 'unknown-agent',
      message: `agent: ${explicit} is not a known specialist; use one of ${known.join(', ')} (or remove agent: to route by tags and commands)`,
    };
  }

  const cmds = taskCommands(task);
  const gaps = new Map(specialists.map((s) => [s.name, uncoveredCommands(cmds, s, config, deps)] as const));
  const covering = specialists.filter((s) => (gaps.get(s.name) ?? []).length === 0);
  const scores = new Map(specialists.map((s) => [s.name, keywordScore(task, s)] as const));
  const byKeyword = pickBest(specialists, scores);

  if (cmds.length === 0) {
    // Nothing to run: every scope covers it, so keywords alone decide, else the default.
    if (byKeyword) return { ok: true, specialist: byKeyword, via: 'keyword', reason: `keywords match ${byKeyword.name} (score ${scores.get(byKeyword.name)})` };
    const d = specialists.find((s) => s.name === DEFAULT_SPECIALIST);
    if (d) return { ok: true, specialist: d, via: 'fallback', reason: `no keyword matched; ${DEFAULT_SPECIALIST} is the default` };
    return { ok: false, code: 'no-specialist', message: `no specialist matched and ${DEFAULT_SPECIALIST} is not loaded; known: ${known.join(', ') || 'none'}` };
  }

  if (byKeyword && covering.includes(byKeyword)) {
    return { ok: true, specialist: byKeyword, via: 'keyword', reason: `keywords match ${byKeyword.name} (score ${scores.get(byKeyword.name)}) and its scope covers every command` };
  }
  const coveringByKeyword = pickBest(covering, scores);
  if (coveringByKeyword) {
    const skipped = byKeyword ? `; ${byKeyword.name} matched more keywords but cannot run ${gaps.get(byKeyword.name)?.[0]?.command ?? 'every command'}` : '';
    return { ok: true, specialist: coveringByKeyword, via: 'keyword', reason: `keywords match ${coveringByKeyword.name} and its scope covers every command${skipped}` };
  }
  const passed = byKeyword ? ` (${byKeyword.name} matched keywords but cannot run \`${gaps.get(byKeyword.name)?.[0]?.command ?? ''}\`)` : '';
  if (covering.length === 1 && covering[0]) {
    const only = covering[0];
    return { ok: true, specialist: only, via: 'scope-cover', reason: `${only.name} is the only specialist whose scope covers every command the task runs${passed}` };
  }
  const def = covering.find((s) => s.name === DEFAULT_SPECIALIST);
  if (def) return { ok: true, specialist: def, via: 'fallback', reason: `no covering specialist matched by keywords; ${DEFAULT_SPECIALIST} is the default and its scope covers every command${passed}` };
  const cover = narrowest(covering);
  if (cover) return { ok: true, specialist: cover, via: 'scope-cover', reason: `${cover.name}'s scope covers every command the task runs (the narrowest of ${covering.length})${passed}` };

  // Nobody can run all of it: name the commands no scope allows, else who lacks what.
  const outside = cmds.filter((c) => specialists.every((s) => (gaps.get(s.name) ?? []).some((g) => g.command === c.text)));
  if (outside.length > 0) {
    const lines = outside.map((c) => {
      const why = gaps.get(DEFAULT_SPECIALIST)?.find((g) => g.command === c.text)?.why ?? [...gaps.values()].flat().find((g) => g.command === c.text)?.why ?? '';
      return `\`${c.text}\` (${why})`;
    });
    return {
      ok: false,
      code: 'no-specialist',
      message: `no specialist can run this task: outside every scope: ${lines.join('; ')}. Change the command, or ask a person to widen opscrew.config.yaml or a specialist profile`,
    };
  }
  const parts = specialists
    .filter((s) => Object.keys(s.tools).length > 0)
    .map((s) => `${s.name} cannot run ${(gaps.get(s.name) ?? []).map((g) => `\`${g.command}\``).join(', ')}`);
  return {
    ok: false,
    code: 'no-specialist',
    message: `no single specialist can run every command of this task (${parts.join('; ')}); split the task, or set agent: and widen that profile`,
  };
}
