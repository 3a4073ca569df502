// What `opscrew report`, `ask` and `chat` do (loaded lazily).
import { createInterface } from 'node:readline';
import { ask, type Answer } from '../../mcp-server/core/ask.js';
import { writeReport } from '../../mcp-server/core/report.js';
import { openStore, type Store } from '../../mcp-server/core/store.js';
import { parseSince } from './audit-actions.js';
import type { AskOptions, ReportOptions } from './cmd-knowledge.js';
import { EXIT } from './exit-codes.js';
import { printJson, type CliIO } from './output.js';
import { requireWorkspace } from './tasks-actions.js';
import type { Workspace } from '../../mcp-server/core/workspace.js';

const MAX_CHAT_LINE = 2000;

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

export function formatAnswer(a: Answer): string {
  const cites = a.citations.map((c) => (c.file ? c.file : c.id));
  return `${a.answer}${cites.length ? `\n\nSources: ${cites.join(', ')}` : ''}\n`;
}

export async function runAsk(io: CliIO, dir: string, question: string, opts: AskOptions): Promise<number> {
  const a = withStore(dir, (store) => ask(store.db, question, { now: io.now() }));
  if (opts.json) printJson(io, a);
  else io.out(formatAnswer(a));
  return EXIT.OK;
}

export interface ChatStreams {
  input: NodeJS.ReadableStream & { isTTY?: boolean };
  output: NodeJS.WritableStream;
}

/** A REPL: one question per line; `exit`/`quit` or end of input ends it. History when on a terminal. */
export async function runChat(io: CliIO, dir: string, streams: ChatStreams): Promise<number> {
  const ws = requireWorkspace(dir);
  const store = openStore(ws.dbPath);
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
      if (line !== '') io.out(formatAnswer(ask(store.db, line, { now: io.now() })));
      if (tty) rl.prompt();
    }
  } finally {
    rl.close();
    store.close();
  }
  return EXIT.OK;
}
