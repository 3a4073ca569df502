// The typed task: what a parsed task file means. The parser (task-parse.ts) builds it,
// the renderer (task-render.ts) writes runner-owned state back without touching author text.

export const PRIORITIES = ['critical', 'high', 'medium', 'low'] as const;
export type Priority = (typeof PRIORITIES)[number];

/** Runner-owned status written into front matter; the folder is the truth a person sees. */
export const TASK_STATUSES = ['blocked', 'awaiting-approval', 'active', 'completed'] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

export type Expectation =
  | { kind: 'contains'; text: string; line: number }
  | { kind: 'regex'; source: string; flags: string; line: number }
  | { kind: 'exit'; code: number; line: number };

/** One runnable command line (continuations joined), with the expectations that follow it. */
export interface CommandItem {
  kind: 'command';
  /** 1-based line of the command's first physical line in the file. */
  line: number;
  /** The logical command line as the author wrote it (`$ ` prompt stripped, `\` continuations joined). */
  text: string;
  expects: Expectation[];
}

/** `export NAME=value`: sets a variable for later lines of the same task. */
export interface ExportItem {
  kind: 'export';
  line: number;
  name: string;
  value: string;
}

/** A fenced block with `file=PATH` in its info string, or after a `**File:** \`PATH\`` line. */
export interface FileItem {
  kind: 'file';
  line: number;
  path: string;
  content: string;
  /** Optional `mode=0644` in the info string. */
  mode?: string;
}

export type StepItem = CommandItem | ExportItem | FileItem;

export type Criterion =
  | { kind: 'verify'; line: number; text: string; checked: boolean; items: StepItem[] }
  | { kind: 'manual'; line: number; text: string; checked: boolean }
  | { kind: 'na'; line: number; text: string; checked: boolean; reason: string };

export interface SectionInfo {
  /** Canonical name the runner understands, or null for a section it only keeps. */
  name: 'context' | 'preflight' | 'steps' | 'acceptance' | 'rollback' | 'out-of-scope' | 'evidence' | null;
  heading: string;
  level: number;
  /** 1-based line of the heading. */
  line: number;
}

export interface TaskFrontMatter {
  id?: string;
  title?: string;
  priority: Priority;
  agent?: string;
  tags: string[];
  depends_on: string[];
  resources: string[];
  /** Whole-task timeout in ms (parsed from `30m`, `90s`, `1h`). */
  timeout_ms?: number;
  max_attempts?: number;
  approve: string[];
  // runner-owned
  status?: TaskStatus;
  blocked_reason?: string;
  attempts?: number;
  run_id?: string;
  discovered_from?: string;
  created_at?: string;
  updated_at?: string;
  started_at?: string;
  completed_at?: string;
  blocked_at?: string;
  /** Fields the schema does not know are kept, never dropped. */
  extra: Record<string, unknown>;
}

export interface Task {
  /** Path the task was read from (as given to the parser). */
  file: string;
  fm: TaskFrontMatter;
  /** fm.title, else the first H1, else the file name. */
  title: string;
  context: string;
  preflight: StepItem[];
  steps: StepItem[];
  criteria: Criterion[];
  rollback: StepItem[];
  outOfScope: string[];
  sections: SectionInfo[];
}

/** Per-criterion proof written into `## Verification Evidence` and the store. */
export interface CriterionEvidence {
  criterion: string;
  outcome: 'verified' | 'failed' | 'na' | 'attested' | 'manual';
  commands: Array<{
    command: string;
    exitCode: number | null;
    durationMs: number;
    excerpt: string;
    passed: boolean;
    reason?: string;
  }>;
}
