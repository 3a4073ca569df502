// The front matter of a task file as a zod schema, one field at a time so every problem can be
// reported against the line of the key that caused it, with a fix a person can act on.
import { z } from 'zod';
import type { Issue } from './errors.js';
import { parseDuration } from './duration.js';
import { PRIORITIES, TASK_STATUSES, type Priority, type TaskFrontMatter, type TaskStatus } from './task-types.js';

export const TASK_ID_RE = /^TASK-\d{3,}$/;

/** Fields the runner writes back; authors may delete them (e.g. `status: blocked` to unblock). */
export const RUNNER_OWNED_FIELDS = [
  'status',
  'blocked_reason',
  'attempts',
  'run_id',
  'created_at',
  'updated_at',
  'started_at',
  'completed_at',
  'blocked_at',
] as const;

/** Longest whole-task timeout we accept: a week. Longer is almost surely a unit mistake. */
const MAX_TIMEOUT_MS = 7 * 24 * 3_600_000;
const MAX_ATTEMPTS = 100;

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return String(v);
}

const text = (what: string) =>
  z
    .union([z.string(), z.number(), z.boolean()], { error: (iss) => `${show(iss.input)} is not ${what}` })
    .transform((v) => String(v).trim())
    .refine((v) => v !== '', { error: `is empty; expected ${what}` });

const taskId = z
  .string({ error: (iss) => `${show(iss.input)} is not a task id` })
  .trim()
  .regex(TASK_ID_RE, { error: (iss) => `${show(iss.input)} is not a task id` });

/** Lists accept `[a, b]`, block lists, or (normalized) one string; `split` also splits it on commas. */
const list = (item: z.ZodType<string>, split: boolean) =>
  z.preprocess(
    (v) => (typeof v === 'string' ? (split ? v.split(',').map((s) => s.trim()).filter((s) => s !== '') : [v]) : v),
    z.array(item, { error: (iss) => `${show(iss.input)} is not a list` }),
  );

interface FieldSpec {
  schema: z.ZodType;
  fix: string;
}

const FIELDS: Record<string, FieldSpec> = {
  id: { schema: taskId, fix: 'write TASK- and at least three digits (TASK-007), or delete the line to have one assigned' },
  title: { schema: text('a title'), fix: 'write a one-line title, or delete the line to use the first `# heading`' },
  priority: {
    schema: z
      .string({ error: (iss) => `${show(iss.input)} is not a priority` })
      .transform((s) => s.trim().toLowerCase())
      .refine((s) => (PRIORITIES as readonly string[]).includes(s), { error: (iss) => `${show(iss.input)} is not a priority` }),
    fix: `use one of ${PRIORITIES.join(', ')}`,
  },
  agent: { schema: text('an agent name'), fix: 'write the name of a specialist (e.g. k8s-specialist), or delete the line to route by tags' },
  tags: { schema: list(text('a tag'), true), fix: 'write tags as a list: `tags: [kubernetes, web]`' },
  depends_on: { schema: list(taskId, true), fix: 'list task ids: `depends_on: [TASK-005, TASK-012]`' },
  resources: { schema: list(text('a resource name'), true), fix: 'list resource names: `resources: [k8s:staging/orders]`' },
  approve: { schema: list(text('a command line'), false), fix: 'list exact command lines, one per `- ` item' },
  timeout: {
    schema: z
      .string({ error: (iss) => `${show(iss.input)} has no unit` })
      .transform((s, ctx) => {
        const ms = parseDuration(s);
        if (ms === null || ms <= 0) {
          ctx.addIssue({ code: 'custom', message: `${show(s)} is not a duration` });
          return z.NEVER;
        }
        if (ms > MAX_TIMEOUT_MS) {
          ctx.addIssue({ code: 'custom', message: `${show(s)} is longer than 7 days` });
          return z.NEVER;
        }
        return ms;
      }),
    fix: 'write a number with a unit: 90s, 30m, 2h, 1h30m',
  },
  max_attempts: {
    schema: z
      .number({ error: (iss) => `${show(iss.input)} is not a number` })
      .int({ error: (iss) => `${show(iss.input)} is not a whole number` })
      .min(1, { error: 'must be at least 1' })
      .max(MAX_ATTEMPTS, { error: `must be at most ${MAX_ATTEMPTS}` }),
    fix: 'write a whole number of attempts, e.g. `max_attempts: 2`',
  },
  status: {
    schema: z
      .string({ error: (iss) => `${show(iss.input)} is not a task status` })
      .refine((s) => (TASK_STATUSES as readonly string[]).includes(s), { error: (iss) => `${show(iss.input)} is not a task status` }),
    fix: `the runner owns this field (${TASK_STATUSES.join(', ')}); delete the line to put the task back in the queue`,
  },
  blocked_reason: { schema: text('a reason'), fix: 'the runner owns this field; delete the line' },
  attempts: {
    schema: z
      .number({ error: (iss) => `${show(iss.input)} is not a number` })
      .int({ error: 'is not a whole number' })
      .min(0, { error: 'must not be negative' }),
    fix: 'the runner owns this field; delete the line',
  },
  run_id: { schema: text('a run id'), fix: 'the runner owns this field; delete the line' },
  discovered_from: { schema: taskId, fix: 'write the id of the task this one was found in, e.g. TASK-006' },
  created_at: { schema: text('a timestamp'), fix: 'write an ISO timestamp, e.g. 2025-01-31T12:00:00Z' },
  updated_at: { schema: text('a timestamp'), fix: 'the runner owns this field; delete the line' },
  started_at: { schema: text('a timestamp'), fix: 'the runner owns this field; delete the line' },
  completed_at: { schema: text('a timestamp'), fix: 'the runner owns this field; delete the line' },
  blocked_at: { schema: text('a timestamp'), fix: 'the runner owns this field; delete the line' },
};

/** Every front-matter key the schema understands. Others are kept in `extra`. */
export const KNOWN_FIELDS: readonly string[] = Object.keys(FIELDS);

/** The whole front matter as one zod schema (for callers that build front matter from other input). */
export const frontMatterSchema = z
  .object(Object.fromEntries(Object.entries(FIELDS).map(([k, spec]) => [k, spec.schema.optional()])))
  .loose();

/** Common misspellings and near-misses of known keys, so a typo is a warning and not silent. */
const ALIASES: Record<string, string> = {
  dependencies: 'depends_on',
  'depends-on': 'depends_on',
  dependsOn: 'depends_on',
  depends: 'depends_on',
  requires: 'depends_on',
  blocked_by: 'depends_on',
  tag: 'tags',
  labels: 'tags',
  resource: 'resources',
  assignee: 'agent',
  owner: 'agent',
  specialist: 'agent',
  'max-attempts': 'max_attempts',
  maxAttempts: 'max_attempts',
  retries: 'max_attempts',
  approvals: 'approve',
  approved: 'approve',
  prio: 'priority',
  name: 'title',
};

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2) return 3;
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0] ?? 0;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j] ?? 0;
      prev[j] = Math.min(up + 1, (prev[j - 1] ?? 0) + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length] ?? 3;
}

function suggest(key: string): string | undefined {
  const alias = Object.hasOwn(ALIASES, key) ? ALIASES[key] : undefined;
  if (alias) return alias;
  const lower = key.toLowerCase();
  if (Object.hasOwn(FIELDS, lower)) return lower;
  return KNOWN_FIELDS.find((k) => k.length > 3 && editDistance(lower, k) <= 2);
}

export interface FrontMatterCheck {
  fm: TaskFrontMatter;
  /** Errors: the file is invalid. */
  issues: Issue[];
  /** Problems that do not stop the task (e.g. an unknown key that looks like a typo). */
  warnings: Issue[];
}

/**
 * Validate parsed front-matter data. `keyLines`/`itemLines` give absolute 1-based lines for keys
 * and list items so each issue points at the offending line. A `null` value counts as absent.
 */
export function validateFrontMatter(
  data: Record<string, unknown>,
  file: string,
  keyLines: Record<string, number> = {},
  itemLines: Record<string, number[]> = {},
): FrontMatterCheck {
  const issues: Issue[] = [];
  const warnings: Issue[] = [];
  const fm: TaskFrontMatter = { priority: 'medium', tags: [], depends_on: [], resources: [], approve: [], extra: {} };
  const out = fm as unknown as Record<string, unknown>;
  for (const [key, value] of Object.entries(data)) {
    // Own properties only: a key named `constructor` or `__proto__` is just an unknown key.
    const line = Object.hasOwn(keyLines, key) ? (keyLines[key] ?? 0) : 0;
    const spec = Object.hasOwn(FIELDS, key) ? FIELDS[key] : undefined;
    if (!spec) {
      Object.defineProperty(fm.extra, key, { value, enumerable: true, writable: true, configurable: true });
      const hint = suggest(key);
      if (hint) {
        warnings.push({ file, line, field: key, message: `unknown field (kept as is); did you mean \`${hint}\`?`, fix: `rename it to \`${hint}\`` });
      }
      continue;
    }
    if (value === null || value === undefined) continue;
    const r = spec.schema.safeParse(value);
    if (!r.success) {
      for (const iss of r.error.issues.slice(0, 5)) {
        const idx = typeof iss.path[0] === 'number' ? iss.path[0] : undefined;
        const itemLine = idx === undefined ? undefined : itemLines[key]?.[idx];
        issues.push({
          file,
          line: itemLine ?? line,
          field: idx === undefined ? key : `${key}[${idx}]`,
          message: iss.message,
          fix: spec.fix,
        });
      }
      continue;
    }
    const target = key === 'timeout' ? 'timeout_ms' : key;
    out[target] = r.data;
  }
  if (fm.id && fm.depends_on.includes(fm.id)) {
    issues.push({
      file,
      line: keyLines.depends_on ?? 0,
      field: 'depends_on',
      message: `the task depends on itself (${fm.id})`,
      fix: `remove ${fm.id} from depends_on`,
    });
  }
  fm.depends_on = [...new Set(fm.depends_on)];
  fm.tags = [...new Set(fm.tags)];
  fm.resources = [...new Set(fm.resources)];
  return { fm, issues, warnings };
}

/** Type guards for callers that hold raw strings. */
export function isPriority(v: unknown): v is Priority {
  return typeof v === 'string' && (PRIORITIES as readonly string[]).includes(v);
}
export function isTaskStatus(v: unknown): v is TaskStatus {
  return typeof v === 'string' && (TASK_STATUSES as readonly string[]).includes(v);
}
