// What check-command and exec do (loaded lazily): both go through mcp-server/core/gate.ts, the
// same gate the crew uses, so what a person sees here is what an agent gets.
import { existsSync } from 'node:fs';
import type { CheckResult, GateResult } from '../../mcp-server/core/gate.js';
import { resolveWorkspace } from '../../mcp-server/core/workspace.js';
import type { ToolCall } from '../../tools/types.js';
import { EXIT } from './exit-codes.js';
import { requireConfig, resolveScope } from './lint-context.js';
import { printJson, printLines, type CliIO } from './output.js';
import { requireWorkspace } from './tasks-actions.js';

/** Exit code of a decision: 0 allow, 3 needs approval, 4 refused, 5 not a vetted call. */
export function exitForCheck(r: Pick<CheckResult, 'decision' | 'parseError'>): number {
  if (r.parseError) return EXIT.UNPARSEABLE;
  if (r.decision.verdict === 'allow') return EXIT.OK;
  if (r.decision.verdict === 'needs-approval') return EXIT.NEEDS_APPROVAL;
  return EXIT.REFUSED;
}

export function scopeText(call: ToolCall): string {
  const s = call.scope;
  const parts: string[] = [];
  if (s.context) parts.push(`context=${s.context}`);
  if (s.namespace) parts.push(`namespace=${s.namespace}`);
  if (s.project) parts.push(`project=${s.project}`);
  if (s.host) parts.push(`host=${s.host}`);
  if (s.vaultPath) parts.push(`vault=${s.vaultPath}`);
  if (s.paths?.length) parts.push(`paths=${s.paths.join(',')}`);
  if (s.method) parts.push(`method=${s.method}`);
  if (s.url) parts.push(`url=${s.url}`);
  return parts.join(' ') || '-';
}

export function callJson(call: ToolCall): Record<string, unknown> {
  return {
    tool: call.tool,
    verb: call.verb,
    class: call.class,
    scope: call.scope,
    canonical: call.canonical,
    args: call.args,
    pipeline: call.pipeline,
    ...(call.remote ? { remote: callJson(call.remote) } : {}),
  };
}

function describeCall(call: ToolCall, indent = ''): string[] {
  const out = [
    `${indent}tool:       ${call.tool}`,
    `${indent}verb:       ${call.verb}`,
    `${indent}class:      ${call.class}`,
    `${indent}scope:      ${scopeText(call)}`,
    `${indent}canonical:  ${call.canonical}`,
  ];
  if (call.pipeline.length) out.push(`${indent}filters:    ${call.pipeline.map((f) => [f.filter, ...f.args].join(' ')).join(' | ')}`);
  if (call.remote) out.push(`${indent}remote call (run on ${call.scope.host ?? 'the host'}):`, ...describeCall(call.remote, `${indent}  `));
  return out;
}

export async function checkCommand(io: CliIO, dir: string, line: string, opts: { agent?: string; task?: string; json?: boolean }): Promise<number> {
  const ws = resolveWorkspace(dir);
  const config = await requireConfig(ws, io);
  const who = await resolveScope(opts.agent);
  const [{ checkLine }, { openStore }] = await Promise.all([import('../../mcp-server/core/gate.js'), import('../../mcp-server/core/store.js')]);
  // Recorded approvals count when the workspace has a store; check-command never creates one.
  const store = existsSync(ws.dbPath) ? openStore(ws.dbPath, { readonly: true }) : undefined;
  let r: CheckResult;
  try {
    r = checkLine(
      { config, env: { ...io.env }, now: io.now, ...(store ? { db: store.db } : {}) },
      { line, agent: who.agent, scope: who.scope, ...(opts.task !== undefined ? { taskId: opts.task } : {}) },
    );
  } finally {
    store?.close();
  }
  const code = exitForCheck(r);
  if (opts.json) {
    printJson(io, {
      line,
      agent: who.agent,
      mode: config.mode,
      parsed: r.parseError === undefined,
      ...(r.parseError ? { parseError: r.parseError } : {}),
      call: r.call ? callJson(r.call) : null,
      decision: r.decision,
      exitCode: code,
    });
    return code;
  }
  const lines = [`line:       ${line}`, `as:         ${who.agent} (mode ${config.mode})`];
  if (r.parseError) lines.push(`parse:      ${r.parseError.code}: ${r.parseError.message}`);
  if (r.call) lines.push(...describeCall(r.call));
  lines.push(`decision:   ${r.decision.verdict} (${r.decision.rule})`, `reason:     ${r.decision.reason}`);
  printLines(io, lines);
  return code;
}

export function exitForExec(r: GateResult): number {
  if (!r.executed) return exitForCheck({ decision: r.decision, ...(r.parseError ? { parseError: r.parseError } : {}) });
  const o = r.outcome;
  if (r.execError || o?.refused) return EXIT.REFUSED;
  if (o?.timedOut) return 124;
  if (o?.exitCode === null || o?.exitCode === undefined) return EXIT.FAILED;
  return o.exitCode;
}

export async function execCommand(io: CliIO, dir: string, line: string, opts: { agent?: string; task?: string; json?: boolean }): Promise<number> {
  const ws = requireWorkspace(dir);
  const config = await requireConfig(ws, io);
  const who = await resolveScope(opts.agent);
  const [{ runLine }, { openStore }, { createSecretBroker }] = await Promise.all([
    import('../../mcp-server/core/gate.js'),
    import('../../mcp-server/core/store.js'),
    import('../../tools/secret-broker.js'),
  ]);
  const store = openStore(ws.dbPath);
  let r: GateResult;
  try {
    r = await runLine(
      { db: store.db, config, env: { ...io.env }, broker: createSecretBroker(), now: io.now },
      { line, agent: who.agent, scope: who.scope, ...(opts.task !== undefined ? { taskId: opts.task } : {}) },
    );
  } finally {
    store.close();
  }
  const code = exitForExec(r);
  if (opts.json) {
    printJson(io, {
      line,
      agent: who.agent,
      executed: r.executed,
      ok: r.ok,
      decision: r.decision,
      ...(r.parseError ? { parseError: r.parseError } : {}),
      ...(r.execError ? { execError: r.execError } : {}),
      call: r.call ? callJson(r.call) : null,
      exitCode: r.outcome?.exitCode ?? null,
      timedOut: r.outcome?.timedOut ?? false,
      truncated: r.outcome?.truncated ?? false,
      durationMs: r.outcome?.durationMs ?? null,
      stdout: r.outcome?.stdout ?? '',
      stderr: r.outcome?.stderr ?? '',
      approvalId: r.approvalId ?? null,
      auditSeq: r.auditSeq ?? null,
    });
    return code;
  }
  if (!r.executed) {
    const what = r.parseError ? `not a vetted call: ${r.parseError.message}` : `${r.decision.verdict} (${r.decision.rule}): ${r.decision.reason}`;
    io.err(`opscrew: ${what}\n`);
    return code;
  }
  const o = r.outcome;
  if (o) {
    io.out(o.stdout);
    io.err(o.stderr);
    if (o.truncated) io.err('opscrew: output was cut at the configured output_cap\n');
    if (o.timedOut) io.err(`opscrew: timed out after ${config.timeouts.command} ms\n`);
  }
  if (r.execError) io.err(`opscrew: ${r.execError.message}\n`);
  return code;
}
