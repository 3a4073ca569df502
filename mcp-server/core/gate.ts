// The gate: the ONE way any path (runbook brain, acceptance checks, MCP tools, `opscrew exec`)
// runs a command line: parse → decide → approvals → execute → scrub → ONE audit row per call (denied too).
// Expected outcomes (refusals, approvals needed, failing commands) are data in GateResult.
import { parseCommandLine } from '../../tools/parse-command.js';
import { makeFileWriteCall } from '../../tools/defs/files.js';
import { scrubForms } from '../../tools/secret-broker.js';
import type { ExecOutcome, SecretBroker, Spawner, ToolCall, ToolContext, ToolEnv } from '../../tools/types.js';
import { consumeApproval, listApprovals, requestApproval } from './approvals.js';
import { recordCall, type AuditInput, type RecordOptions } from './audit.js';
import { toToolEnv, type Config, type Mode } from './config.js';
import { decide, effectiveClass, type ApprovalView, type Decision } from './policy.js';
import type { AgentScope } from './scope.js';
import type { Db } from './store.js';
import { parseYaml } from './yaml.js';

/** Rule ids the gate adds to the policy's RULES (audit rows carry them too). */
export const GATE_RULES = [
  'parse.unparseable', // no vetted tool maps to the line
  'parse.refused', // a vetted tool, asked for something it never does
  'approval.unusable', // the approval was used or expired between decision and use (a race)
  'pre-step', // audit only: a recorded dry run / config check that ran before the call
] as const;

export interface GateDeps {
  db: Db;
  config: Config;
  /** The process environment (Vault address/token are read from the variables the config names). */
  env: NodeJS.ProcessEnv;
  broker: SecretBroker;
  now: () => number;
  /** Process runner; tests pass a spy. Default: tools/exec.ts via runToolCall. */
  spawn?: Spawner;
  signal?: AbortSignal;
}

export interface LineInput {
  line: string;
  /** Variables from the task's `export` lines. */
  vars?: Readonly<Record<string, string>>;
  /** Who runs it: a specialist's name, or a person's name for `opscrew exec`. */
  agent: string;
  scope: AgentScope | 'person';
  taskId?: string;
  runId?: string;
  /** Decide only: no approval is consumed or requested, nothing runs, nothing is audited. */
  dryRun?: boolean;
  /** Overrides config.mode for this call. */
  mode?: Mode;
  /**
   * A file block (`file=PATH` or `**File:**` form) to write through the files tool instead of a
   * command line; `line` is then only what people see (e.g. `write /srv/x.conf`).
   */
  fileBlock?: { path: string; content: string };
}

/** The typed call for an input: a parsed command line, or the write call of a file block. */
function parseInput(input: Pick<LineInput, 'line' | 'vars' | 'fileBlock'>, env: ToolEnv): ReturnType<typeof parseCommandLine> {
  if (input.fileBlock) return makeFileWriteCall(input.fileBlock.path, input.fileBlock.content);
  return parseCommandLine(input.line, { vars: input.vars ?? {}, env });
}

export interface GateResult {
  /** Allowed, ran, exit code 0, no timeout. */
  ok: boolean;
  /** The command was started (allowed and not a dry run). */
  executed: boolean;
  decision: Decision;
  call?: ToolCall;
  /** Scrubbed of every known secret value. */
  outcome?: ExecOutcome;
  /** The approval used (allow) or the pending request a person must decide (needs-approval). */
  approvalId?: string;
  /** Sequence number of the audit row (absent on dry runs). */
  auditSeq?: number;
  /** The line was not a vetted call. */
  parseError?: { code: 'unparseable' | 'refused'; message: string };
  /** The executor refused or failed before/while starting the command (e.g. an unknown secret handle). */
  execError?: { code: string; message: string };
}

export interface CheckResult {
  decision: Decision;
  call?: ToolCall;
  parseError?: { code: 'unparseable' | 'refused'; message: string };
}

const EMPTY_OUTCOME = (stderr: string, durationMs: number): ExecOutcome => ({
  exitCode: null,
  stdout: '',
  stderr,
  durationMs,
  timedOut: false,
  truncated: false,
});

/**
 * A scrubber covering the broker's values plus the Vault token, which is never registered
 * with the broker (a registered value can be revealed into a call by its handle).
 */
function makeScrubber(broker: SecretBroker, toolEnv: ToolEnv): (s: string) => string {
  const token = toolEnv.vault?.token;
  const forms = token && token.length >= 4 ? scrubForms(token).sort((a, b) => b.length - a.length) : [];
  return (s: string): string => {
    let out = broker.scrub(s);
    for (const f of forms) if (out.includes(f)) out = out.split(f).join('[vault-token]');
    return out;
  };
}

function parseFailureDecision(code: 'unparseable' | 'refused', message: string): Decision {
  return { verdict: 'deny', rule: `parse.${code}`, reason: message };
}

interface PendingAudit {
  row: AuditInput;
  options: RecordOptions;
  done: (seq: number) => void;
  fail: (e: unknown) => void;
}

/** Rows of executed calls waiting for the next group commit, per database (module state: a write queue only). */
const pendingAudit = new WeakMap<Db, PendingAudit[]>();

/**
 * Appends the audit row of an executed call with a group commit: rows queued in the same turn of
 * the event loop go into ONE transaction, so calls finishing together share one synchronous=FULL
 * fsync (milliseconds on a busy disk, and it blocks the event loop). The promise settles only
 * after the row is committed: no call is reported before its audit row is durable.
 */
function recordDurably(db: Db, row: AuditInput, options: RecordOptions): Promise<number> {
  return new Promise((done, fail) => {
    let queue = pendingAudit.get(db);
    if (!queue) {
      queue = [];
      pendingAudit.set(db, queue);
      setImmediate(() => flushAudit(db));
    }
    queue.push({ row, options, done, fail });
  });
}

function flushAudit(db: Db): void {
  const batch = pendingAudit.get(db) ?? [];
  pendingAudit.delete(db);
  let committed: { value: number[]; durable: () => Promise<void> } | undefined;
  try {
    // The WAL fsync runs in the thread pool (shared with other commits): calls resolve after it.
    committed = db.immediateDeferred(() => batch.map((p) => recordCall(db, p.row, p.options)));
  } catch {
    committed = undefined;
  }
  if (committed) {
    const seqs = committed.value;
    committed.durable().then(
      () => batch.forEach((p, i) => p.done(seqs[i]!)),
      (e: unknown) => batch.forEach((p) => p.fail(e)),
    );
    return;
  }
  // The batch was rolled back: each row on its own, so one bad row fails only its own call.
  for (const p of batch) {
    try {
      p.done(recordCall(db, p.row, p.options));
    } catch (e) {
      p.fail(e);
    }
  }
}

/** Approvals the policy may use for this call: same task (or none), same canonical command. */
function approvalsFor(db: Db, call: ToolCall, taskId: string | undefined): ApprovalView[] {
  return listApprovals(db, { state: 'approved', taskId: taskId ?? null, canonical: call.canonical, limit: 50 });
}

/** Parse and decide without running anything (`opscrew check-command`, `tasks lint`). */
export function checkLine(
  deps: { config: Config; env?: NodeJS.ProcessEnv; now: () => number; db?: Db },
  input: Omit<LineInput, 'dryRun'>,
): CheckResult {
  const toolEnv = toToolEnv(deps.config, deps.env ?? {});
  const parsed = parseInput(input, toolEnv);
  if (!parsed.ok) {
    const parseError = { code: parsed.code, message: parsed.message };
    return { decision: parseFailureDecision(parsed.code, parsed.message), parseError };
  }
  const call = parsed.value;
  const approvals = deps.db ? approvalsFor(deps.db, call, input.taskId) : [];
  const decision = decide({
    call,
    config: deps.config,
    scope: input.scope,
    approvals,
    taskId: input.taskId ?? null,
    now: deps.now(),
    ...(input.mode ? { mode: input.mode } : {}),
  });
  return { decision, call };
}

/** Run one command line under the policy, with approvals and audit. Never throws for expected outcomes. */
export async function runLine(deps: GateDeps, input: LineInput): Promise<GateResult> {
  const { db, config } = deps;
  const toolEnv = toToolEnv(config, deps.env);
  const scrub = makeScrubber(deps.broker, toolEnv);
  type Row = Omit<AuditInput, 'tsMs' | 'agent' | 'taskId' | 'runId'>;
  const full = (row: Row): AuditInput => ({ tsMs: deps.now(), agent: input.agent, taskId: input.taskId ?? null, runId: input.runId ?? null, ...row });
  const recordOptions: RecordOptions = { scrub, excerptChars: config.audit_excerpt };
  const audit = (row: Row): number => recordCall(db, full(row), recordOptions);
  const auditDurably = (row: Row): Promise<number> => recordDurably(db, full(row), recordOptions);

  const parsed = parseInput(input, toolEnv);
  if (!parsed.ok) {
    const message = scrub(parsed.message);
    const decision = parseFailureDecision(parsed.code, message);
    const parseError = { code: parsed.code, message };
    if (input.dryRun) return { ok: false, executed: false, decision, parseError };
    const auditSeq = audit({ canonical: oneLine(input.line), decision: 'deny', rule: decision.rule, stderr: message });
    return { ok: false, executed: false, decision, parseError, auditSeq };
  }
  const call = parsed.value;
  const cls = effectiveClass(call);
  const base = { tool: call.tool, verb: call.verb, canonical: call.canonical, class: cls };

  let decision = decide({
    call,
    config,
    scope: input.scope,
    approvals: approvalsFor(db, call, input.taskId),
    taskId: input.taskId ?? null,
    now: deps.now(),
    ...(input.mode ? { mode: input.mode } : {}),
  });
  if (input.dryRun) return { ok: false, executed: false, decision, call };

  if (decision.verdict === 'deny') {
    const auditSeq = audit({ ...base, decision: 'deny', rule: decision.rule });
    return { ok: false, executed: false, decision, call, auditSeq };
  }

  if (decision.verdict === 'needs-approval') {
    const id = requestApproval(
      db,
      { task: input.taskId ?? null, run: input.runId ?? null, agent: input.agent, canonical: call.canonical },
      { now: deps.now(), ttlMs: config.timeouts.approval },
    );
    decision = { ...decision, reason: decision.reason.replace('<request-id>', id) + ` (request ${id})` };
    const auditSeq = audit({ ...base, decision: 'needs-approval', rule: decision.rule, approvalId: id });
    return { ok: false, executed: false, decision, call, approvalId: id, auditSeq };
  }

  // Allowed. An approval is consumed before the command starts: a crash mid-run must not leave it reusable.
  if (decision.approvalId !== undefined) {
    const used = consumeApproval(db, decision.approvalId, { now: deps.now(), canonical: call.canonical });
    if (!used.ok) {
      decision = { verdict: 'deny', rule: 'approval.unusable', reason: `${used.message}`, approvalId: decision.approvalId };
      const auditSeq = audit({ ...base, decision: 'deny', rule: decision.rule, approvalId: decision.approvalId });
      return { ok: false, executed: false, decision, call, approvalId: decision.approvalId, auditSeq };
    }
  }

  const httpHosts = input.scope === 'person' ? undefined : input.scope.tools.http?.http_hosts;
  const ctx: ToolContext = {
    env: toolEnv,
    secrets: deps.broker,
    parseYaml: (text) => {
      const r = parseYaml(text, { fast: false });
      return r.ok ? { ok: true, data: r.value.data } : { ok: false, message: `line ${r.error.line}: ${r.error.message}` };
    },
    timeoutMs: config.timeouts.command,
    outputCap: config.output_cap,
    ...(httpHosts ? { httpHosts } : {}),
    ...(deps.signal ? { signal: deps.signal } : {}),
    ...(deps.spawn ? { spawn: deps.spawn } : {}),
  };
  const started = deps.now();
  let outcome: ExecOutcome;
  let execError: GateResult['execError'];
  try {
    // Loaded on the first executed call, not at import: run-call pulls in execa and the
    // in-process clients, which a server that only lists tools or refuses never needs
    // (this is most of `opscrew mcp`'s cold start). Node caches the module after that.
    const { runToolCall } = await import('../../tools/run-call.js');
    outcome = await runToolCall(call, ctx);
    if (outcome.refused) execError = { code: outcome.refused.code, message: scrub(outcome.refused.message) };
  } catch (e) {
    // runToolCall never throws by contract; a throw is a bug, still recorded and returned as data.
    const code = typeof (e as { code?: unknown }).code === 'string' ? (e as { code: string }).code : 'exec-failed';
    const message = scrub(e instanceof Error ? e.message : String(e));
    execError = { code, message };
    outcome = { ...EMPTY_OUTCOME(`refused by the executor: ${message}`, Math.max(0, deps.now() - started)), refused: execError };
  }
  outcome = scrubOutcome(outcome, scrub);

  // Recorded extra steps (server-side dry run, `compose config`) get their own rows, before the call's
  // (queued in order, committed together with it).
  const preRows = (outcome.preSteps ?? []).map((pre) =>
    auditDurably({ tool: call.tool, verb: call.verb, canonical: pre.canonical, class: 'read', decision: 'allow', rule: 'pre-step', exitCode: pre.exitCode, stdout: pre.excerpt }),
  );
  for (const p of preRows) p.catch(() => undefined); // awaited below; never an unhandled rejection meanwhile
  const auditSeq = await auditDurably({
    ...base,
    decision: 'allow',
    rule: decision.rule,
    approvalId: decision.approvalId ?? null,
    exitCode: outcome.exitCode,
    durationMs: outcome.durationMs,
    stdout: outcome.stdout,
    stderr: outcome.stderr,
  });
  await Promise.all(preRows);
  const ok = execError === undefined && outcome.exitCode === 0 && !outcome.timedOut;
  return {
    ok,
    executed: true,
    decision,
    call,
    outcome,
    auditSeq,
    ...(decision.approvalId !== undefined ? { approvalId: decision.approvalId } : {}),
    ...(execError ? { execError } : {}),
  };
}

function scrubOutcome(o: ExecOutcome, scrub: (s: string) => string): ExecOutcome {
  const out: ExecOutcome = { ...o, stdout: scrub(o.stdout), stderr: scrub(o.stderr) };
  if (o.refused) out.refused = { code: o.refused.code, message: scrub(o.refused.message) };
  if (o.preSteps) out.preSteps = o.preSteps.map((p) => ({ ...p, canonical: scrub(p.canonical), excerpt: scrub(p.excerpt) }));
  return out;
}

/** An unparsed line as one audit-safe line (control characters shown, not written). */
function oneLine(line: string): string {
  // eslint-disable-next-line no-control-regex
  return line.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
