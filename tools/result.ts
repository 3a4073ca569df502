// The tools layer (L0) imports nothing else from the project, so it keeps its own copy of the
// Result shape; it is structurally identical to mcp-server/core/errors.ts `Result`.

export type Ok<T> = { ok: true; value: T };
export type Fail<C extends string = string> = { ok: false; code: C; message: string };
export type Result<T, C extends string = string> = Ok<T> | Fail<C>;

export function ok<T>(value: T): Ok<T> {
  return { ok: true, value };
}

export function fail<C extends string>(code: C, message: string): Fail<C> {
  return { ok: false, code, message };
}
