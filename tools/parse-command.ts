// The gate: one runbook line → a typed, classified ToolCall, or a precise refusal.
// Pure and synchronous; nothing here spawns a process or touches the file system.

import { resolveTool, describeTools, FILTER_DEFINITIONS } from './catalogue.js';
import { named, type ParseCode, type ParseContext } from './defs/common.js';
import { parseFilter } from './defs/filters.js';
import { fail, ok, type Result } from './result.js';
import { hasHandles } from './secret-broker.js';
import { joinWords, tokenize, type Stage } from './tokenize.js';
import type { FilterCall, ToolCall, ToolEnv } from './types.js';

export type { ParseCode } from './defs/common.js';

export interface ParseOptions {
  /** Variables set by earlier `export NAME=value` lines of the task. */
  vars?: Readonly<Record<string, string>>;
  /** The tool part of the config: default kube context, ssh hosts, compose projects... */
  env?: ToolEnv;
}

/**
 * Parses one command line. `unparseable`: no vetted tool maps to it (or it is malformed);
 * `refused`: it maps to a tool but asks for something the tool never does. Never throws.
 */
export function parseCommandLine(line: string, opts: ParseOptions = {}): Result<ToolCall, ParseCode> {
  try {
    return parseLine(line, opts, true);
  } catch (e) {
    // A bug, not an outcome; still never let a line crash the caller.
    return fail('unparseable', `internal parser error: ${e instanceof Error ? e.message : String(e)}`);
  }
}

function parseLine(line: string, opts: ParseOptions, allowSsh: boolean): Result<ToolCall, ParseCode> {
  const t = tokenize(line, { vars: opts.vars ?? {} });
  if (!t.ok) return t;
  const [first, ...filters] = t.value as [Stage, ...Stage[]];
  const ctx: ParseContext = { vars: opts.vars ?? {} };
  if (opts.env) ctx.env = opts.env;
  if (allowSsh) ctx.parseRemote = (remote: string) => parseLine(remote, opts, false);

  const def = resolveTool(first);
  if (!def.ok) return def;
  const handle = def.value.takesHandles ? undefined : first.find((w) => hasHandles(w.text));
  if (handle !== undefined)
    return fail(
      'refused',
      `${def.value.commands}: ${named(handle)} holds a secret handle, and this tool has no place a secret's value may go (its arguments show in process lists, logs and stored state); handles go only into vault kv put/patch, kubectl create secret / patch secret, curl to a host in http.allow, and file blocks`,
    );
  const call = def.value.parse(first, ctx);
  if (!call.ok) return call;

  const pipeline: FilterCall[] = [...call.value.pipeline];
  for (const stage of filters) {
    const f = parseFilter(stage);
    if (!f.ok) return f;
    pipeline.push(f.value);
  }
  return ok(withPipeline(call.value, pipeline));
}

/** Definitions return the tool part's canonical line; the filters are appended here. */
function withPipeline(call: ToolCall, pipeline: FilterCall[]): ToolCall {
  const canonical = [call.canonical, ...pipeline.map(filterCanonical)].join(' | ');
  return { ...call, pipeline, canonical };
}

export function filterCanonical(f: FilterCall): string {
  return joinWords([f.filter, ...f.args]);
}

/** The canonical line of a call: what approvals bind to. Same as `call.canonical`. */
export function canonicalize(call: ToolCall): string {
  return call.canonical;
}

export { describeTools, FILTER_DEFINITIONS };
