// What `opscrew doctor` does (loaded lazily). Every check is data: ok / warn / fail with a
// one-line fix. Probes are in-process and bounded (TCP connect, one HTTP GET); version commands
// go through tools/exec.ts; the kube-context listing goes through the gate as a person (a vetted,
// audited read). Nothing here logs in anywhere or changes a system.
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import type { Config } from '../../mcp-server/core/config.js';
import { formatIssue } from '../../mcp-server/core/errors.js';
import { compareVersions, MIN_SQLITE_VERSION, openStore, type Store } from '../../mcp-server/core/store.js';
import { resolveWorkspace, type Workspace } from '../../mcp-server/core/workspace.js';
import type { Spawner } from '../../tools/types.js';
import type { DoctorOptions } from './cmd-doctor.js';
import { CliError } from './context.js';
import { EXIT } from './exit-codes.js';
import { loadWorkspaceConfig, PERSON } from './lint-context.js';
import { printJson, type CliIO } from './output.js';
import { packageRoot } from './paths.js';

export type CheckStatus = 'ok' | 'warn' | 'fail';

export interface DoctorCheck {
  /** Stable id, e.g. `config`, `binary.kubectl`, `ssh.edge-1`. */
  name: string;
  status: CheckStatus;
  message: string;
  /** One line a person can act on (absent when ok). */
  fix?: string;
}

export interface DoctorReport {
  ok: boolean;
  workspace: string;
  checks: DoctorCheck[];
}

export interface DoctorDeps {
  /** Per probe (TCP connect, HTTP GET, version command), ms. */
  timeoutMs: number;
  /** Runs version commands; default tools/exec.ts. */
  spawn?: Spawner;
  /** Where the specialist profiles live; default the package's agents/specialists. */
  specialistsDir?: string;
}

const OUTPUT_CAP = 64 * 1024;
const MAX_TIMEOUT_MS = 60_000;

export async function runDoctor(io: CliIO, dir: string, opts: DoctorOptions): Promise<number> {
  const timeoutMs = Number(opts.timeout ?? '3000');
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > MAX_TIMEOUT_MS) {
    throw new CliError(EXIT.USAGE, `--timeout must be a whole number of milliseconds between 1 and ${MAX_TIMEOUT_MS}`);
  }
  const report = await doctor(io, dir, { timeoutMs });
  if (opts.json) printJson(io, report);
  else io.out(formatReport(report));
  return report.ok ? EXIT.OK : EXIT.FAILED;
}

export function formatReport(r: DoctorReport): string {
  const mark: Record<CheckStatus, string> = { ok: 'ok  ', warn: 'WARN', fail: 'FAIL' };
  const lines = r.checks.map((c) => `${mark[c.status]}  ${c.name}: ${c.message}${c.fix ? `\n      fix: ${c.fix}` : ''}`);
  const fails = r.checks.filter((c) => c.status === 'fail').length;
  const warns = r.checks.filter((c) => c.status === 'warn').length;
  lines.push('', fails === 0 ? `ready (${warns} warning${warns === 1 ? '' : 's'})` : `${fails} check${fails === 1 ? '' : 's'} failed, ${warns} warning${warns === 1 ? '' : 's'}`);
  return `${lines.join('\n')}\n`;
}

/** Runs every check that applies to this workspace's config; never throws for a failing check. */
export async function doctor(io: CliIO, dir: string, deps: DoctorDeps): Promise<DoctorReport> {
  const checks: DoctorCheck[] = [];
  const add = (c: DoctorCheck): void => void checks.push(c);
  const ws = resolveWorkspace(dir);
  const isWorkspace = existsSync(ws.tasksDir);
  add(
    isWorkspace
      ? { name: 'workspace', status: 'ok', message: ws.root }
      : { name: 'workspace', status: 'fail', message: `${ws.root} is not an opscrew workspace (no tasks/ folder)`, fix: `run \`opscrew init ${ws.root}\` or pass --workspace DIR` },
  );

  const loaded = await loadWorkspaceConfig(ws, io);
  const config = loaded.ok ? loaded.config : null;
  if (loaded.ok) {
    add({ name: 'config', status: 'ok', message: loaded.fromFile ? `${ws.configPath} is valid (mode ${loaded.config.mode}, brain ${loaded.config.brain})` : 'no opscrew.config.yaml: defaults (empty scopes)' });
  } else {
    const first = loaded.issues[0];
    add({
      name: 'config',
      status: 'fail',
      message: `opscrew.config.yaml is invalid: ${loaded.issues.map(formatIssue).join('; ')}`,
      fix: first?.fix ? `${first.field ? `${first.field}: ` : ''}${first.fix}` : `edit ${ws.configPath} at the lines named`,
    });
  }

  add(await specialistsCheck(deps.specialistsDir));

  const store = storeCheck(ws, isWorkspace, add);
  try {
    if (config) await configuredChecks(io, ws, config, store, deps, add);
    else add({ name: 'targets', status: 'warn', message: 'binaries, contexts, hosts, Vault and compose files not checked: the config is invalid', fix: 'fix the config, then run opscrew doctor again' });
  } finally {
    store?.close();
  }
  add(claudeCheck(io, config));
  return { ok: checks.every((c) => c.status !== 'fail'), workspace: ws.root, checks };
}

async function specialistsCheck(dirOverride: string | undefined): Promise<DoctorCheck> {
  const { loadSpecialists } = await import('../../mcp-server/core/specialists.js');
  let dir: string;
  try {
    dir = dirOverride ?? join(packageRoot(), 'agents', 'specialists');
  } catch (e) {
    return { name: 'specialists', status: 'fail', message: String(e), fix: 'reinstall opscrew (npm ci)' };
  }
  const r = loadSpecialists(dir);
  if (!r.ok) return { name: 'specialists', status: 'fail', message: r.message.split('\n').join('; '), fix: `fix the profiles named in ${dir}` };
  if (r.value.length === 0) return { name: 'specialists', status: 'warn', message: `no specialist profiles in ${dir}: only the observer exists`, fix: 'reinstall opscrew or add profiles to agents/specialists/' };
  return { name: 'specialists', status: 'ok', message: `${r.value.length} profiles: ${r.value.map((s) => s.name).join(', ')}` };
}

/** Opens the workspace store (or, outside a workspace, an in-memory one: the linked SQLite is what matters). */
function storeCheck(ws: Workspace, isWorkspace: boolean, add: (c: DoctorCheck) => void): Store | null {
  let store: Store;
  try {
    store = openStore(isWorkspace ? ws.dbPath : ':memory:');
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    const fix = code === 'sqlite-too-old' ? `reinstall with a better-sqlite3 that bundles SQLite >= ${MIN_SQLITE_VERSION} (npm ci)` : `check that ${ws.stateDir} is writable and the file is an opscrew database`;
    add({ name: 'store', status: 'fail', message: e instanceof Error ? e.message : String(e), fix });
    return null;
  }
  const v = store.sqliteVersion;
  if (compareVersions(v, MIN_SQLITE_VERSION) < 0) {
    add({ name: 'store', status: 'fail', message: `SQLite ${v} is older than ${MIN_SQLITE_VERSION}`, fix: 'reinstall with a newer better-sqlite3 (npm ci)' });
  } else {
    add({ name: 'store', status: 'ok', message: `${isWorkspace ? ws.dbPath : 'in-memory (no workspace)'} opens; SQLite ${v} (>= ${MIN_SQLITE_VERSION})` });
  }
  return store;
}

async function configuredChecks(io: CliIO, ws: Workspace, config: Config, store: Store | null, deps: DoctorDeps, add: (c: DoctorCheck) => void): Promise<void> {
  const { runProcess, baseEnv } = await import('../../tools/exec.js');
  const spawn = deps.spawn ?? runProcess;
  const env = baseEnv({}, io.env);
  const version = async (file: string, args: string[], extra: Record<string, string> = {}): Promise<{ ok: boolean; text: string; missing: boolean }> => {
    const r = await spawn({ file, args, env: { ...env, ...extra }, cwd: ws.root, timeoutMs: deps.timeoutMs, outputCap: OUTPUT_CAP });
    const text = `${r.stdout}\n${r.stderr}`.trim();
    return { ok: r.exitCode === 0 && !r.spawnError, text, missing: r.spawnError !== undefined && /ENOENT|not found/i.test(r.spawnError) };
  };
  const firstLine = (s: string): string => s.split('\n').find((l) => l.trim() !== '')?.trim().slice(0, 200) ?? '';

  const contexts = Object.keys(config.kubernetes.contexts);
  const projects = Object.entries(config.compose.projects);
  const hosts = Object.entries(config.ssh.hosts);

  // Binaries: only what the configured tools need (jq always: it is the JSON filter of pipelines).
  let kubectlOk = false;
  if (contexts.length > 0) {
    const r = await version('kubectl', ['version', '--client', '-o', 'json']);
    const v = r.ok ? parseKubectlVersion(r.text) : null;
    kubectlOk = r.ok;
    add(
      r.ok
        ? { name: 'binary.kubectl', status: 'ok', message: `kubectl ${v ?? firstLine(r.text)}` }
        : { name: 'binary.kubectl', status: 'fail', message: r.missing ? 'kubectl is not on PATH' : `kubectl version failed: ${firstLine(r.text)}`, fix: 'install kubectl (https://kubernetes.io/docs/tasks/tools/) or remove kubernetes.contexts from the config' },
    );
  }
  if (projects.length > 0) {
    const dockerHost: Record<string, string> = config.compose.docker_host ? { DOCKER_HOST: config.compose.docker_host } : {};
    const v2 = await version('docker', ['compose', 'version', '--short'], dockerHost);
    if (v2.ok) add({ name: 'binary.compose', status: 'ok', message: `\`docker compose\` ${firstLine(v2.text)}` });
    else {
      const v1 = await version('docker-compose', ['version', '--short'], dockerHost);
      add(
        v1.ok
          ? { name: 'binary.compose', status: 'ok', message: `\`docker-compose\` ${firstLine(v1.text)}` }
          : { name: 'binary.compose', status: 'fail', message: 'neither `docker compose` (v2) nor `docker-compose` (v1) runs', fix: 'install the docker compose plugin (or docker-compose), or remove compose.projects from the config' },
      );
    }
  }
  if (hosts.length > 0) {
    const r = await version('ssh', ['-V']);
    add(
      r.ok
        ? { name: 'binary.ssh', status: 'ok', message: firstLine(r.text) }
        : { name: 'binary.ssh', status: 'fail', message: r.missing ? 'ssh is not on PATH' : `ssh -V failed: ${firstLine(r.text)}`, fix: 'install the OpenSSH client, or remove ssh.hosts from the config' },
    );
  }
  {
    const r = await version('jq', ['--version']);
    add(
      r.ok
        ? { name: 'binary.jq', status: 'ok', message: firstLine(r.text) }
        : { name: 'binary.jq', status: 'warn', message: r.missing ? 'jq is not on PATH: `| jq` filters in task steps will fail' : `jq --version failed: ${firstLine(r.text)}`, fix: 'install jq (apt-get install jq / brew install jq)' },
    );
  }

  if (contexts.length > 0) await kubeContextsCheck(io, config, store, kubectlOk, add);
  for (const [name, h] of hosts) add(await tcpCheck(`ssh.${name}`, h.host, h.port, deps.timeoutMs, `check that ${h.host}:${h.port} is up and reachable from here, or fix ssh.hosts.${name} in the config`));
  if (config.vault.paths.length > 0) add(await vaultCheck(io, config, deps.timeoutMs));
  for (const [name, p] of projects) {
    add(existsSync(p.file) ? { name: `compose.${name}`, status: 'ok', message: p.file } : { name: `compose.${name}`, status: 'fail', message: `${p.file} does not exist`, fix: `create it or fix compose.projects.${name}.file in the config` });
  }
  for (const root of config.files.roots) {
    if (!existsSync(root)) add({ name: `files.${root}`, status: 'warn', message: `files root ${root} does not exist`, fix: `create it or remove it from files.roots in the config` });
  }
  if (config.files.roots.length > 0 && config.files.roots.every((r) => existsSync(r))) {
    add({ name: 'files', status: 'ok', message: `${config.files.roots.length === 1 ? 'the root exists' : `all ${config.files.roots.length} roots exist`}: ${config.files.roots.join(', ')}` });
  }
}

export function parseKubectlVersion(text: string): string | null {
  try {
    const j = JSON.parse(text.slice(text.indexOf('{'), text.lastIndexOf('}') + 1)) as { clientVersion?: { gitVersion?: unknown } };
    return typeof j.clientVersion?.gitVersion === 'string' ? j.clientVersion.gitVersion : null;
  } catch {
    return null;
  }
}

/** `kubectl config get-contexts -o name` through the gate as a person: every configured context must be in the kubeconfig. */
async function kubeContextsCheck(io: CliIO, config: Config, store: Store | null, kubectlOk: boolean, add: (c: DoctorCheck) => void): Promise<void> {
  const contexts = Object.keys(config.kubernetes.contexts);
  if (!kubectlOk || !store) {
    add({ name: 'kube.contexts', status: 'warn', message: 'not checked: ' + (!kubectlOk ? 'kubectl does not run' : 'the store did not open'), fix: 'fix the check above, then run opscrew doctor again' });
    return;
  }
  const [{ runLine }, { createSecretBroker }] = await Promise.all([import('../../mcp-server/core/gate.js'), import('../../tools/secret-broker.js')]);
  // `config get-contexts` reads only the kubeconfig; the gate still wants a configured context named.
  const ctxName = config.kubernetes.default_context ?? contexts[0] ?? '';
  const line = `kubectl --context ${ctxName} config get-contexts -o name`;
  const r = await runLine({ db: store.db, config, env: { ...io.env }, broker: createSecretBroker(), now: io.now }, { line, agent: PERSON, scope: 'person' });
  if (!r.executed || !r.outcome || r.outcome.exitCode !== 0) {
    const why = r.parseError?.message ?? r.execError?.message ?? (r.executed ? firstNonEmpty(r.outcome?.stderr) || `exit ${String(r.outcome?.exitCode)}` : `${r.decision.verdict} (${r.decision.rule}): ${r.decision.reason}`);
    add({ name: 'kube.contexts', status: 'fail', message: `cannot list the kubeconfig's contexts (${config.kubernetes.kubeconfig}): ${why}`, fix: 'check kubernetes.kubeconfig in the config (or $KUBECONFIG) points at a readable kubeconfig' });
    return;
  }
  const known = new Set(r.outcome.stdout.split('\n').map((s) => s.trim()).filter((s) => s !== ''));
  const missing = contexts.filter((c) => !known.has(c));
  add(
    missing.length === 0
      ? { name: 'kube.contexts', status: 'ok', message: `${contexts.join(', ')} in ${config.kubernetes.kubeconfig}` }
      : {
          name: 'kube.contexts',
          status: 'fail',
          message: `not in the kubeconfig ${config.kubernetes.kubeconfig}: ${missing.join(', ')} (it has: ${[...known].join(', ') || 'none'})`,
          fix: `add the context${missing.length === 1 ? '' : 's'} to the kubeconfig, or rename/remove kubernetes.contexts.${missing[0] ?? ''} in the config`,
        },
  );
}

function firstNonEmpty(s: string | undefined): string {
  return (s ?? '').split('\n').find((l) => l.trim() !== '')?.trim().slice(0, 200) ?? '';
}

/** A bare TCP connect with a deadline: says the port answers, not that ssh login works. */
export function tcpCheck(name: string, host: string, port: number, timeoutMs: number, fix: string): Promise<DoctorCheck> {
  return new Promise((resolve) => {
    const sock = connect({ host, port });
    let settled = false;
    const finish = (c: DoctorCheck): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.on('error', () => undefined); // late errors after the verdict are not news
      sock.destroy();
      resolve(c);
    };
    const timer = setTimeout(() => finish({ name, status: 'fail', message: `${host}:${port} did not answer within ${timeoutMs} ms`, fix }), timeoutMs);
    sock.once('connect', () => finish({ name, status: 'ok', message: `${host}:${port} accepts TCP connections` }));
    sock.once('error', (e: NodeJS.ErrnoException) => finish({ name, status: 'fail', message: `${host}:${port} unreachable: ${e.code ?? e.message}`, fix }));
  });
}

async function vaultCheck(io: CliIO, config: Config, timeoutMs: number): Promise<DoctorCheck> {
  const { address_env: addrEnv, token_env: tokenEnv } = config.vault;
  const addr = io.env[addrEnv]?.trim();
  const token = io.env[tokenEnv]?.trim();
  const unset = [...(addr ? [] : [addrEnv]), ...(token ? [] : [tokenEnv])];
  if (!addr) return { name: 'vault', status: 'fail', message: `$${unset.join(' and $')} not set (vault.paths is configured)`, fix: `export ${addrEnv}=https://vault.example:8200 ${tokenEnv}=…, or set vault.address_env/token_env to the variables you use` };
  let url: URL;
  try {
    url = new URL('/v1/sys/health', addr);
  } catch {
    return { name: 'vault', status: 'fail', message: `$${addrEnv} is not a URL`, fix: `export ${addrEnv}=https://vault.example:8200` };
  }
  let status: number;
  try {
    // The health endpoint needs no token: nothing secret is sent.
    const res = await fetch(url, { method: 'GET', signal: AbortSignal.timeout(timeoutMs), redirect: 'manual' });
    status = res.status;
    await res.body?.cancel();
  } catch (e) {
    const why = e instanceof Error && e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : errText(e);
    return { name: 'vault', status: 'fail', message: `${url.origin} unreachable: ${why}`, fix: `check $${addrEnv} and that Vault is up and reachable from here` };
  }
  const tokenNote = token ? '' : ` but $${tokenEnv} is not set`;
  // Vault's health codes: 200 active, 429 standby, 472/473 DR/performance standby, 501 uninitialised, 503 sealed.
  if (status === 200 || status === 429 || status === 472 || status === 473) {
    return token
      ? { name: 'vault', status: 'ok', message: `${url.origin} healthy (HTTP ${status}); $${tokenEnv} is set` }
      : { name: 'vault', status: 'fail', message: `${url.origin} healthy (HTTP ${status})${tokenNote}`, fix: `export ${tokenEnv}=… (a token allowed to read ${config.vault.paths.join(', ')})` };
  }
  if (status === 503 || status === 501) {
    return { name: 'vault', status: 'fail', message: `${url.origin} is ${status === 503 ? 'sealed' : 'not initialised'} (HTTP ${status})${tokenNote}`, fix: status === 503 ? 'unseal Vault (vault operator unseal)' : 'initialise Vault (vault operator init)' };
  }
  return { name: 'vault', status: 'fail', message: `${url.origin}/v1/sys/health answered HTTP ${status}${tokenNote}`, fix: `check that $${addrEnv} points at Vault` };
}

function claudeCheck(io: CliIO, config: Config | null): DoctorCheck {
  const key = io.env.ANTHROPIC_API_KEY?.trim();
  const wantsClaude = config?.brain === 'claude';
  if (key) return { name: 'claude', status: 'ok', message: 'ANTHROPIC_API_KEY is set: ask/chat answer through Claude; --brain claude is available' };
  if (wantsClaude) return { name: 'claude', status: 'fail', message: 'the config sets brain: claude but ANTHROPIC_API_KEY is not set', fix: 'export ANTHROPIC_API_KEY=…, or set brain: runbook in the config' };
  return { name: 'claude', status: 'ok', message: 'no ANTHROPIC_API_KEY: the runbook brain and the built-in question router are used' };
}

function errText(e: unknown): string {
  const cause = (e as { cause?: { code?: unknown; message?: unknown } } | null)?.cause;
  if (cause && typeof cause.code === 'string') return cause.code;
  return e instanceof Error ? e.message : String(e);
}
