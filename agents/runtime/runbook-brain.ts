// The runbook brain (default, deterministic, no API key): Preflight → Steps → acceptance checks,
// every command through the gate (core/gate runLine) as the routed specialist, so policy,
// approvals, audit and scrubbing are exactly what any other path gets. It decides the run's
// outcome; what happens to the task file next (complete, retry, block) is the crew's call.
import { listApprovals, expireApprovals, seedTaskApprovals } from '../../mcp-server/core/approvals.js';
import type { Claim } from '../../mcp-server/core/queue.js';
import { checkExpectations } from '../../mcp-server/core/expectations.js';
import { runLine, type GateDeps, type GateResult, type LineInput } from '../../mcp-server/core/gate.js';
import { specialistScope, type Specialist } from '../../mcp-server/core/specialists.js';
import type { TaskUpdate } from '../../mcp-server/core/task-render.js';
import type { CommandItem, CriterionEvidence, FileItem, StepItem, Task } from '../../mcp-server/core/task-types.js';
import { excerptOf, MANUAL_REASON, verifyTask } from '../../mcp-server/core/verifier.js';

export type Section = 'preflight' | 'steps' | 'acceptance' | 'rollback';

/** One command the run tried, allowed or not. */
export interface StepRecord {
  section: Section;
  /** 1-based line of the command in the task file. */
  line: number;
  /** Canonical form when it parsed, else the line as written. */
  command: string;
  decision: 'allow' | 'needs-approval' | 'deny';
  rule: string;
  exitCode: number | null;
  durationMs: number;
  excerpt: string;
  passed: boolean;
  reason?: string;
  approvalId?: string;
  auditSeq?: number;
}

export type RunKind = 'completed' | 'failed' | 'blocked' | 'refused';

export interface RunOutcome {
  kind: RunKind;
  /** For a person: what happened and what to do (empty on completion). */
  reason: string;
  /** Per-criterion proof (acceptance ran), or the failing step's evidence. */
  evidence: CriterionEvidence[];
  /** Criteria lines to tick `[x]` (completed runs). */
  tickCriteria: number[];
  steps: StepRecord[];
  /** The command whose result decided a non-completed outcome. */
  failing?: StepRecord;
  rollback?: { ran: number; failed: number };
  /** Variables set by the task's `export` lines (for follow-up work). */
  vars: Record<string, string>;
  /**
   * The brain already moved the task itself (a Claude session's task_submit / task_block with
   * the crew's claim): the crew records the outcome and must not complete or block it again.
   */
  settled?: boolean;
}

export type BrainEvent =
  | { type: 'section'; section: Section }
  | { type: 'command'; section: Section; line: number; command: string }
  | { type: 'command-done'; section: Section; step: StepRecord }
  | { type: 'awaiting-approval'; approvalId: string; command: string }
  | { type: 'approval-decided'; approvalId: string; state: string };

export interface BrainInput {
  task: Task;
  specialist: Specialist;
  taskId: string;
  runId: string;
  attempt: number;
  /** Aborted on task timeout, lost lease or shutdown: the running command is killed. */
  signal?: AbortSignal;
  /** Writes runner-owned state into the claimed task file (fenced by the caller). */
  setState?: (update: TaskUpdate) => Promise<void>;
  onEvent?: (e: BrainEvent) => void;
  /** The crew's claim (a brain that moves the task itself presents its fencing token). */
  claim?: Claim;
}

/** The interface every brain implements; the Claude brain plugs in here later. */
export interface Brain {
  name: string;
  run(input: BrainInput): Promise<RunOutcome>;
  /**
   * Narrates a run's retrospective from its recorded facts (the Claude brain); the deterministic
   * brain has none, and its retrospectives carry the facts section only.
   */
  narrate?(facts: unknown, signal?: AbortSignal): Promise<string | null>;
}

export interface RunbookBrainDeps extends Omit<GateDeps, 'signal'> {
  /** How often a waiting run looks at the approvals table. Default 1000 ms. */
  approvalPollMs?: number;
  /** The gate; tests may wrap it. */
  runLine?: (deps: GateDeps, input: LineInput) => Promise<GateResult>;
}

const DEFAULT_APPROVAL_POLL_MS = 1000;
/** Characters of a failing command's output quoted in a block reason. */
const REASON_EXCERPT = 240;

/** Sleep that ends early (resolves, never rejects) when the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, Math.max(0, ms));
    function done(): void {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

type ItemStatus = 'ok' | 'failed' | 'refused' | 'approval-denied' | 'aborted';

interface ItemResult {
  status: ItemStatus;
  rec: StepRecord;
}

function abortReason(signal: AbortSignal | undefined): string {
  const r: unknown = signal?.reason;
  if (r instanceof Error) return r.message;
  return typeof r === 'string' ? r : 'the run was aborted';
}

function quoteExcerpt(s: string): string {
  const t = s.replace(/\s+/g, ' ').trim();
  if (t === '') return '';
  return `; output: ${t.length > REASON_EXCERPT ? `${t.slice(0, REASON_EXCERPT)}…` : t}`;
}

function describeStep(r: StepRecord): string {
  const exit = r.exitCode === null ? 'no exit code' : `exit ${r.exitCode}`;
  return `\`${r.command}\` (line ${r.line}, ${exit}${r.reason ? `: ${r.reason}` : ''})${quoteExcerpt(r.excerpt)}`;
}

function stepEvidence(title: string, r: StepRecord): CriterionEvidence {
  return {
    criterion: title,
    outcome: 'failed',
    commands: [{ command: r.command, exitCode: r.exitCode, durationMs: r.durationMs, excerpt: r.excerpt, passed: false, ...(r.reason ? { reason: r.reason } : {}) }],
  };
}

/** Problems that make a task impossible for this brain, found before anything runs. */
export function runbookProblems(task: Task): string[] {
  const out: string[] = [];
  if (task.criteria.length === 0) {
    out.push('the task has no acceptance criteria: add at least one criterion with a verification command (or `N/A - reason`)');
  }
  for (const c of task.criteria) {
    if (c.kind === 'manual') out.push(`criterion "${c.text}" (line ${c.line}) ${MANUAL_REASON}`);
  }
  return out;
}

export function createRunbookBrain(deps: RunbookBrainDeps): Brain {
  const gate = deps.runLine ?? runLine;
  const pollMs = deps.approvalPollMs ?? DEFAULT_APPROVAL_POLL_MS;

  return {
    name: 'runbook',
    async run(input: BrainInput): Promise<RunOutcome> {
      const { task, specialist, taskId, runId, signal } = input;
      const scope = specialistScope(specialist);
      const agent = specialist.name;
      const gateDeps: GateDeps = {
        db: deps.db,
        config: deps.config,
        env: deps.env,
        broker: deps.broker,
        now: deps.now,
        ...(deps.spawn ? { spawn: deps.spawn } : {}),
        ...(signal ? { signal } : {}),
      };
      const steps: StepRecord[] = [];
      const vars: Record<string, string> = {};
      const emit = (e: BrainEvent): void => input.onEvent?.(e);
      const result = (kind: RunKind, reason: string, extra: Partial<RunOutcome> = {}): RunOutcome => ({
        kind,
        reason,
        evidence: [],
        tickCriteria: [],
        steps,
        vars,
        ...extra,
      });

      const problems = runbookProblems(task);
      if (problems.length > 0) return result('blocked', `the runbook brain cannot run this task: ${problems.join('; ')}`);

      // The author's `approve:` list becomes single-use approvals bound to this run.
      seedTaskApprovals(deps.db, task, runId, { config: deps.config, now: deps.now() });

      /** Waits for a person on a pending request: approved, denied, expired or aborted. */
      const waitForDecision = async (id: string, canonical: string): Promise<'approved' | 'denied' | 'expired' | 'aborted'> => {
        for (;;) {
          if (signal?.aborted) return 'aborted';
          const row = listApprovals(deps.db, { runId, canonical, limit: 50 }).find((a) => a.id === id);
          if (!row) return 'expired';
          if (row.state === 'approved') return 'approved';
          if (row.state === 'denied') return 'denied';
          if (row.state !== 'pending') return 'expired';
          const left = row.expiresMs - deps.now();
          if (left <= 0) {
            expireApprovals(deps.db, deps.now());
            return 'expired';
          }
          await sleep(Math.min(pollMs, left), signal);
        }
      };

      /** One line through the gate; a needs-approval decision waits for a person, then reruns. */
      const gated = async (line: string, fileBlock?: FileItem): Promise<{ r: GateResult; approval?: { id: string; state: string } }> => {
        const base: LineInput = { line, vars: { ...vars }, agent, scope, taskId, runId, ...(fileBlock ? { fileBlock: { path: fileBlock.path, content: fileBlock.content } } : {}) };
        const r = await gate(gateDeps, base);
        if (r.decision.verdict !== 'needs-approval' || r.approvalId === undefined || !r.call) return { r };
        const id = r.approvalId;
        emit({ type: 'awaiting-approval', approvalId: id, command: r.call.canonical });
        await input.setState?.({ set: { status: 'awaiting-approval', approval_request: id } });
        const state = await waitForDecision(id, r.call.canonical);
        emit({ type: 'approval-decided', approvalId: id, state });
        await input.setState?.({ set: { status: 'active' }, unset: ['approval_request'] });
        if (state !== 'approved') return { r, approval: { id, state } };
        return { r: await gate(gateDeps, base), approval: { id, state } };
      };

      const toRecord = (section: Section, item: CommandItem, r: GateResult): StepRecord => {
        const o = r.outcome;
        return {
          section,
          line: item.line,
          command: r.call?.canonical ?? item.text,
          decision: r.decision.verdict,
          rule: r.decision.rule,
          exitCode: o?.exitCode ?? null,
          durationMs: o?.durationMs ?? 0,
          excerpt: o ? excerptOf(o.stdout.trim() !== '' ? o.stdout : o.stderr) : '',
          passed: false,
          ...(r.approvalId !== undefined ? { approvalId: r.approvalId } : {}),
          ...(r.auditSeq !== undefined ? { auditSeq: r.auditSeq } : {}),
        };
      };

      const runCommand = async (section: Section, step: CommandItem | FileItem): Promise<ItemResult> => {
        // A file block runs as the files tool's `write` of exactly its bytes (mutate, inside the roots).
        const item: CommandItem = step.kind === 'command' ? step : { kind: 'command', line: step.line, text: `write ${step.path}`, expects: [] };
        emit({ type: 'command', section, line: item.line, command: item.text });
        const { r, approval } = await gated(item.text, step.kind === 'file' ? step : undefined);
        const rec = toRecord(section, item, r);
        let status: ItemStatus = 'ok';
        if (r.parseError) {
          status = 'refused';
          rec.reason = `not a vetted command (${r.decision.rule}): ${r.parseError.message}`;
        } else if (approval && approval.state !== 'approved') {
          status = approval.state === 'aborted' ? 'aborted' : 'approval-denied';
          rec.reason =
            approval.state === 'denied'
              ? `approval ${approval.id} was denied by a person`
              : approval.state === 'expired'
                ? `approval ${approval.id} was not decided within timeouts.approval (${Math.round(deps.config.timeouts.approval / 1000)} s); treated as denied`
                : `aborted while waiting for approval ${approval.id}: ${abortReason(signal)}`;
        } else if (r.decision.verdict === 'deny') {
          status = 'refused';
          rec.reason = `refused by policy (${r.decision.rule}): ${r.decision.reason}`;
        } else if (r.decision.verdict === 'needs-approval') {
          status = 'approval-denied';
          rec.reason = `still needs approval after ${approval?.id ?? 'the request'} was decided: ${r.decision.reason}`;
        } else if (!r.executed || !r.outcome) {
          status = 'failed';
          rec.reason = 'the command did not run';
        } else if (r.execError) {
          status = 'failed';
          rec.reason = `${r.execError.code}: ${r.execError.message}`;
        } else if (r.outcome.timedOut) {
          status = signal?.aborted ? 'aborted' : 'failed';
          rec.reason = signal?.aborted ? `aborted: ${abortReason(signal)}` : `timed out after timeouts.command (${Math.round(deps.config.timeouts.command / 1000)} s)`;
        } else {
          const check = checkExpectations(item.expects, { exitCode: r.outcome.exitCode, stdout: r.outcome.stdout });
          if (!check.passed) {
            status = signal?.aborted ? 'aborted' : 'failed';
            rec.reason = signal?.aborted ? `aborted: ${abortReason(signal)}` : (check.reason ?? 'expectation failed');
          }
        }
        rec.passed = status === 'ok';
        steps.push(rec);
        emit({ type: 'command-done', section, step: rec });
        return { status, rec };
      };

      /** Runs a section's items in order; stops at the first item that is not ok. */
      const runSection = async (section: Section, items: readonly StepItem[]): Promise<ItemResult | null> => {
        if (items.length > 0) emit({ type: 'section', section });
        for (const it of items) {
          if (signal?.aborted) {
            const rec: StepRecord = { section, line: it.line, command: it.kind === 'command' ? it.text : `(${it.kind})`, decision: 'allow', rule: '', exitCode: null, durationMs: 0, excerpt: '', passed: false, reason: `aborted: ${abortReason(signal)}` };
            return { status: 'aborted', rec };
          }
          if (it.kind === 'export') {
            vars[it.name] = it.value;
            continue;
          }
          const res = await runCommand(section, it);
          if (res.status !== 'ok') return res;
        }
        return null;
      };

      /** Every Rollback line, policy-gated; failures are recorded and the next line still runs. */
      const rollback = async (): Promise<{ ran: number; failed: number }> => {
        const out = { ran: 0, failed: 0 };
        if (task.rollback.length === 0) return out;
        emit({ type: 'section', section: 'rollback' });
        for (const it of task.rollback) {
          if (it.kind === 'export') {
            vars[it.name] = it.value;
            continue;
          }
          if (signal?.aborted) break;
          const res = await runCommand('rollback', it);
          out.ran++;
          if (res.status !== 'ok') out.failed++;
        }
        return out;
      };

      const rollbackNote = (rb: { ran: number; failed: number }): string =>
        task.rollback.length === 0
          ? ' No Rollback section to run.'
          : ` Rollback ran ${rb.ran} command(s)${rb.failed ? `, ${rb.failed} failed: check the run's evidence` : ', all passed'}.`;

      // ---- Preflight: a failure blocks; nothing has been changed yet.
      const pre = await runSection('preflight', task.preflight);
      if (pre) {
        const failing = pre.rec;
        if (pre.status === 'refused') return result('refused', `Preflight command refused: ${describeStep(failing)}`, { failing, evidence: [stepEvidence('Preflight', failing)] });
        if (pre.status === 'aborted') return result('failed', `aborted in Preflight: ${abortReason(signal)}`, { failing });
        return result('blocked', `Preflight failed, nothing was changed: ${describeStep(failing)}`, { failing, evidence: [stepEvidence('Preflight', failing)] });
      }

      // ---- Steps: a failure runs Rollback, then the run fails (the crew decides on a retry).
      const st = await runSection('steps', task.steps);
      if (st) {
        const failing = st.rec;
        const ev = [stepEvidence(`Step ${st.status === 'refused' ? 'refused' : 'failed'} (line ${failing.line})`, failing)];
        if (st.status === 'refused') {
          // Not rolled back: nothing may run after a refusal; a person reviews the partial run.
          return result('refused', `Step refused, nothing ran after it (Rollback not run; review before unblocking): ${describeStep(failing)}`, { failing, evidence: ev });
        }
        if (st.status === 'approval-denied') return result('blocked', `Step not approved: ${describeStep(failing)}`, { failing, evidence: ev });
        if (st.status === 'aborted') return result('failed', `aborted during Steps at line ${failing.line}: ${abortReason(signal)} (Rollback not run)`, { failing, evidence: ev });
        const rb = await rollback();
        return result('failed', `Step failed: ${describeStep(failing)}.${rollbackNote(rb)}`, { failing, evidence: ev, rollback: rb });
      }

      // ---- Acceptance: the verifier runs every criterion through the same (approval-waiting) gate.
      emit({ type: 'section', section: 'acceptance' });
      const acceptance: Array<{ rec: StepRecord; status: ItemStatus }> = [];
      const verifyGate = async (_d: GateDeps, li: LineInput): Promise<GateResult> => {
        emit({ type: 'command', section: 'acceptance', line: 0, command: li.line });
        const { r, approval } = await gated(li.line);
        const fake: CommandItem = { kind: 'command', line: 0, text: li.line, expects: [] };
        const rec = toRecord('acceptance', fake, r);
        rec.passed = r.ok;
        let status: ItemStatus = r.ok ? 'ok' : 'failed';
        if (r.parseError || r.decision.verdict === 'deny') status = 'refused';
        if (approval && approval.state !== 'approved') status = approval.state === 'aborted' ? 'aborted' : 'approval-denied';
        if (!r.ok) rec.reason = r.parseError?.message ?? r.execError?.message ?? (r.decision.verdict !== 'allow' ? `${r.decision.rule}: ${r.decision.reason}` : undefined);
        if (rec.reason === undefined) delete rec.reason;
        steps.push(rec);
        acceptance.push({ rec, status });
        emit({ type: 'command-done', section: 'acceptance', step: rec });
        return r;
      };
      const v = await verifyTask({ ...gateDeps, runLine: verifyGate }, { task, agent, scope, taskId, runId, vars });
      if (v.passed) return result('completed', '', { evidence: v.evidence, tickCriteria: v.satisfiedLines });

      const failedCriteria = v.evidence.filter((e) => e.outcome !== 'verified' && e.outcome !== 'na');
      const firstCmd = failedCriteria[0]?.commands.find((c) => !c.passed);
      const summary = failedCriteria
        .map((e) => {
          const c = e.commands.find((x) => !x.passed);
          return `"${e.criterion}"${c ? `: \`${c.command}\` ${c.reason ?? 'failed'}${quoteExcerpt(c.excerpt)}` : ''}`;
        })
        .join('; ');
      const refusal = acceptance.find((a) => a.status === 'refused');
      const failing: StepRecord | undefined = refusal?.rec ?? acceptance.find((a) => a.status !== 'ok')?.rec;
      const base = { evidence: v.evidence, ...(failing ? { failing } : {}) };
      if (refusal) return result('refused', `acceptance check refused: ${describeStep(refusal.rec)}`, base);
      if (acceptance.some((a) => a.status === 'approval-denied')) return result('blocked', `acceptance check not approved: ${summary}`, base);
      if (acceptance.some((a) => a.status === 'aborted') || signal?.aborted) return result('failed', `aborted during acceptance checks: ${abortReason(signal)}`, base);
      const rb = await rollback();
      const n = `${v.evidence.length - failedCriteria.length} of ${v.evidence.length} criteria met`;
      return result('failed', `verification failed (${n}): ${summary || (firstCmd?.reason ?? 'a criterion failed')}.${rollbackNote(rb)}`, { ...base, rollback: rb });
    },
  };
}
