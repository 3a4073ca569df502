// Output helpers: a plain table for people, JSON for scripts. All writes go through CliIO so
// `main` can run in-process in tests.

export interface CliIO {
  /** Standard output; bytes are UTF-8 (a big JSON answer made by the store, written as is). */
  out(text: string | Uint8Array): void;
  err(text: string): void;
  env: Readonly<Record<string, string | undefined>>;
  cwd: string;
  now: () => number;
}

export function processIO(): CliIO {
  return {
    out: (t) => void process.stdout.write(t),
    err: (t) => void process.stderr.write(t),
    env: process.env,
    cwd: process.cwd(),
    now: Date.now,
  };
}

export function printJson(io: CliIO, value: unknown): void {
  io.out(`${JSON.stringify(value, null, 2)}\n`);
}

export function printLines(io: CliIO, lines: readonly string[]): void {
  if (lines.length > 0) io.out(`${lines.join('\n')}\n`);
}

export interface Column<R> {
  header: string;
  get(row: R): string;
  /** Cut longer cells with an ellipsis. */
  max?: number;
}

/** A left-aligned text table; the last column is not padded. */
export function renderTable<R>(rows: readonly R[], columns: readonly Column<R>[]): string[] {
  const cells = rows.map((r) =>
    columns.map((c) => {
      const v = oneLine(c.get(r));
      return c.max !== undefined && v.length > c.max ? `${v.slice(0, Math.max(0, c.max - 1))}…` : v;
    }),
  );
  const widths = columns.map((c, i) => Math.max(c.header.length, ...cells.map((row) => (row[i] ?? '').length)));
  const fmt = (vals: readonly string[]): string =>
    vals
      .map((v, i) => (i === vals.length - 1 ? v : v.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [fmt(columns.map((c) => c.header)), ...cells.map(fmt)];
}

function oneLine(s: string): string {
  return s.replace(/[\r\n\t]+/g, ' ');
}
