// `# expect` lines after a verification command: stdout contains TEXT, stdout matches /REGEX/,
// exit code N. With no exit expectation the command must exit 0.
import type { Expectation } from './task-types.js';

export interface ExpectationCheck {
  passed: boolean;
  /** Why it failed, in words a person reads in evidence. */
  reason?: string;
}

/** Longest stdout a regex expectation is run over (bounds a pathological pattern's cost). */
export const REGEX_INPUT_CAP = 256 * 1024;

export function checkExpectations(expects: readonly Expectation[], out: { exitCode: number | null; stdout: string }): ExpectationCheck {
  const exits = expects.filter((e): e is Extract<Expectation, { kind: 'exit' }> => e.kind === 'exit');
  const wantExit = exits.length > 0 ? exits.map((e) => e.code) : [0];
  if (out.exitCode === null || !wantExit.includes(out.exitCode)) {
    return { passed: false, reason: `exit code ${out.exitCode ?? 'none (did not finish)'}, expected ${wantExit.join(' or ')}` };
  }
  for (const e of expects) {
    if (e.kind === 'contains' && !out.stdout.includes(e.text)) {
      return { passed: false, reason: `output does not contain ${JSON.stringify(e.text)} (line ${e.line})` };
    }
    if (e.kind === 'regex') {
      let re: RegExp;
      try {
        re = new RegExp(e.source, e.flags);
      } catch (err) {
        return { passed: false, reason: `invalid expectation regex /${e.source}/${e.flags} (line ${e.line}): ${err instanceof Error ? err.message : String(err)}` };
      }
      if (!re.test(out.stdout.slice(0, REGEX_INPUT_CAP))) {
        return { passed: false, reason: `output does not match /${e.source}/${e.flags} (line ${e.line})` };
      }
    }
  }
  return { passed: true };
}
