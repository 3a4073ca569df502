// Exit codes of every opscrew command. Scripts match on these; keep them stable and keep the
// `--help` epilogue and the README's table in step with this list.

export const EXIT = {
  /** Success; check-command: the policy allows the line. */
  OK: 0,
  /** Invalid input, lint problems, a failed check, an unknown task or agent. */
  FAILED: 1,
  /** Usage error: unknown command or option, missing argument. */
  USAGE: 2,
  /** check-command / exec: the policy needs an approval first. */
  NEEDS_APPROVAL: 3,
  /** check-command / exec: the policy refuses the line. */
  REFUSED: 4,
  /** check-command / exec: no vetted tool runs this line (shell syntax, unknown program). */
  UNPARSEABLE: 5,
  /** The workspace or its opscrew.config.yaml is missing or invalid. */
  CONFIG: 6,
  /** A bug or broken invariant inside opscrew. */
  INTERNAL: 70,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** The epilogue `opscrew --help` prints. */
export const EXIT_CODES_HELP = `Exit codes:
  0   ok (check-command: allowed)
  1   invalid input, lint problems, failed check, unknown task or agent
  2   usage error (unknown command or option, missing argument)
  3   needs approval (check-command, exec)
  4   refused by policy (check-command, exec)
  5   unparseable: no vetted tool runs this line (check-command, exec)
  6   workspace or opscrew.config.yaml missing or invalid
  70  internal error
  exec: when the command ran, its own exit code.`;
