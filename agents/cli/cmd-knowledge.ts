// `opscrew report`, `opscrew ask`, `opscrew chat`: reading what the crew remembers.
import type { Command } from 'commander';
import { workspaceDir, type CliContext } from './context.js';

const NO_KEY_NOTE =
  'Answers come from the records (tasks, runs, audit, retrospectives) through a built-in question router and full-text search; ' +
  'no API key is needed. With ANTHROPIC_API_KEY set, Claude answers instead through the read-only knowledge tools ' +
  '(knowledge_search, knowledge_query, knowledge_entity, lessons_for), citing the task ids, run ids and retro files they return; ' +
  '--no-claude keeps the built-in router. OPSCREW_ASK_MODEL picks the model.';

export interface ReportOptions {
  since?: string;
  json?: boolean;
}

export interface AskOptions {
  json?: boolean;
  /** false with --no-claude. */
  claude?: boolean;
}

export interface ChatOptions {
  claude?: boolean;
}

export function registerKnowledge(program: Command, ctx: CliContext): void {
  program
    .command('report')
    .description('the session/period report: processed, completed, blocked, criteria met, durations, discoveries, learnings, next priorities; also written to retrospectives/')
    .option('--since <when>', 'period start: a duration back from now (24h, 7d) or an ISO date/time', '24h')
    .option('--json', 'print JSON')
    .action(async (opts: ReportOptions, cmd: Command) => {
      const { runReport } = await import('./knowledge-actions.js');
      ctx.exitCode = await runReport(ctx.io, workspaceDir(ctx.io, cmd), opts);
    });

  program
    .command('ask')
    .description('answer a question from the records, with citations (task ids, run ids, retro files)')
    .argument('<question...>', 'the question, e.g. "why is TASK-006 blocked?"')
    .option('--json', 'print JSON: {answer, citations, intent} (Claude adds stop, grounded, tools, usage)')
    .option('--no-claude', 'answer with the built-in router even when ANTHROPIC_API_KEY is set')
    .addHelpText('after', `\n${NO_KEY_NOTE}\n\nQuestions it knows: status; what is blocked and why; what happened with TASK-X; what touched host/namespace/service Y;\nwhich lessons do we have about Z; what failed this week and how often; which commands fail most. Anything else: full-text search.\n`)
    .action(async (question: string[], opts: AskOptions, cmd: Command) => {
      const { runAsk } = await import('./knowledge-actions.js');
      ctx.exitCode = await runAsk(ctx.io, workspaceDir(ctx.io, cmd), question.join(' '), opts);
    });

  program
    .command('chat')
    .description('interactive questions (history with the arrow keys; `exit` or Ctrl-D quits); reads lines from stdin when it is not a terminal')
    .option('--no-claude', 'answer with the built-in router even when ANTHROPIC_API_KEY is set')
    .addHelpText('after', `\n${NO_KEY_NOTE}\n`)
    .action(async (opts: ChatOptions, cmd: Command) => {
      const { runChat } = await import('./knowledge-actions.js');
      ctx.exitCode = await runChat(ctx.io, workspaceDir(ctx.io, cmd), { input: process.stdin, output: process.stdout }, opts);
    });
}
