// Runs a vetted ToolCall: builds the argv and child env from the call and the config, runs the
// recorded pre-steps (server-side dry run, compose config), reveals secret handles only here
// at exec time, pipes output through the read-only filters without a shell, and scrubs every
// byte of output before it leaves.
import { baseEnv, runProcess } from './exec.js';
import { FILES_VERBS, runFilesCall } from './files-ops.js';
import { pathsWithinRoots } from './program-files.js';
import { runFilters } from './filters-run.js';
import { runHttpCall } from './http-client.js';
import { joinWords } from './tokenize.js';
import { runVaultCall } from './vault-client.js';
import type { ExecOutcome, Preflight, SpawnResult, Spawner, ToolCall, ToolContext } from './types.js';

/** Bytes read beyond the cap so a secret cut at the cap is still scrubbed whole. */
const SCRUB_SLACK = 4096;
/** What a pipeline's filters may see of the command's output (the result is still capped). */
export const FILTER_INPUT_CAP = 8 * 1024 * 1024;
/** How much of a pre-step's output is recorded. */
const EXCERPT_CHARS = 2000;
/** Exit code reported when the program could not be started (as a shell would). */
export const NOT_FOUND_EXIT = 127;

/** POSIX single-quoting for the remote shell: every word, always. */
export function quoteForRemoteShell(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** The program words and child env of one process call. */
export interface Invocation {
  argv: string[];
  /** ssh: the remote command's words, revealed and quoted into ONE final argument at exec. */
  remote?: string[];
  env: Record<string, string>;
  /** What the audit shows for this step (handles, never values). */
  canonical: string;
}

type Refusal = { code: string; message: string };

function refusedOutcome(r: Refusal, started: number): ExecOutcome {
  return {
    exitCode: null,
    stdout: '',
    stderr: r.message,
    durationMs: elapsed(started),
    timedOut: false,
    truncated: false,
    refused: r,
  };
}

function elapsed(started: number): number {
  return Math.round((performance.now() - started) * 10) / 10;
}

function childEnv(ctx: ToolContext, extra: Record<string, string | undefined> = {}): Record<string, string> {
  const add: Record<string, string> = { ...(ctx.env.baseEnv ?? {}) };
  for (const [k, v] of Object.entries(extra)) if (v !== undefined && v !== '') add[k] = v;
  return baseEnv(add);
}

// Compose v2 (`docker compose`) or v1 (`docker-compose`): asked once per context.
const composeProgramCache = new WeakMap<ToolContext, Promise<string[]>>();

/** `['docker','compose']` when the docker CLI has the v2 plugin, else `['docker-compose']`. */
export function composeProgram(ctx: ToolContext): Promise<string[]> {
  let p = composeProgramCache.get(ctx);
  if (!p) {
    const spawn = ctx.spawn ?? runProcess;
    p = spawn({
      file: 'docker',
      args: ['compose', 'version'],
      env: childEnv(ctx, { DOCKER_HOST: ctx.env.compose?.dockerHost }),
      timeoutMs: Math.min(ctx.timeoutMs, 15_000),
      outputCap: 4096,
    }).then(
      (r) => (r.exitCode === 0 && !r.spawnError ? ['docker', 'compose'] : ['docker-compose']),
      () => ['docker-compose'],
    );
    composeProgramCache.set(ctx, p);
  }
  return p;
}

/** compose's global options that take a value (before the subcommand). */
const COMPOSE_GLOBAL_VALUE = new Set(['-p', '--project-name', '-f', '--file', '--profile', '--ansi', '--progress', '--parallel']);

/**
 * Drops `-p/--project-name/-f/--file` from compose's global options (before the subcommand):
 * project and file come from the config. Everything from the subcommand on is kept as is
 * (`rm -f` is rm's force flag, not a file).
 */
function stripComposeTarget(args: string[]): string[] {
  const out: string[] = [];
  let i = 0;
  for (; i < args.length; i++) {
    const a = args[i] ?? '';
    if (!a.startsWith('-')) break;
    const name = a.split('=')[0] ?? a;
    const target = name === '-p' || name === '-f' || name === '--project-name' || name === '--file' || /^-[pf]./.test(a);
    const takesNext = COMPOSE_GLOBAL_VALUE.has(a);
    if (!target) {
      out.push(a);
      if (takesNext && i + 1 < args.length) out.push(args[++i] ?? '');
    } else if (takesNext) i++;
  }
  return [...out, ...args.slice(i)];
}

/** The program words for a call's tool as run on this machine (ssh remote calls too). */
async function programFor(call: ToolCall, ctx: ToolContext, remote: boolean): Promise<string[] | Refusal> {
  switch (call.tool) {
    case 'kubectl':
      return ['kubectl'];
    case 'docker':
      return ['docker'];
    case 'systemctl':
      return ['systemctl'];
    case 'journalctl':
      return ['journalctl'];
    case 'compose':
      if (remote) return { code: 'ssh-remote-tool', message: 'ssh: compose through ssh is not run; configure the project locally' };
      return composeProgram(ctx);
    case 'files':
      if (!remote) return { code: 'internal', message: 'files runs in-process' };
      if (call.verb === 'write') return { code: 'ssh-remote-tool', message: 'ssh: file blocks are not written through ssh' };
      // The verb becomes the remote program: only the files verbs, never an arbitrary name.
      if (!(FILES_VERBS as readonly string[]).includes(call.verb)) return { code: 'ssh-remote-tool', message: `ssh: ${call.verb} is not a files verb` };
      return [call.verb];
    default:
      return { code: 'ssh-remote-tool', message: `ssh: ${call.tool} is not run through ssh` };
  }
}

/** argv (program + args) for a process tool, before secrets are revealed. */
async function argvFor(call: ToolCall, ctx: ToolContext, remote: boolean): Promise<string[] | Refusal> {
  const program = await programFor(call, ctx, remote);
  if (!Array.isArray(program)) return program;
  let args = [...call.args];
  switch (call.tool) {
    case 'kubectl':
      // The parser makes the context explicit; if a hand-built call lacks it, add it here.
      if (call.scope.context && !args.some((a) => a === '--context' || a.startsWith('--context='))) {
        args = ['--context', call.scope.context, ...args];
      }
      break;
    case 'journalctl':
      if (!args.includes('--no-pager')) args = ['--no-pager', ...args];
      break;
    case 'compose': {
      const project = call.scope.project;
      const cfg = project !== undefined ? ctx.env.compose?.projects[project] : undefined;
      if (project === undefined || !cfg) {
        return { code: 'compose-project', message: `compose: project ${project ?? '(none)'} is not configured (config compose.projects)` };
      }
      args = ['-p', project, '-f', cfg.file, ...stripComposeTarget(args)];
      break;
    }
    default:
      break;
  }
  return [...program, ...args];
}

function envFor(call: ToolCall, ctx: ToolContext): Record<string, string> {
  switch (call.tool) {
    case 'kubectl':
      return childEnv(ctx, { KUBECONFIG: ctx.env.kubernetes?.kubeconfig });
    case 'compose':
    case 'docker':
      return childEnv(ctx, { DOCKER_HOST: ctx.env.compose?.dockerHost });
    default:
      return childEnv(ctx);
  }
}

async function sshInvocation(call: ToolCall, ctx: ToolContext): Promise<Invocation | Refusal> {
  const hostName = call.scope.host;
  const host = hostName !== undefined ? ctx.env.ssh?.hosts[hostName] : undefined;
  if (hostName === undefined || !host) return { code: 'ssh-host', message: `ssh: host ${hostName ?? '(none)'} is not in the config's host table` };
  if (!call.remote) return { code: 'ssh-remote', message: 'ssh: no vetted remote command' };
  if (call.remote.tool === 'ssh') return { code: 'ssh-remote-tool', message: 'ssh: nested ssh is not run' };
  const inner = await argvFor(call.remote, ctx, true);
  if (!Array.isArray(inner)) return inner;
  // Our own options, always; the call cannot add any. -F none: no ssh_config can add a
  // ProxyCommand or change the host behind the name.
  const argv = ['ssh', '-F', 'none'];
  if (host.identityFile) argv.push('-i', host.identityFile, '-o', 'IdentitiesOnly=yes');
  argv.push('-p', String(host.port), '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=yes');
  if (host.knownHosts) argv.push('-o', `UserKnownHostsFile=${host.knownHosts}`);
  argv.push('-o', 'ConnectTimeout=10', '-T', '--', `${host.user}@${host.host}`);
  return { argv, remote: inner, env: childEnv(ctx), canonical: call.canonical };
}

/** The exact argv run: handles revealed in each word (exec time only); ssh's remote words quoted into one. */
export function execArgv(inv: Invocation, ctx: Pick<ToolContext, 'secrets'>): string[] {
  const out = inv.argv.map((w) => ctx.secrets.reveal(w));
  if (inv.remote) out.push(inv.remote.map((w) => quoteForRemoteShell(ctx.secrets.reveal(w))).join(' '));
  return out;
}

async function spawnStep(inv: Invocation, ctx: ToolContext, outputCap: number): Promise<SpawnResult> {
  const spawn: Spawner = ctx.spawn ?? runProcess;
  const [file, ...args] = execArgv(inv, ctx);
  return spawn({
    file: file ?? '',
    args,
    env: inv.env,
    timeoutMs: ctx.timeoutMs,
    outputCap: outputCap + SCRUB_SLACK,
    ...(ctx.signal ? { signal: ctx.signal } : {}),
  });
}

function cap(text: string, limit: number): { text: string; truncated: boolean } {
  if (Buffer.byteLength(text) <= limit) return { text, truncated: false };
  return { text: Buffer.from(text).subarray(0, limit).toString('utf8'), truncated: true };
}

function excerpt(ctx: ToolContext, r: SpawnResult): string {
  const text = ctx.secrets.scrub([r.stdout, r.stderr, r.spawnError ?? ''].filter(Boolean).join('\n'));
  return text.length > EXCERPT_CHARS ? `${text.slice(0, EXCERPT_CHARS)}…` : text;
}

function exitOf(r: SpawnResult): number | null {
  return r.spawnError && !r.aborted ? NOT_FOUND_EXIT : r.exitCode;
}

/** The pre-step a call needs: what the parser asked for, and always for apply/patch/up. */
function preflightOf(call: ToolCall): Preflight | undefined {
  if (call.preflight) return call.preflight;
  const dryRun = call.args.some((a) => a === '--dry-run' || a.startsWith('--dry-run='));
  if (call.tool === 'kubectl' && (call.verb === 'apply' || call.verb === 'patch') && !dryRun) return 'server-dry-run';
  if (call.tool === 'compose' && call.verb === 'up') return 'compose-config';
  return undefined;
}

async function preStepInvocation(call: ToolCall, ctx: ToolContext, main: Invocation, pf: Preflight): Promise<Invocation | Refusal> {
  if (pf === 'server-dry-run') {
    if (call.tool !== 'kubectl') return { code: 'preflight', message: `server-dry-run does not apply to ${call.tool}` };
    const argv = [...main.argv.filter((a) => a !== '--dry-run' && !a.startsWith('--dry-run=')), '--dry-run=server'];
    return { argv, env: main.env, canonical: joinWords(argv) };
  }
  if (call.tool !== 'compose') return { code: 'preflight', message: `compose-config does not apply to ${call.tool}` };
  const program = await composeProgram(ctx);
  const project = call.scope.project ?? '';
  const file = ctx.env.compose?.projects[project]?.file ?? '';
  const argv = [...program, '-p', project, '-f', file, 'config', '-q'];
  return { argv, env: main.env, canonical: joinWords(argv) };
}

/** Runs one vetted call. Never throws for anything the call or the machine does. */
export async function runToolCall(call: ToolCall, ctx: ToolContext): Promise<ExecOutcome> {
  const started = performance.now();
  try {
    return await runInner(call, ctx, started);
  } catch (e) {
    const code = e && typeof e === 'object' && 'code' in e && typeof (e as { code: unknown }).code === 'string' ? (e as { code: string }).code : 'exec-error';
    const message = ctx.secrets.scrub(e instanceof Error ? e.message : String(e));
    return refusedOutcome({ code, message }, started);
  }
}

async function runInner(call: ToolCall, ctx: ToolContext, started: number): Promise<ExecOutcome> {
  // In-process tools: their output goes through the same filters and scrubbing.
  if (call.tool === 'http') return inProcess(await runHttpCall(call, ctx), call, ctx, started);
  if (call.tool === 'vault') return inProcess(await runVaultCall(call, ctx), call, ctx, started);
  if (call.tool === 'files') return inProcess(await runFilesCall(call, ctx), call, ctx, started);

  let main: Invocation;
  let pipeline = call.pipeline;
  if (call.tool === 'ssh') {
    const inv = await sshInvocation(call, ctx);
    if (!('argv' in inv)) return refusedOutcome(inv, started);
    main = inv;
    pipeline = [...(call.remote?.pipeline ?? []), ...call.pipeline];
  } else {
    if (call.tool === 'kubectl' && call.scope.paths !== undefined && call.scope.paths.length > 0) {
      // A file holding a revealed secret (a file block's) goes only into a Secret, as a handle does.
      const at = call.args.indexOf('create');
      const intoSecret = call.verb === 'create' && at !== -1 && call.args[at + 1] === 'secret';
      const outside = await pathsWithinRoots('kubectl', call.scope.paths, ctx.env.files?.roots ?? [], {
        scrub: (t) => ctx.secrets.scrub(t),
        ...(ctx.parseYaml ? { parseYaml: ctx.parseYaml } : {}),
        secretRefusal: intoSecret
          ? null
          : `kubectl would store or show it outside a Secret's data; put it in one with \`kubectl create secret generic NAME --from-file=KEY=PATH\` (or --from-env-file)`,
      });
      if (outside) return refusedOutcome(outside, started);
    }
    const argv = await argvFor(call, ctx, false);
    if (!Array.isArray(argv)) return refusedOutcome(argv, started);
    main = { argv, env: envFor(call, ctx), canonical: call.canonical };
  }

  const preSteps: NonNullable<ExecOutcome['preSteps']> = [];
  const pf = preflightOf(call);
  if (pf) {
    const pre = await preStepInvocation(call, ctx, main, pf);
    if (!('argv' in pre)) return refusedOutcome(pre, started);
    const r = await spawnStep(pre, ctx, ctx.outputCap);
    preSteps.push({ canonical: pre.canonical, exitCode: exitOf(r), excerpt: excerpt(ctx, r) });
    // A failed dry run or config check stops the call: its output is the result.
    if (exitOf(r) !== 0) return finish(ctx, started, r, [], preSteps);
  }
  const r = await spawnStep(main, ctx, pipeline.length ? Math.max(ctx.outputCap, FILTER_INPUT_CAP) : ctx.outputCap);
  return finish(ctx, started, r, pipeline, preSteps);
}

async function finish(
  ctx: ToolContext,
  started: number,
  r: SpawnResult,
  pipeline: ToolCall['pipeline'],
  preSteps: NonNullable<ExecOutcome['preSteps']>,
): Promise<ExecOutcome> {
  // Scrub before the filters too: a filter must not be able to transform a secret
  // (base64 -d, jq explode) past the scrubber.
  let stdout = ctx.secrets.scrub(r.stdout);
  let stderr = ctx.secrets.scrub(r.spawnError ? `${r.spawnError}\n${r.stderr}` : r.stderr);
  let exitCode = exitOf(r);
  let truncated = r.truncated;
  let timedOut = r.timedOut;
  if (pipeline.length && !r.spawnError && !r.timedOut) {
    const f = await runFilters(stdout, pipeline, {
      spawn: ctx.spawn ?? runProcess,
      // jq sees PATH, HOME and LANG only: none of the config's extra variables.
      env: baseEnv(),
      timeoutMs: ctx.timeoutMs,
      outputCap: ctx.outputCap + SCRUB_SLACK,
      ...(ctx.signal ? { signal: ctx.signal } : {}),
    }, exitCode);
    if (f.refused) return { ...refusedOutcome(f.refused, started), ...(preSteps.length ? { preSteps } : {}) };
    stdout = ctx.secrets.scrub(f.stdout);
    stderr = stderr + ctx.secrets.scrub(f.stderr);
    exitCode = f.exitCode;
    truncated ||= f.truncated === true;
    timedOut ||= f.timedOut === true;
  }
  const out = cap(stdout, ctx.outputCap);
  const err = cap(stderr, ctx.outputCap);
  return {
    exitCode,
    stdout: out.text,
    stderr: err.text,
    durationMs: elapsed(started),
    timedOut,
    truncated: truncated || out.truncated || err.truncated,
    ...(preSteps.length ? { preSteps } : {}),
  };
}

function inProcess(out: ExecOutcome, call: ToolCall, ctx: ToolContext, started: number): Promise<ExecOutcome> | ExecOutcome {
  if (out.refused || call.pipeline.length === 0) return scrubOutcome(out, ctx);
  const asSpawn: SpawnResult = {
    exitCode: out.exitCode,
    signal: null,
    stdout: out.stdout,
    stderr: out.stderr,
    durationMs: out.durationMs,
    timedOut: out.timedOut,
    truncated: out.truncated,
  };
  return finish(ctx, started, asSpawn, call.pipeline, out.preSteps ? out.preSteps.map((p) => ({ ...p, excerpt: ctx.secrets.scrub(p.excerpt) })) : []);
}

function scrubOutcome(o: ExecOutcome, ctx: ToolContext): ExecOutcome {
  return {
    ...o,
    stdout: ctx.secrets.scrub(o.stdout),
    stderr: ctx.secrets.scrub(o.stderr),
    ...(o.preSteps ? { preSteps: o.preSteps.map((p) => ({ ...p, excerpt: ctx.secrets.scrub(p.excerpt) })) } : {}),
  };
}
