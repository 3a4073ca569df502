// `opscrew tasks list|show|lint|new`: the folder queue as people see it.
import { Option, type Command } from 'commander';
import { PRIORITIES } from '../../mcp-server/core/task-types.js';
import { workspaceDir, type CliContext } from './context.js';
import type { NewOptions } from './tasks-actions.js';

const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

export const LIST_STATUSES = ['backlog', 'active', 'completed', 'blocked', 'ready', 'invalid'] as const;

export function registerTasks(program: Command, ctx: CliContext): void {
  const tasks = program.command('tasks').description('list, show, lint and create task files');

  tasks
    .command('list')
    .description('list the tasks of the workspace (from the store; only changed files are re-read)')
    .addOption(new Option('--status <status>', 'only tasks in this state').choices(LIST_STATUSES))
    .option('--json', 'print JSON')
    .action(async (opts: { status?: (typeof LIST_STATUSES)[number]; json?: boolean }, cmd: Command) => {
      const { listTasks } = await import('./tasks-actions.js');
      ctx.exitCode = await listTasks(ctx.io, workspaceDir(ctx.io, cmd), opts);
    });

  tasks
    .command('show')
    .description('show one parsed task: front matter, steps, criteria with their kinds, problems')
    .argument('<id>', 'task id (TASK-NNN) or a path to a task file')
    .option('--json', 'print JSON')
    .action(async (id: string, opts: { json?: boolean }, cmd: Command) => {
      const { showTask } = await import('./tasks-actions.js');
      ctx.exitCode = await showTask(ctx.io, workspaceDir(ctx.io, cmd), id, opts);
    });

  tasks
    .command('lint')
    .description(
      'check task files without changing them: front matter, sections, duplicate ids, missing dependencies, cycles, and every command line against the vetted tools and the policy',
    )
    .argument('[paths...]', "files or folders (default: the workspace's tasks/ folders)")
    .option('--json', 'print JSON')
    .action(async (paths: string[], opts: { json?: boolean }, cmd: Command) => {
      const { lintCommand } = await import('./tasks-actions.js');
      ctx.exitCode = await lintCommand(ctx.io, workspaceDir(ctx.io, cmd), paths, opts);
    });

  tasks
    .command('new')
    .description('write a new task into tasks/backlog/ with the next free id')
    .requiredOption('--title <title>', 'task title')
    .addOption(new Option('--priority <priority>', 'priority').choices(PRIORITIES).default('medium'))
    .option('--agent <name>', 'specialist that should run it')
    .option('--tag <tag>', 'a tag (repeatable)', collect)
    .option('--depends-on <id>', 'a task that must complete first (repeatable)', collect)
    .option('--resource <resource>', 'an exclusive resource, e.g. k8s:staging/orders (repeatable)', collect)
    .option('--step <command>', 'a command line for ## Steps (repeatable)', collect)
    .option('--criterion <text>', 'an acceptance criterion (repeatable; "TEXT :: COMMAND" adds its check)', collect)
    .option('--json', 'print JSON')
    .action(async (opts: NewOptions, cmd: Command) => {
      const { newTask } = await import('./tasks-actions.js');
      ctx.exitCode = await newTask(ctx.io, workspaceDir(ctx.io, cmd), opts);
    });
}

