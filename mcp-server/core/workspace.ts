// Where a workspace keeps its queue folders, state and config. Pure path math; ensureWorkspace
// is the only function that touches the disk.
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const TASK_FOLDERS = ['backlog', 'active', 'completed'] as const;
export type TaskFolder = (typeof TASK_FOLDERS)[number];

export interface Workspace {
  root: string;
  tasksDir: string;
  backlog: string;
  active: string;
  completed: string;
  retrospectives: string;
  /** `.opscrew/`: database and logs. */
  stateDir: string;
  dbPath: string;
  logsDir: string;
  /** `.opscrew/tmp/`: files made ahead of a write that will rename them into a task folder. */
  tmpDir: string;
  configPath: string;
}

export function resolveWorkspace(dir: string): Workspace {
  const root = resolve(dir);
  const tasksDir = join(root, 'tasks');
  const stateDir = join(root, '.opscrew');
  return {
    root,
    tasksDir,
    backlog: join(tasksDir, 'backlog'),
    active: join(tasksDir, 'active'),
    completed: join(tasksDir, 'completed'),
    retrospectives: join(root, 'retrospectives'),
    stateDir,
    dbPath: join(stateDir, 'opscrew.db'),
    logsDir: join(stateDir, 'logs'),
    tmpDir: join(stateDir, 'tmp'),
    configPath: join(root, 'opscrew.config.yaml'),
  };
}

export function folderDir(ws: Workspace, folder: TaskFolder): string {
  return ws[folder];
}

/** mkdir -p of every folder the workspace needs; idempotent. */
export function ensureWorkspace(ws: Workspace): void {
  for (const d of [ws.backlog, ws.active, ws.completed, ws.retrospectives, ws.stateDir, ws.logsDir, ws.tmpDir]) {
    mkdirSync(d, { recursive: true });
  }
}
