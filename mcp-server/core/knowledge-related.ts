// Ranking the lessons related to a task, starting from the lessons rather than from every run that
// shares an entity with it: only runs that have lessons can contribute, and an entity shared by
// most of the history (one URL host every task calls) would otherwise pull in all of it.
//
// Ranking: score (sum of the weights of the shared entities, plus a bonus when the lesson is about
// a shared error signature), then newest first, then lowest lesson id. A run shares an entity when
// it touched / failed with it, or when its task plans to touch it.
//
// Candidates come two ways:
// - entities with at most HOT_FANOUT edges ("rare": error signatures, a namespace...) are walked
//   from the entity to the lesson-bearing runs that share it, all of them, however old;
// - lessons related only through "hot" entities (more edges than that) are looked for newest
//   first, among the newest HOT_WALK lessons, stopping as soon as `limit` of them reach the best
//   score such a lesson can have (no older one can outrank them).
// So the result is the exact ranking over all lessons, with one bound: a lesson that shares nothing
// but hot entities is only found among the newest HOT_WALK lessons (the bound before this was the
// newest 500 runs per entity, whatever else they shared). Such a lesson scores only through
// entities much of the history shares, and at equal scores the older one ranks lower.
import type { Db } from './store.js';

/** An entity of the task, resolved to its row. `label` is `kind:name`. */
export interface SharedRef {
  id: number;
  label: string;
  weight: number;
}

export interface RelatedLesson {
  lessonId: number;
  text: string;
  rule: string;
  signature: string | null;
  runId: string;
  taskId: string;
  retroId: string | null;
  retroFile: string | null;
  score: number;
  /** The shared entities that made it related, `kind:name`. */
  shared: string[];
  createdMs: number;
}

/** Entities with more edges than this are "hot": reached from the lessons' side only. */
export const HOT_FANOUT = 100;
/** How many of the newest lessons are looked at for those related only through hot entities. */
export const HOT_WALK = 500;
/** Walk pages grow from the first (enough for `limit` hits when every lesson is related) to this. */
const MAX_PAGE = 128;

/** What ranking needs of a lesson; the rest of the row is read for the winners only. */
interface LessonKey {
  id: number;
  run_id: string;
  signature: string | null;
  created_ms: number;
  /** Entity ids the run touched / failed with, and those its task plans to touch (comma lists). */
  run_dsts: string | null;
  task_dsts: string | null;
}

interface Scored {
  key: LessonKey;
  shared: readonly SharedRef[];
  score: number;
}

interface RankContext {
  byId: ReadonlyMap<number, SharedRef>;
  limit: number;
  signatureBonus: number;
}

// A lesson with what its run shares, in one statement: the run's own edges and its task's planned touches.
const KEY_COLS = `l.id, l.run_id, l.signature, l.created_ms,
  (SELECT group_concat(e.dst) FROM entities s JOIN edges e ON e.src = s.id AND e.kind IN ('touched', 'failed_with')
    WHERE s.kind = 'run' AND s.name = l.run_id) AS run_dsts,
  (SELECT group_concat(e.dst) FROM runs r JOIN entities t ON t.kind = 'task' AND t.name = r.task_id JOIN edges e ON e.src = t.id AND e.kind = 'touched'
    WHERE r.id = l.run_id) AS task_dsts`;

/** True when more than HOT_FANOUT edges point at the entity (counted no further than that). */
function isHot(db: Db, id: number): boolean {
  const n = db.get<{ n: number }>(
    `SELECT count(*) AS n FROM (SELECT 1 FROM edges WHERE dst = ? AND kind IN ('touched', 'failed_with') LIMIT ?)`,
    [id, HOT_FANOUT + 1],
  )?.n;
  return (n ?? 0) > HOT_FANOUT;
}

/** Runs with lessons that touched / failed with the entity, or whose task plans to touch it. */
function lessonRunsSharing(db: Db, id: number): string[] {
  return db
    .all<{ run: string }>(
      `SELECT s.name AS run FROM edges e JOIN entities s ON s.id = e.src AND s.kind = 'run'
        WHERE e.dst = ? AND e.kind IN ('touched', 'failed_with') AND EXISTS (SELECT 1 FROM lessons l WHERE l.run_id = s.name)
       UNION
       SELECT r.id AS run FROM edges e JOIN entities s ON s.id = e.src AND s.kind = 'task' JOIN runs r ON r.task_id = s.name
        WHERE e.dst = ? AND e.kind = 'touched' AND EXISTS (SELECT 1 FROM lessons l WHERE l.run_id = r.id)`,
      [id, id],
    )
    .map((r) => r.run);
}

/** The task's entities among those the lesson's run shares (each once). */
function sharedOf(key: LessonKey, ctx: RankContext): SharedRef[] {
  const out = new Set<SharedRef>();
  for (const list of [key.run_dsts, key.task_dsts]) {
    if (!list) continue;
    for (const id of list.split(',')) {
      const ref = ctx.byId.get(Number(id));
      if (ref) out.add(ref);
    }
  }
  return [...out];
}

function score(key: LessonKey, shared: readonly SharedRef[], ctx: RankContext): Scored {
  const base = shared.reduce((sum, s) => sum + s.weight, 0);
  const bonus = key.signature !== null && shared.some((s) => s.label === `error_signature:${key.signature}`) ? ctx.signatureBonus : 0;
  return { key, shared, score: base + bonus };
}

/** Best first: score, then newest, then lowest id. */
function compareScored(a: Scored, b: Scored): number {
  return b.score - a.score || b.key.created_ms - a.key.created_ms || a.key.id - b.key.id;
}

/**
 * The newest lessons, in ranking tie-break order, that share only hot entities with the task;
 * stops once `limit` of them have the best score possible for such a lesson.
 */
function hotOnly(db: Db, hot: readonly SharedRef[], ctx: RankContext, skip: ReadonlySet<string>): Scored[] {
  const best = hot.reduce((sum, s) => sum + s.weight, 0) + (hot.some((s) => s.label.startsWith('error_signature:')) ? ctx.signatureBonus : 0);
  const out: Scored[] = [];
  let atBest = 0;
  let seen = 0;
  let page = Math.min(MAX_PAGE, ctx.limit + 3);
  let after: LessonKey | null = null;
  while (seen < HOT_WALK) {
    const size = Math.min(page, HOT_WALK - seen);
    // Keyset pages over the lessons_recent index: newest first, then lowest id.
    const rows: LessonKey[] = after
      ? db.all<LessonKey>(
          `SELECT ${KEY_COLS} FROM lessons l WHERE l.created_ms <= ? AND NOT (l.created_ms = ? AND l.id <= ?)
            ORDER BY l.created_ms DESC, l.id LIMIT ?`,
          [after.created_ms, after.created_ms, after.id, size],
        )
      : db.all<LessonKey>(`SELECT ${KEY_COLS} FROM lessons l ORDER BY l.created_ms DESC, l.id LIMIT ?`, [size]);
    seen += rows.length;
    for (const key of rows) {
      if (skip.has(key.run_id)) continue;
      const shared = sharedOf(key, ctx);
      if (shared.length === 0) continue;
      const s = score(key, shared, ctx);
      out.push(s);
      // Every later lesson ranks after this one at equal score: `limit` at the best score settle it.
      if (s.score >= best && ++atBest >= ctx.limit) return out;
    }
    const last = rows[rows.length - 1];
    if (!last || rows.length < size) break;
    after = last;
    page = Math.min(MAX_PAGE, page * 2);
  }
  return out;
}

function hydrate(db: Db, s: Scored): RelatedLesson | null {
  const l = db.get<{ text: string; rule: string; task_id: string; retro_id: string | null; file: string | null }>(
    'SELECT l.text, l.rule, l.task_id, l.retro_id, r.file FROM lessons l LEFT JOIN retrospectives r ON r.id = l.retro_id WHERE l.id = ?',
    [s.key.id],
  );
  if (!l) return null;
  return {
    lessonId: s.key.id,
    text: l.text,
    rule: l.rule,
    signature: s.key.signature,
    runId: s.key.run_id,
    taskId: l.task_id,
    retroId: l.retro_id,
    retroFile: l.file,
    score: s.score,
    shared: s.shared.map((r) => r.label).sort(),
    createdMs: s.key.created_ms,
  };
}

export interface RelatedLessonsOptions {
  limit: number;
  /** The extra weight of a lesson about a shared error signature (it is the point of the lesson). */
  signatureBonus: number;
  excludeRunId?: string;
}

/** The `limit` best lessons of runs (other than `excludeRunId`) that share any of `refs`. */
export function relatedLessons(db: Db, refs: readonly SharedRef[], options: RelatedLessonsOptions): RelatedLesson[] {
  // No lessons yet (a young or trouble-free history): nothing to rank.
  if (refs.length === 0 || !db.get('SELECT 1 AS x FROM lessons LIMIT 1')) return [];
  const ctx: RankContext = { byId: new Map(refs.map((r) => [r.id, r])), limit: options.limit, signatureBonus: options.signatureBonus };
  const hot: SharedRef[] = [];
  const runs = new Set<string>();
  for (const ref of refs) {
    if (isHot(db, ref.id)) hot.push(ref);
    else for (const run of lessonRunsSharing(db, ref.id)) runs.add(run);
  }
  if (options.excludeRunId !== undefined) runs.delete(options.excludeRunId);
  const scored: Scored[] = [];
  for (const run of runs) {
    for (const key of db.all<LessonKey>(`SELECT ${KEY_COLS} FROM lessons l WHERE l.run_id = ?`, [run])) scored.push(score(key, sharedOf(key, ctx), ctx));
  }
  if (hot.length > 0) {
    // Runs already scored (and the excluded one) are skipped: a rare entity found them, or they must not count.
    const skip = new Set(runs);
    if (options.excludeRunId !== undefined) skip.add(options.excludeRunId);
    scored.push(...hotOnly(db, hot, ctx, skip));
  }
  const out: RelatedLesson[] = [];
  for (const s of scored.sort(compareScored).slice(0, options.limit)) {
    const l = hydrate(db, s);
    if (l) out.push(l);
  }
  return out;
}
