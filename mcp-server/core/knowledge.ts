// Reading the knowledge graph: an entity with its edges, and the lessons/retrospectives related
// to a task through shared entities (host, namespace, project, service, error signature, tag).
import { commandFacts, type EntityKind, type EntityRef } from './knowledge-extract.js';
import { relatedLessons, type RelatedLesson, type SharedRef } from './knowledge-related.js';
import type { Db } from './store.js';
import type { Task } from './task-types.js';
import type { ToolEnv } from '../../tools/types.js';

export interface EntityView {
  id: number;
  kind: string;
  name: string;
}

export interface EdgeView {
  kind: string;
  /** The entity on the other end. */
  other: { kind: string; name: string };
  runId: string | null;
  origin: string;
}

export interface EntityResult {
  entity: EntityView;
  outgoing: EdgeView[];
  incoming: EdgeView[];
  /** True when there were more edges than the limit. */
  truncated: boolean;
}

const EDGE_LIMIT = 500;

/** An entity with its edges in both directions; null when no such entity exists. */
export function knowledgeEntity(db: Db, kind: string, name: string, options: { limit?: number } = {}): EntityResult | null {
  const e = db.get<EntityView>('SELECT id, kind, name FROM entities WHERE kind = ? AND name = ?', [kind, name]);
  if (!e) return null;
  const limit = Math.max(1, Math.min(EDGE_LIMIT, Math.floor(options.limit ?? 200)));
  type Row = { kind: string; okind: string; oname: string; run_id: string | null; origin: string };
  const out = db.all<Row>(
    `SELECT e.kind, o.kind AS okind, o.name AS oname, e.run_id, e.origin FROM edges e JOIN entities o ON o.id = e.dst
      WHERE e.src = ? ORDER BY e.kind, o.kind, o.name, e.origin LIMIT ?`,
    [e.id, limit + 1],
  );
  const inc = db.all<Row>(
    `SELECT e.kind, o.kind AS okind, o.name AS oname, e.run_id, e.origin FROM edges e JOIN entities o ON o.id = e.src
      WHERE e.dst = ? ORDER BY e.kind, o.kind, o.name, e.origin LIMIT ?`,
    [e.id, limit + 1],
  );
  const view = (r: Row): EdgeView => ({ kind: r.kind, other: { kind: r.okind, name: r.oname }, runId: r.run_id, origin: r.origin });
  return {
    entity: e,
    outgoing: out.slice(0, limit).map(view),
    incoming: inc.slice(0, limit).map(view),
    truncated: out.length > limit || inc.length > limit,
  };
}

/** Entities find their namesakes by name alone (for "what touched X?"): every kind that has that name. */
export function entitiesNamed(db: Db, name: string, kinds?: readonly string[]): EntityView[] {
  const rows = db.all<EntityView>('SELECT id, kind, name FROM entities WHERE name = ? COLLATE NOCASE ORDER BY kind LIMIT 50', [name]);
  return kinds ? rows.filter((r) => kinds.includes(r.kind)) : rows;
}

/** How much a shared entity says about relatedness. Tools and agents are shared by everything: 0. */
export const SHARE_WEIGHT: Partial<Record<EntityKind, number>> = {
  error_signature: 5,
  host: 3,
  namespace: 3,
  compose_project: 3,
  service: 3,
  url_host: 3,
  kube_context: 1,
  secret_path: 2,
  file: 1,
  tag: 2,
};

export type { RelatedLesson } from './knowledge-related.js';

export interface RelatedRetro {
  retroId: string;
  file: string;
  runId: string;
  taskId: string;
  outcome: string | null;
  score: number;
  shared: string[];
}

export interface LessonsForResult {
  taskId: string | null;
  /** The task's own entities that were looked up. */
  entities: string[];
  lessons: RelatedLesson[];
  retros: RelatedRetro[];
}

export interface LessonsForOptions {
  limit?: number;
  /** Leave out this run (the run a retrospective is being written for). */
  excludeRunId?: string;
  env?: ToolEnv;
  /** False: lessons only (a retrospective needs no related retrospectives; they cost a walk over every related run). */
  retros?: boolean;
}

/** The task's entities: tags, what its commands touch, and the signatures its past runs failed with. */
function taskEntities(db: Db, task: Task | string, env?: ToolEnv): { taskId: string | null; refs: EntityRef[] } {
  const refs: EntityRef[] = [];
  let taskId: string | null;
  if (typeof task === 'string') {
    taskId = task;
    const rows = db.all<{ kind: EntityKind; name: string }>(
      `SELECT o.kind, o.name FROM entities t JOIN edges e ON e.src = t.id AND e.kind = 'touched' JOIN entities o ON o.id = e.dst
        WHERE t.kind = 'task' AND t.name = ?`,
      [task],
    );
    refs.push(...rows);
  } else {
    taskId = task.fm.id ?? null;
    for (const t of task.fm.tags) refs.push({ kind: 'tag', name: t.toLowerCase() });
    const items = [...task.preflight, ...task.steps, ...task.rollback, ...task.criteria.flatMap((c) => (c.kind === 'verify' ? c.items : []))];
    for (const i of items) {
      if (i.kind === 'command') refs.push(...commandFacts(i.text, env).entities);
      else if (i.kind === 'file') refs.push({ kind: 'file', name: i.path });
    }
  }
  if (taskId) {
    const rows = db.all<{ kind: EntityKind; name: string }>(
      `SELECT DISTINCT o.kind, o.name FROM entities t
         JOIN edges ro ON ro.dst = t.id AND ro.kind = 'run_of'
         JOIN edges e ON e.src = ro.src AND e.kind IN ('touched', 'failed_with')
         JOIN entities o ON o.id = e.dst
        WHERE t.kind = 'task' AND t.name = ?`,
      [taskId],
    );
    refs.push(...rows);
  }
  const seen = new Set<string>();
  return {
    taskId,
    refs: refs.filter((r) => {
      const k = `${r.kind}:${r.name}`;
      if (seen.has(k) || !(SHARE_WEIGHT[r.kind] ?? 0)) return false;
      seen.add(k);
      return true;
    }),
  };
}

/**
 * Lessons and retrospectives related to a task, ranked by the weight of the entities they share
 * (a shared error signature counts most), then by recency. Runs relate through what they touched
 * and failed with, and through their task's planned touches and tags. Lessons: see
 * knowledge-related.ts (found from the lessons' side, exact but for a documented bound).
 */
export function lessonsFor(db: Db, task: Task | string, options: LessonsForOptions = {}): LessonsForResult {
  const limit = Math.max(1, Math.min(100, Math.floor(options.limit ?? 10)));
  const { taskId, refs } = taskEntities(db, task, options.env);
  const found: SharedRef[] = [];
  for (const ref of refs) {
    const ent = db.get<{ id: number }>('SELECT id FROM entities WHERE kind = ? AND name = ?', [ref.kind, ref.name]);
    if (ent) found.push({ id: ent.id, label: `${ref.kind}:${ref.name}`, weight: SHARE_WEIGHT[ref.kind] ?? 0 });
  }
  const lessons = relatedLessons(db, found, {
    limit,
    // A lesson about a signature the task shares counts that signature twice: it is the point.
    signatureBonus: SHARE_WEIGHT.error_signature ?? 0,
    ...(options.excludeRunId !== undefined ? { excludeRunId: options.excludeRunId } : {}),
  });
  const retros = options.retros === false ? [] : relatedRetros(db, found, limit, options.excludeRunId);
  return { taskId, entities: refs.map((r) => `${r.kind}:${r.name}`), lessons, retros };
}

/** Runs that share each entity (the newest 500 per entity and path), with their scores. */
function scoreRuns(db: Db, refs: readonly SharedRef[], excludeRunId: string | undefined): Map<string, { score: number; shared: Set<string> }> {
  const score = new Map<string, { score: number; shared: Set<string> }>();
  const bump = (runId: string, ref: SharedRef): void => {
    if (runId === excludeRunId) return;
    const s = score.get(runId) ?? { score: 0, shared: new Set<string>() };
    if (!s.shared.has(ref.label)) {
      s.shared.add(ref.label);
      s.score += ref.weight;
    }
    score.set(runId, s);
  };
  for (const ref of refs) {
    // Runs that touched / failed with it, and runs of tasks that plan to touch it (bounded fan-out).
    const runs = db.all<{ run: string }>(
      `SELECT s.name AS run FROM edges e JOIN entities s ON s.id = e.src AND s.kind = 'run'
        WHERE e.dst = ? AND e.kind IN ('touched', 'failed_with') ORDER BY e.id DESC LIMIT 500`,
      [ref.id],
    );
    for (const r of runs) bump(r.run, ref);
    const viaTask = db.all<{ run: string }>(
      `SELECT r.id AS run FROM edges e JOIN entities s ON s.id = e.src AND s.kind = 'task'
         JOIN runs r ON r.task_id = s.name
        WHERE e.dst = ? AND e.kind = 'touched' ORDER BY r.started_ms DESC LIMIT 500`,
      [ref.id],
    );
    for (const r of viaTask) bump(r.run, ref);
  }
  return score;
}

/** Retrospectives of the runs that share the task's entities, best first. */
function relatedRetros(db: Db, refs: readonly SharedRef[], limit: number, excludeRunId: string | undefined): RelatedRetro[] {
  const score = scoreRuns(db, refs, excludeRunId);
  const runIds = [...score.keys()];
  const retros: RelatedRetro[] = [];
  for (let i = 0; i < runIds.length; i += 400) {
    const chunk = runIds.slice(i, i + 400);
    const marks = chunk.map(() => '?').join(',');
    const rs = db.all<{ id: string; file: string; run_id: string; task_id: string; outcome: string | null }>(
      `SELECT id, file, run_id, task_id, outcome FROM retrospectives WHERE run_id IN (${marks})`,
      chunk,
    );
    for (const r of rs) {
      const s = score.get(r.run_id);
      if (s) retros.push({ retroId: r.id, file: r.file, runId: r.run_id, taskId: r.task_id, outcome: r.outcome, score: s.score, shared: [...s.shared].sort() });
    }
  }
  retros.sort((a, b) => b.score - a.score || (a.retroId < b.retroId ? 1 : -1));
  return retros.slice(0, limit);
}
