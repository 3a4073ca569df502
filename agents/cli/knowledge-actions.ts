// What `opscrew report`, `ask` and `chat` do (loaded lazily). ask/chat answer through Claude
// (agents/runtime/claude-ask.ts) when ANTHROPIC_API_KEY is set and --no-claude is not given;
// otherwise, and when Claude fails, through the built-in intent router.
import { createInterface } from 'node:readline';
import { ask, type Answer } from '../../mcp-server/core/ask.js';
import { writeReport } from '../../mcp-server/core/report.js';
import { openStore, type Store } from '../../mcp-server/core/store.js';
import { parseSince } from './audit-actions.js';
import type { ChatExchange, ClaudeAnswer } from '../runtime/claude-ask.js';
import type { Model } from '../runtime/model.js';
import type { AskOptions, ChatOptions, ReportOptions } from './cmd-knowledge.js';
import { EXIT } from './exit-codes.js';
import { printJson, type CliIO } from './output.js';
import { requireWorkspace } from './tasks-actions.js';
import type { Workspace } from '../../mcp-server/core/workspace.js';

const MAX_CHAT_LINE = 2000;
const MAX_HISTORY = 20;

function withStore<T>(dir: string, fn: (store: Store, ws: Workspace) => T): T {
  const ws = requireWorkspace(dir);
  const store = openStore(ws.dbPath);
  try {
    return fn(store, ws);
  } finally {
    store.close();
  }
}

export async function runReport(io: CliIO, dir: string, opts: ReportOptions): Promise<number> {
  const now = io.now();
  const sinceMs = parseSince(opts.since ?? '24h', now);
  const r = withStore(dir, (store, ws) => writeReport({ db: store.db, retrospectivesDir: ws.retrospectives }, { sinceMs, now }));
  if (opts.json) printJson(io, { ...r.data, file: r.file });
  else io.out(`${r.markdown}\n(written to ${r.file})\n`);
  return EXIT.OK;
}

export function formatAnswer(a: Answer | ClaudeAnswer): string {
  const cites = a.citations.map((c) => (c.file ? c.file : c.id));
  // Claude writes its own "Sources:" line; ours lists only ids the tools really returned.
  const sources = cites.length ? `\n\n${a.intent === 'claude' ? 'Cited records' : 'Sources'}: ${cites.join(', ')}` : '';
  const unverified = a.intent === 'claude' && !a.grounded ? '\n\n(This answer names no record the knowledge tools returned: treat it as unverified.)' : '';
  return `${a.answer}${sources}${unverified}\n`;
}

/** Answers one question: Claude when a model is given (falling back to the router if it fails), else the router. */
async function answerOne(io: CliIO, store: Store, question: string, model: Model | null, history: ChatExchange[]): Promise<Answer | ClaudeAnswer> {
  if (model) {
    const { claudeAsk } = await import('../runtime/claude-ask.js');
    const a = await claudeAsk({ db: store.db, dbPath: store.path, question, model, history, now: io.now });
    if (a.stop !== 'model-error') return a;
    io.err(`opscrew: Claude could not answer (${a.modelError ?? 'model error'}); answering from the records with the built-in router\n`);
  }
  return ask(store.db, question, { now: io.now() });
}

/** The Claude model when a key is set and --no-claude was not given; null for the intent router. */
async function askModel(io: CliIO, useClaude: boolean | undefined): Promise<Model | null> {
  if (useClaude === false || !io.env.ANTHROPIC_API_KEY?.trim()) return null;
  const { createAskModel } = await import('../runtime/claude-ask.js');
  const m = createAskModel(io.env);
  if (m.ok) return m.value;
  io.err(`opscrew: ${m.message}; answering with the built-in router\n`);
  return null;
}

export async function runAsk(io: CliIO, dir: string, question: string, opts: AskOptions): Promise<number> {
  const ws = requireWorkspace(dir);
  const model = await askModel(io, opts.claude);
  const store = openStore(ws.dbPath);
  let a: Answer | ClaudeAnswer;
  try {
    a = await answerOne(io, store, question, model, []);
  } finally {
    store.close();
  }
  if (opts.json) printJson(io, a);
  else io.out(formatAnswer(a));
  return EXIT.OK;
}

export interface ChatStreams {
  input: NodeJS.ReadableStream & { isTTY?: boolean };
  output: NodeJS.WritableStream;
}

/** A REPL: one question per line; `exit`/`quit` or end of input ends it. History when on a terminal. */
export async function runChat(io: CliIO, dir: string, streams: ChatStreams, opts: ChatOptions = {}): Promise<number> {
  const ws = requireWorkspace(dir);
  const model = await askModel(io, opts.claude);
  const store = openStore(ws.dbPath);
  const history: ChatExchange[] = [];
  const tty = streams.input.isTTY === true;
  const rl = createInterface({ input: streams.input, ...(tty ? { output: streams.output, terminal: true, historySize: 500 } : { terminal: false }) });
  try {
    if (tty) {
      io.out('opscrew chat — ask about tasks, runs, failures and lessons; `exit` or Ctrl-D quits.\n');
      rl.setPrompt('ask> ');
      rl.prompt();
    }
    for await (const raw of rl) {
      const line = raw.trim().slice(0, MAX_CHAT_LINE);
      if (line === 'exit' || line === 'quit') break;
      if (line !== '') {
        const a = await answerOne(io, store, line, model, history);
        io.out(formatAnswer(a));
        history.push({ question: line, answer: a.answer });
        if (history.length > MAX_HISTORY) history.shift();
      }
      if (tty) rl.prompt();
    }
  } finally {
    rl.close();
    store.close();
  }
  return EXIT.OK;
}
