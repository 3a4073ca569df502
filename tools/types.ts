// The typed tool call: what one vetted command line means. tools/ (L0) builds and runs it;
// the policy engine (mcp-server/core) decides on it. tools/ imports nothing else of the project.

export const TOOL_NAMES = [
  'kubectl',
  'compose',
  'docker',
  'vault',
  'ssh',
  'systemctl',
  'journalctl',
  'http',
  'files',
] as const;
export type ToolName = (typeof TOOL_NAMES)[number];

export const FILTER_NAMES = ['grep', 'jq', 'head', 'tail', 'wc', 'sort', 'uniq'] as const;
export type FilterName = (typeof FILTER_NAMES)[number];

/** How risky a call is. Order matters: later is riskier. */
export const OP_CLASSES = ['read', 'sensitive-read', 'mutate', 'destructive'] as const;
export type OpClass = (typeof OP_CLASSES)[number];

/** What a call targets; the policy engine checks each present field against scopes. */
export interface CallScope {
  /** kubectl: the context (explicit `--context`, else the config's current one). */
  context?: string;
  /** kubectl: the namespace, or '*' for `-A`/`--all-namespaces`. */
  namespace?: string;
  /** compose: the project name. */
  project?: string;
  /** ssh (and systemctl/journalctl through ssh): the configured host name. */
  host?: string;
  /** vault: the KV path, e.g. `kv/deploy`. */
  vaultPath?: string;
  /** files: absolute paths the call reads or writes (before symlink resolution). */
  paths?: string[];
  /** http: the URL and method. */
  url?: string;
  method?: string;
}

/** A read-only filter stage on the right side of a pipeline. */
export interface FilterCall {
  filter: FilterName;
  args: string[];
}

export interface ToolCall {
  tool: ToolName;
  /** The verb as the catalogue names it: `get`, `scale`, `kv patch`, `GET`, `cat`, `restart`... */
  verb: string;
  /** Arguments after the program/verb prefix, canonical order, secret handles (never values). */
  args: string[];
  class: OpClass;
  scope: CallScope;
  /** The canonical command line: what approvals bind to and what the audit shows. */
  canonical: string;
  /** Read-only filters the output is piped through, in order. */
  pipeline: FilterCall[];
  /** ssh: the vetted remote call. */
  remote?: ToolCall;
  /** A file block's content (files tool, verb `write`). */
  content?: string;
  /**
   * A recorded step the executor must run (and record) before the call itself:
   * `server-dry-run` for kubectl apply/patch (the same argv plus `--dry-run=server`),
   * `compose-config` for compose up (`compose -f FILE -p NAME config`).
   */
  preflight?: Preflight;
}

export const PREFLIGHTS = ['server-dry-run', 'compose-config'] as const;
export type Preflight = (typeof PREFLIGHTS)[number];

/** Outcome of running a call. Failures of the command itself are data, not exceptions. */
export interface ExecOutcome {
  exitCode: number | null;
  stdout: string;
  stderr: string;
  durationMs: number;
  timedOut: boolean;
  /** Output was cut at the cap. */
  truncated: boolean;
  /** Extra recorded steps (server-side dry run, `compose config`) that ran first. */
  preSteps?: Array<{ canonical: string; exitCode: number | null; excerpt: string }>;
  /** The tool itself refused to run the call (e.g. http to a metadata address); exitCode is null. */
  refused?: { code: string; message: string };
}

/** The part of the workspace config the tools need to build and run calls (mapped from opscrew.config.yaml by mcp-server/core/config). */
export interface ToolEnv {
  kubernetes?: {
    /** Path to the kubeconfig; passed as KUBECONFIG in the child env, never as a flag from the call. */
    kubeconfig?: string;
    /** context name → allowed namespaces ('*' = all). */
    contexts: Record<string, { namespaces: string[] }>;
    /** The context used when a call names none. */
    defaultContext?: string;
  };
  compose?: {
    dockerHost?: string;
    projects: Record<string, { file: string }>;
  };
  ssh?: {
    hosts: Record<string, { host: string; port: number; user: string; identityFile?: string; knownHosts?: string }>;
  };
  vault?: { address?: string; token?: string; paths: string[] };
  files?: { roots: string[] };
  http?: { allow: string[] };
  /** Extra env passed to children (PATH, HOME, LANG are always passed). */
  baseEnv?: Record<string, string>;
}

/** Secrets live only in the executor: handles in, handles out. */
export interface SecretBroker {
  /** Replace every `{{secret:...}}` / `{{generate:KIND}}` handle in `text` with its value (exec time only). */
  reveal(text: string): string;
  /** Remember a value read from a secret store; returns the handle that stands for it. */
  register(ref: string, value: string): string;
  /** Replace every known secret value (and its base64/URL-encoded forms) with its handle. */
  scrub(text: string): string;
}

export interface ToolContext {
  env: ToolEnv;
  secrets: SecretBroker;
  /**
   * YAML for files other programs read (kustomizations, whose references are followed and
   * checked); the core's parser, passed in because tools/ sits below it. Without it `-k` is refused.
   */
  parseYaml?: (text: string) => { ok: true; data: unknown } | { ok: false; message: string };
  /** Per-command timeout. */
  timeoutMs: number;
  /** Bytes kept of stdout and of stderr each. */
  outputCap: number;
  signal?: AbortSignal;
  /** Process runner; defaults to tools/exec.ts `runProcess`. Tests pass a spy. */
  spawn?: Spawner;
  /**
   * The hosts this caller may reach over http (a specialist's `http_hosts`): the policy checks
   * the URL as written, the http tool holds every redirect hop to them too.
   */
  httpHosts?: readonly string[];
}

export interface SpawnRequest {
  file: string;
  args: string[];
  env: Record<string, string>;
  cwd?: string;
  input?: string;
  timeoutMs: number;
  outputCap: number;
  signal?: AbortSignal;
}

export interface SpawnResult {
  exitCode: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  durationMs: number;
  timedOut: boolean;
  truncated: boolean;
  /** The program could not be started (ENOENT...). */
  spawnError?: string;
  /** The run was ended by the caller's abort signal. */
  aborted?: boolean;
}

export type Spawner = (req: SpawnRequest) => Promise<SpawnResult>;
