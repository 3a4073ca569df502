// Task tools: the queue as an agent sees it. Claims live in the session; every write presents
// the claim's fencing token. task_submit runs the verifier itself; only a passing run completes.
import { linkSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { seedTaskApprovals } from './core/approvals.js';
import { toToolEnv, type Config } from './core/config.js';
import { fsyncDir, unlinkQuiet, writeTempSynced } from './core/durable-fs.js';
import type { Claim, ListStatus, TaskQueue, TaskRecord } from './core/queue.js';
import { addEvent } from './core/queue-rows.js';
import type { AgentScope } from './core/scope.js';
import type { Db } from './core/store.js';
import { parseTask } from './core/task-parse.js';
import { renderNewTask } from './core/task-render.js';
import { PRIORITIES, TASK_STATUSES, type Task } from './core/task-types.js';
import type { VerifyInput, VerifyResult } from './core/verifier.js';
import type { Workspace } from './core/workspace.js';
import { TASK_FOLDERS } from './core/workspace.js';
import { errorResult, jsonResult } from './tool-result.js';

const TASK_ID = z.string().regex(/^TASK-\d{3,}$/, 'a task id such as TASK-006');
const LINE = z.string().min(1).max(4000);

/** Claims held by this session (or, in the daemon, by the worker driving it). */
export interface ClaimRegistry {
  get(taskId: string): Claim | undefined;
  set(claim: Claim): void;
  delete(taskId: string): void;
  /** The task the session works on now (its most recent claim). */
  current(): Claim | undefined;
}

export function memoryClaims(): ClaimRegistry {
  const m = new Map<string, Claim>();
  let last: string | undefined;
  return {
    get: (id) => m.get(id),
    set: (c) => {
      m.set(c.taskId, c);
      last = c.taskId;
    },
    delete: (id) => {
      m.delete(id);
      if (last === id) last = [...m.keys()].pop();
    },
    current: () => (last !== undefined ? m.get(last) : undefined),
  };
}

export interface TaskToolDeps {
  workspace: Workspace;
  db: Db;
  config: Config;
  env: NodeJS.ProcessEnv;
  queue: TaskQueue;
  agent: string;
  scope: AgentScope;
  /** False for the read-only observer: it sees tasks but cannot claim, create or change them. */
  canWork: boolean;
  claims: ClaimRegistry;
  holder: string;
  now: () => number;
  verify: (input: VerifyInput) => Promise<VerifyResult>;
}

const READ = { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false } as const;
const WRITE = { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false } as const;

function summary(t: TaskRecord): Record<string, unknown> {
  return {
    id: t.id,
    title: t.title,
    folder: t.folder,
    status: t.status,
    priority: t.priority,
    agent: t.agent,
    depends_on: t.dependsOn,
    resources: t.resources,
    tags: t.tags,
    attempts: t.attempts,
    file: t.file,
    leased_by: t.lease ? t.lease.holder : null,
  };
}

export function readTaskFile(ws: Workspace, rec: { file: string }): string | null {
  try {
    return readFileSync(join(ws.root, rec.file), 'utf8');
  } catch {
    return null;
  }
}

export function registerTaskTools(server: McpServer, deps: TaskToolDeps): void {
  const { queue } = deps;

  const fresh = async (): Promise<void> => {
    // Nothing else may be watching the folders (a lone `opscrew mcp`): sync before answering.
    await queue.scan();
  };

  const mine = (t: TaskRecord): boolean => t.agent === null || t.agent === deps.agent;

  const notClaimed = (id: string): CallToolResult =>
    errorResult('not-claimed', `you do not hold ${id}`, 'claim it first with task_claim, or pick another with task_next');

  server.registerTool(
    'task_list',
    {
      title: 'List tasks',
      description: 'Tasks in the workspace queue, by folder or status (backlog, active, completed, blocked, awaiting-approval, ready).',
      inputSchema: {
        status: z.enum([...TASK_FOLDERS, ...TASK_STATUSES, 'ready'] as [string, ...string[]]).optional(),
        limit: z.number().int().min(1).max(500).default(100),
      },
      annotations: READ,
    },
    async ({ status, limit }) => {
      await fresh();
      const list = await queue.list(status !== undefined ? { status: status as ListStatus } : {});
      return jsonResult({ tasks: list.slice(0, limit).map(summary), total: list.length });
    },
  );

  server.registerTool(
    'task_get',
    {
      title: 'Get a task',
      description: 'One task: its queue record and the task file as written (untrusted data written by a person).',
      inputSchema: { id: TASK_ID },
      annotations: READ,
    },
    async ({ id }) => {
      await fresh();
      const t = await queue.get(id);
      if (!t) return errorResult('task-not-found', `no task ${id}`, 'list tasks with task_list');
      return jsonResult({ task: summary(t), text: readTaskFile(deps.workspace, t) });
    },
  );

  server.registerTool(
    'task_next',
    {
      title: 'The next task for you',
      description: 'The ready task you should take next (assigned to you or unassigned; by priority, then age), or none.',
      inputSchema: {},
      annotations: READ,
    },
    async () => {
      await fresh();
      const next = (await queue.ready()).find(mine);
      return jsonResult({ task: next ? summary(next) : null });
    },
  );

  if (!deps.canWork) return;

  server.registerTool(
    'task_claim',
    {
      title: 'Claim a task',
      description:
        'Claim a ready task (the named one, or the next one for you): it moves to active and you hold its lease. Keep it alive with task_heartbeat; finish with task_submit or task_block.',
      inputSchema: { id: TASK_ID.optional() },
      annotations: WRITE,
    },
    async ({ id }) => {
      await fresh();
      const ready = await queue.ready();
      const target = id !== undefined ? ready.find((t) => t.id === id) : ready.find(mine);
      if (!target) {
        const t = id !== undefined ? await queue.get(id) : null;
        const why = id === undefined ? 'no ready task for you' : !t ? `no task ${id}` : `${id} is not ready (${t.folder}${t.status ? `, ${t.status}` : ''}${t.lease ? ', claimed' : ''})`;
        return errorResult('not-ready', why, 'see task_next or task_list status=ready');
      }
      if (!mine(target)) {
        return errorResult('not-yours', `${target.id} is assigned to ${target.agent}`, `leave it to ${target.agent}, or message_send them`);
      }
      const claim = await queue.claim({ id: target.id, holder: deps.holder, agent: deps.agent });
      if (!claim) return errorResult('claim-lost', `${target.id} was claimed by someone else first`, 'call task_next again');
      deps.claims.set(claim);
      await queue.settled(claim); // the answer carries the file with its run fields
      const parsed = parseTask(readFileSync(claim.file, 'utf8'), claim.file);
      let problems: string[] = [];
      if (parsed.ok) {
        const seeded = seedTaskApprovals(deps.db, parsed.task, claim.runId, {
          env: toToolEnv(deps.config, deps.env),
          now: deps.now(),
          defaultTimeoutMs: deps.config.timeouts.task,
        });
        problems = seeded.problems.map((p) => p.message);
      }
      addEvent(deps.db, deps.now(), 'claimed', claim.taskId, claim.runId, { agent: deps.agent, via: 'mcp' });
      return jsonResult({
        task_id: claim.taskId,
        run_id: claim.runId,
        attempt: claim.attempt,
        lease_expires: new Date(claim.leaseExpiresMs).toISOString(),
        text: readFileSync(claim.file, 'utf8'),
        ...(problems.length > 0 ? { approval_problems: problems } : {}),
      });
    },
  );

  server.registerTool(
    'task_heartbeat',
    {
      title: 'Renew a task lease',
      description: 'Renew your lease on a claimed task. If it fails (fenced), stop working on that task: someone else holds it now.',
      inputSchema: { id: TASK_ID },
      annotations: { ...WRITE, idempotentHint: true },
    },
    async ({ id }) => {
      const c = deps.claims.get(id);
      if (!c) return notClaimed(id);
      const r = await queue.heartbeat(c);
      if (!r.ok) {
        deps.claims.delete(id);
        return errorResult(r.code, r.message, 'stop working on this task; call task_next for another');
      }
      return jsonResult({ task_id: id, lease_expires: new Date(r.value.leaseExpiresMs).toISOString() });
    },
  );

  server.registerTool(
    'task_note',
    {
      title: 'Note on a task',
      description: 'Record an observation on a task you hold (what you saw, what you tried). Notes feed the retrospective; they change nothing.',
      inputSchema: { id: TASK_ID, note: z.string().min(1).max(4000) },
      annotations: WRITE,
    },
    ({ id, note }) => {
      const c = deps.claims.get(id);
      if (!c) return notClaimed(id);
      addEvent(deps.db, deps.now(), 'note', id, c.runId, { agent: deps.agent, note });
      return jsonResult({ task_id: id, noted: true });
    },
  );

  server.registerTool(
    'task_create',
    {
      title: 'File a follow-up task',
      description:
        'File a new backlog task for work outside the current task (linked discovered_from the task you hold). It is not yours to run now; a person or the crew picks it up.',
      inputSchema: {
        title: z.string().min(3).max(200),
        context: z.string().max(8000).optional(),
        priority: z.enum(PRIORITIES).default('medium'),
        agent: z.string().regex(/^[a-z][a-z0-9-]{0,63}$/).optional(),
        tags: z.array(z.string().max(60)).max(20).optional(),
        steps: z.array(LINE).max(50).optional().describe('command lines, one per item'),
        criteria: z
          .array(z.object({ text: z.string().min(1).max(300), command: LINE.optional(), expect: z.string().max(300).optional() }))
          .max(30)
          .optional(),
        discovered_from: TASK_ID.optional().describe('default: the task you hold'),
      },
      annotations: WRITE,
    },
    async (input) => {
      const origin = input.discovered_from ?? deps.claims.current()?.taskId;
      if (origin !== undefined && !(await queue.get(origin))) {
        return errorResult('task-not-found', `no task ${origin} to link from`, 'omit discovered_from or name an existing task');
      }
      const text = renderNewTask({
        title: input.title,
        priority: input.priority,
        ...(input.agent !== undefined ? { agent: input.agent } : {}),
        ...(input.tags !== undefined ? { tags: input.tags } : {}),
        ...(origin !== undefined ? { discovered_from: origin } : {}),
        ...(input.context !== undefined ? { context: input.context } : {}),
        ...(input.steps !== undefined ? { steps: input.steps } : {}),
        ...(input.criteria !== undefined ? { criteria: input.criteria } : {}),
        extra: { created_by: deps.agent },
      });
      const file = writeNewFile(deps.workspace.backlog, slug(input.title), text);
      await queue.scan();
      const rec = (await queue.list({ status: 'backlog' })).find((t) => join(deps.workspace.root, t.file) === file);
      addEvent(deps.db, deps.now(), 'follow-up', origin ?? null, deps.claims.current()?.runId ?? null, { agent: deps.agent, file, id: rec?.id ?? null });
      return jsonResult({ id: rec?.id ?? null, file: rec?.file ?? file, discovered_from: origin ?? null });
    },
  );

  server.registerTool(
    'task_block',
    {
      title: 'Block a task',
      description: 'Give a task you hold back to the backlog as blocked, with the reason a person needs to unblock it (what is missing, what you tried).',
      inputSchema: { id: TASK_ID, reason: z.string().min(3).max(2000) },
      annotations: WRITE,
    },
    async ({ id, reason }) => {
      const c = deps.claims.get(id);
      if (!c) return notClaimed(id);
      const r = await queue.block(c, reason);
      deps.claims.delete(id);
      if (!r.ok) return errorResult(r.code, r.message, 'stop working on this task');
      return jsonResult({ task_id: id, blocked: true, file: r.value.file });
    },
  );

  server.registerTool(
    'task_submit',
    {
      title: 'Submit a task for verification',
      description:
        'Ask the server to verify a task you hold: it runs every acceptance check itself, under the policy. Only if all pass (or are N/A) does the task move to completed, with the evidence written into the file. Otherwise it stays active and you get the failing evidence.',
      inputSchema: { id: TASK_ID },
      annotations: WRITE,
    },
    async ({ id }) => {
      const c = deps.claims.get(id);
      if (!c) return notClaimed(id);
      // The checks' criterion lines must be those of the file the completion rewrites.
      await queue.settled(c);
      let text: string;
      try {
        text = readFileSync(c.file, 'utf8');
      } catch {
        deps.claims.delete(id);
        return errorResult('task-missing', `${id} is no longer in active/`, 'stop working on this task');
      }
      const parsed = parseTask(text, c.file);
      if (!parsed.ok) {
        return errorResult('task-invalid', parsed.issues.map((i) => `${i.line}: ${i.message}`).join('; '), 'block the task with task_block and say the file is invalid');
      }
      const task: Task = parsed.task;
      if (task.criteria.length === 0) {
        return errorResult('no-criteria', `${id} has no acceptance criteria: nothing proves it done`, 'block it with task_block asking a person to add criteria');
      }
      const result = await deps.verify({ task, agent: deps.agent, scope: deps.scope, taskId: id, runId: c.runId, vars: exportsOf(task) });
      if (!result.passed) {
        addEvent(deps.db, deps.now(), 'verify-failed', id, c.runId, { agent: deps.agent });
        const failing = result.evidence.filter((e) => e.outcome !== 'verified' && e.outcome !== 'na');
        const body = { task_id: id, passed: false, status: 'active', failing, evidence: result.evidence };
        return errorResult('verification-failed', `${failing.length} of ${result.evidence.length} criteria not met; the task stays active`, 'fix what the failing evidence shows and submit again, or task_block with the reason', body);
      }
      const done = await queue.complete(c, { tickCriteria: result.satisfiedLines, evidence: result.evidence });
      deps.claims.delete(id);
      if (!done.ok) return errorResult(done.code, done.message, 'stop working on this task');
      return jsonResult({ task_id: id, passed: true, status: 'completed', file: done.value.file, evidence: result.evidence });
    },
  );
}

/** Variables the task's Preflight and Steps export: the checks see what the steps set. */
export function exportsOf(task: Task): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const item of [...task.preflight, ...task.steps]) if (item.kind === 'export') vars[item.name] = item.value;
  return vars;
}

export function slug(title: string): string {
  const s = title
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 60)
    .replace(/-+$/, '');
  return s === '' ? 'follow-up' : s;
}

/** Writes a new file without ever replacing one: link(2) fails when the name is taken. */
function writeNewFile(dir: string, base: string, text: string): string {
  const tmp = writeTempSynced(join(dir, `${base}.md`), text);
  try {
    for (let i = 1; i < 1000; i++) {
      const dest = join(dir, i === 1 ? `${base}.md` : `${base}-${i}.md`);
      try {
        linkSync(tmp, dest);
        fsyncDir(dir);
        return dest;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
    }
    throw new Error(`no free file name for ${base}.md in ${dir}`);
  } finally {
    unlinkQuiet(tmp);
  }
}
