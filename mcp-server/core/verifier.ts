// The verifier: proves a task's acceptance criteria by running each criterion's commands through
// the gate (policy, approvals, audit, scrub) and checking the `# expect` lines. Only this decides
// whether a task may complete; an agent's word never does.
import { checkExpectations } from './expectations.js';
import { runLine, type GateDeps, type GateResult } from './gate.js';
import type { AgentScope } from './scope.js';
import type { CriterionEvidence, Task } from './task-types.js';

export const MANUAL_REASON = 'needs a verification command or N/A';
/** Characters of output kept per command in evidence. */
export const EVIDENCE_EXCERPT_CHARS = 600;

export interface VerifyInput {
  task: Task;
  agent: string;
  scope: AgentScope | 'person';
  taskId: string;
  runId: string;
  /** Variables from the task's Steps `export` lines, visible to the checks. */
  vars?: Readonly<Record<string, string>>;
}

export interface VerifyResult {
  passed: boolean;
  evidence: CriterionEvidence[];
  /** 1-based lines of the criteria that were verified or N/A: the ones to tick `[x]`. */
  satisfiedLines: number[];
}

export type RunLineFn = (deps: GateDeps, input: Parameters<typeof runLine>[1]) => Promise<GateResult>;

export interface VerifierDeps extends GateDeps {
  /** The gate; tests may wrap it. Default: core/gate runLine. */
  runLine?: RunLineFn;
}

export function excerptOf(text: string, max = EVIDENCE_EXCERPT_CHARS): string {
  const t = text.trim();
  return t.length <= max ? t : `${t.slice(0, max)}… (${t.length - max} more chars)`;
}

/** Runs every criterion (none is skipped after a failure: the evidence shows the whole picture). */
export async function verifyTask(deps: VerifierDeps, input: VerifyInput): Promise<VerifyResult> {
  const run = deps.runLine ?? runLine;
  const evidence: CriterionEvidence[] = [];
  const satisfiedLines: number[] = [];
  const vars: Record<string, string> = { ...(input.vars ?? {}) };
  for (const c of input.task.criteria) {
    if (c.kind === 'na') {
      evidence.push({ criterion: c.text, outcome: 'na', commands: [] });
      satisfiedLines.push(c.line);
      continue;
    }
    if (c.kind === 'manual') {
      evidence.push({ criterion: c.text, outcome: 'manual', commands: [{ command: '', exitCode: null, durationMs: 0, excerpt: '', passed: false, reason: MANUAL_REASON }] });
      continue;
    }
    const commands: CriterionEvidence['commands'] = [];
    let passed = true;
    for (const item of c.items) {
      if (item.kind === 'export') {
        vars[item.name] = item.value;
        continue;
      }
      if (item.kind === 'file') {
        // Writing files is a step, never a check: a criterion that writes proves nothing.
        commands.push({ command: `file block ${item.path}`, exitCode: null, durationMs: 0, excerpt: '', passed: false, reason: 'a file block cannot be a verification; move it to Steps' });
        passed = false;
        continue;
      }
      const r = await run(deps, { line: item.text, vars, agent: input.agent, scope: input.scope, taskId: input.taskId, runId: input.runId });
      const cmd = commandEvidence(item.text, item.expects, r);
      commands.push(cmd);
      if (!cmd.passed) passed = false;
    }
    if (commands.length === 0) {
      passed = false;
      commands.push({ command: '', exitCode: null, durationMs: 0, excerpt: '', passed: false, reason: MANUAL_REASON });
    }
    evidence.push({ criterion: c.text, outcome: passed ? 'verified' : 'failed', commands });
    if (passed) satisfiedLines.push(c.line);
  }
  const allPassed = evidence.every((e) => e.outcome === 'verified' || e.outcome === 'na');
  recordVerifications(deps, input, evidence);
  return { passed: allPassed, evidence, satisfiedLines };
}

function commandEvidence(line: string, expects: Parameters<typeof checkExpectations>[0], r: GateResult): CriterionEvidence['commands'][number] {
  const command = r.call?.canonical ?? line;
  if (!r.executed || !r.outcome) {
    const why = r.parseError
      ? `not a vetted command: ${r.parseError.message}`
      : r.decision.verdict === 'needs-approval'
        ? `needs approval: ${r.decision.reason}`
        : `denied by policy (${r.decision.rule}): ${r.decision.reason}`;
    return { command, exitCode: null, durationMs: 0, excerpt: '', passed: false, reason: why };
  }
  const o = r.outcome;
  if (r.execError) {
    return { command, exitCode: o.exitCode, durationMs: o.durationMs, excerpt: excerptOf(o.stderr), passed: false, reason: `${r.execError.code}: ${r.execError.message}` };
  }
  if (o.timedOut) {
    return { command, exitCode: o.exitCode, durationMs: o.durationMs, excerpt: excerptOf(o.stdout || o.stderr), passed: false, reason: 'timed out' };
  }
  const check = checkExpectations(expects, { exitCode: o.exitCode, stdout: o.stdout });
  const excerpt = excerptOf(o.stdout.trim() !== '' ? o.stdout : o.stderr);
  return check.passed
    ? { command, exitCode: o.exitCode, durationMs: o.durationMs, excerpt, passed: true }
    : { command, exitCode: o.exitCode, durationMs: o.durationMs, excerpt, passed: false, ...(check.reason ? { reason: check.reason } : {}) };
}

/**
 * Committed now, durable with the next commit's fsync: every verification is followed by a state
 * change of its task (complete, release, block, or the next submit), whose durable commit covers
 * these rows too (the WAL is one log). Nothing waits on them alone.
 */
function recordVerifications(deps: GateDeps, input: VerifyInput, evidence: CriterionEvidence[]): void {
  const ts = deps.now();
  deps.db.immediateDeferred(() => {
    for (const e of evidence) {
      deps.db.run('INSERT INTO verifications (run_id, task_id, criterion, outcome, evidence, ts_ms) VALUES (?, ?, ?, ?, ?, ?)', [
        input.runId,
        input.taskId,
        e.criterion,
        e.outcome,
        JSON.stringify(e.commands),
        ts,
      ]);
    }
  });
}
