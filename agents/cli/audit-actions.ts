// What `opscrew audit` does (loaded lazily).
import { listAudit, type AuditRow } from '../../mcp-server/core/audit.js';
import { parseDuration } from '../../mcp-server/core/duration.js';
import { openStore } from '../../mcp-server/core/store.js';
import type { AuditOptions } from './cmd-audit.js';
import { CliError } from './context.js';
import { EXIT } from './exit-codes.js';
import { printJson, printLines, renderTable, type CliIO } from './output.js';
import { requireWorkspace } from './tasks-actions.js';

/** `2h`, `7d`, `30m` back from now, or an ISO date/time. */
export function parseSince(when: string, now: number): number {
  const d = parseDuration(when);
  if (d !== null) return now - d;
  // A bare date is midnight UTC of that day (Date.parse's rule for date-only ISO strings).
  const t = /^\d{4}-\d{2}-\d{2}/.test(when.trim()) ? Date.parse(when.trim()) : Number.NaN;
  if (Number.isFinite(t)) return t;
  throw new CliError(EXIT.USAGE, `--since ${JSON.stringify(when)} is neither a duration (30m, 2h, 7d) nor an ISO date (2026-01-31, 2026-01-31T08:00:00Z)`);
}

export async function runAudit(io: CliIO, dir: string, opts: AuditOptions): Promise<number> {
  const limit = Number(opts.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 100_000) {
    throw new CliError(EXIT.USAGE, `--limit must be a whole number from 1 to 100000, not ${JSON.stringify(opts.limit)}`);
  }
  const sinceMs = opts.since !== undefined ? parseSince(opts.since, io.now()) : undefined;
  const ws = requireWorkspace(dir);
  const store = openStore(ws.dbPath);
  let rows: AuditRow[];
  try {
    rows = listAudit(store.db, {
      limit,
      ...(opts.task !== undefined ? { taskId: opts.task } : {}),
      ...(opts.agent !== undefined ? { agent: opts.agent } : {}),
      ...(sinceMs !== undefined ? { sinceMs } : {}),
    });
  } finally {
    store.close();
  }
  if (opts.json) {
    printJson(io, { calls: rows.map((r) => ({ ...r, time: new Date(r.tsMs).toISOString() })) });
    return EXIT.OK;
  }
  if (rows.length === 0) {
    io.err('no audit rows match\n');
    return EXIT.OK;
  }
  printLines(
    io,
    renderTable(rows, [
      { header: 'SEQ', get: (r) => String(r.seq) },
      { header: 'TIME', get: (r) => new Date(r.tsMs).toISOString().replace(/\.\d{3}Z$/, 'Z') },
      { header: 'AGENT', get: (r) => r.agent },
      { header: 'TASK', get: (r) => r.taskId ?? '-' },
      { header: 'TOOL', get: (r) => r.tool ?? '-' },
      { header: 'CLASS', get: (r) => r.class ?? '-' },
      { header: 'DECISION', get: (r) => r.decision },
      { header: 'RULE', get: (r) => r.rule },
      { header: 'EXIT', get: (r) => (r.exitCode === null ? '-' : String(r.exitCode)) },
      { header: 'COMMAND', get: (r) => r.canonical, max: 100 },
    ]),
  );
  return EXIT.OK;
}
