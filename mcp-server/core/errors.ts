// Expected outcomes are data; exceptions are for bugs and broken invariants.
// Every failure carries a stable string code so CLIs, MCP results and tests can match on it.

export type Ok<T> = { ok: true; value: T };
export type Fail<C extends string = string> = { ok: false; code: C; message: string; cause?: unknown };
export type Result<T, C extends string = string> = Ok<T> | Fail<C>;

export function ok<T>(value: T): Ok<T> {
  return { ok: true, value };
}

export function fail<C extends string>(code: C, message: string, cause?: unknown): Fail<C> {
  return cause === undefined ? { ok: false, code, message } : { ok: false, code, message, cause };
}

/** An error with a stable code; keeps the underlying cause. */
export class OpsError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'OpsError';
    this.code = code;
  }
}

/** A problem located in a file: what every validation error must say. */
export interface Issue {
  file: string;
  /** 1-based line; 0 when the problem is the file as a whole. */
  line: number;
  field?: string;
  message: string;
  /** How to fix it, in words a person can act on. */
  fix?: string;
}

export function formatIssue(i: Issue): string {
  const where = `${i.file}:${i.line}`;
  const field = i.field ? ` ${i.field}:` : '';
  const fix = i.fix ? ` (fix: ${i.fix})` : '';
  return `${where}:${field} ${i.message}${fix}`;
}
