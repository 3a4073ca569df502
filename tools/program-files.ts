// Files another program will read (kubectl -f/-k/--from-file/--from-env-file/--patch-file): the
// policy checked the paths as written; here, at run time, each is resolved as the kernel will,
// a folder is walked, a kustomization's references are followed, and every file must lie inside
// the roots and hold no known secret value unless the program puts it into a Secret.
import { promises as fsp, type Stats } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { contained, inside, resolveRoots } from './files-ops.js';

export interface ProgramFileChecks {
  /** The broker's scrub: a file whose text it changes holds a known secret (in some form). */
  scrub: (text: string) => string;
  /** Null: the program may read such files (it writes them into a Secret); else why not. */
  secretRefusal: string | null;
  /** A YAML parser for kustomizations; without one a kustomization is refused (unchecked). */
  parseYaml?: (text: string) => { ok: true; data: unknown } | { ok: false; message: string };
}

type Problem = { code: string; message: string };

/** Files and folders looked at per call at most, and bytes per file. */
const WALK_LIMIT = 2000;
const FILE_BYTES = 8 * 1024 * 1024;
const KUSTOMIZATION = /^(?:kustomization\.ya?ml|Kustomization)$/;

/**
 * Null when every path (and everything it stands for) is inside the roots and passes `checks`;
 * else the problem with the first one that does not. Without `checks`, only the paths themselves.
 */
export async function pathsWithinRoots(tool: string, paths: readonly string[], roots: string[], checks?: ProgramFileChecks): Promise<Problem | null> {
  const real = await resolveRoots(roots);
  for (const p of paths) {
    const r = await contained(p, real, false, tool);
    if (typeof r !== 'string') return { code: r.code, message: r.message };
    if (checks) {
      const bad = await walk(tool, p, r, real, checks);
      if (bad) return bad;
    }
  }
  return null;
}

/**
 * Every file `shown` (resolved to `real`) stands for: a folder is walked, a kustomization's
 * references are added to the walk. Each place must resolve inside the roots (a link in a
 * folder is followed by the program) and is visited once (a link loop ends). Refuses what it
 * cannot check rather than pass it.
 */
async function walk(tool: string, shown: string, real: string, roots: string[], checks: ProgramFileChecks): Promise<Problem | null> {
  const pending = [real];
  const visited = new Set<string>();
  while (pending.length > 0) {
    const cur = pending.pop()!;
    let st: Stats;
    let at: string;
    try {
      at = await fsp.realpath(cur);
      st = await fsp.stat(at);
    } catch {
      continue; // gone or dangling: the program reports it
    }
    if (!roots.some((r) => inside(at, r))) return { code: `${tool}-outside-roots`, message: `${tool}: ${cur} (under ${shown}) resolves to ${at}, outside the configured roots (${roots.join(', ')})` };
    if (visited.has(at)) continue;
    visited.add(at);
    if (visited.size > WALK_LIMIT) return { code: `${tool}-too-many-files`, message: `${tool}: ${shown} holds more than ${WALK_LIMIT} files and folders to check; name a smaller folder` };
    if (st.isDirectory()) {
      for (const name of (await fsp.readdir(at)).sort()) pending.push(join(at, name));
      continue;
    }
    if (!st.isFile()) continue;
    if (st.size > FILE_BYTES) return { code: `${tool}-file-too-big`, message: `${tool}: ${at} is over ${FILE_BYTES / 1048576} MiB, too big to check` };
    const text = await fsp.readFile(at, 'utf8');
    if (checks.secretRefusal !== null && checks.scrub(text) !== text) return { code: `${tool}-secret-file`, message: `${tool}: ${at} holds a secret value; ${checks.secretRefusal}` };
    if (KUSTOMIZATION.test(basename(at))) {
      const refs = kustomizationRefs(text, checks.parseYaml);
      if (!refs.ok) return { code: `${tool}-kustomization`, message: `${tool}: ${at}: ${refs.message}` };
      for (const ref of refs.local) pending.push(resolve(dirname(at), ref));
    }
  }
  return null;
}

/** Fields of a kustomization whose string entries name files or folders (kustomize v5). */
const LIST_FIELDS = ['resources', 'bases', 'components', 'crds', 'configurations', 'generators', 'transformers', 'validators', 'patchesStrategicMerge'] as const;
/** Fields holding a list of objects with a `path`. */
const PATH_LIST_FIELDS = ['patches', 'patchesJson6902', 'replacements'] as const;
const GENERATORS = ['configMapGenerator', 'secretGenerator'] as const;

/** kustomize's remote forms: a URL, git@…, a `?ref=`, a `repo//subdir`, or a host/path. */
function isRemote(ref: string): boolean {
  return /:\/\/|^git@|\?ref=|\S\/\/|^[a-z0-9-]+(?:\.[a-z0-9-]+)+\/\S/i.test(ref);
}

/**
 * The local files and folders a kustomization reads, or why it cannot be vetted: a remote base
 * (fetched from outside), a Helm chart (pulled and rendered), or a file that does not parse.
 */
export function kustomizationRefs(
  text: string,
  parseYaml: ProgramFileChecks['parseYaml'],
): { ok: true; local: string[] } | { ok: false; message: string } {
  if (!parseYaml) return { ok: false, message: 'a kustomization cannot be checked here (no YAML parser); refused' };
  const parsed = parseYaml(text);
  if (!parsed.ok) return { ok: false, message: `does not parse as YAML (${parsed.message}); refused` };
  const doc = parsed.data;
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) return { ok: false, message: 'is not a YAML mapping; refused' };
  const k = doc as Record<string, unknown>;
  if (k['helmCharts'] !== undefined || k['helmGlobals'] !== undefined || k['helmChartInflationGenerator'] !== undefined)
    return { ok: false, message: 'uses Helm charts, which kustomize pulls and renders from outside; render them first and apply the manifests' };
  const refs: string[] = [];
  const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : typeof v === 'string' ? [v] : []);
  for (const f of LIST_FIELDS) {
    // An inline patch (several lines) is content, not a path.
    for (const s of strings(k[f])) if (!s.includes('\n')) refs.push(s);
  }
  for (const f of PATH_LIST_FIELDS) {
    for (const item of Array.isArray(k[f]) ? (k[f] as unknown[]) : []) {
      const path = (item as { path?: unknown } | null)?.path;
      if (typeof path === 'string') refs.push(path);
      const source = (item as { source?: { path?: unknown } } | null)?.source?.path;
      if (typeof source === 'string') refs.push(source);
    }
  }
  for (const f of GENERATORS) {
    for (const g of Array.isArray(k[f]) ? (k[f] as Array<Record<string, unknown>>) : []) {
      if (g === null || typeof g !== 'object') continue;
      // files: `KEY=PATH` or `PATH`; envs/env: paths.
      for (const s of strings(g['files'])) refs.push(s.includes('=') ? s.slice(s.indexOf('=') + 1) : s);
      for (const s of [...strings(g['envs']), ...strings(g['env'])]) refs.push(s);
    }
  }
  const openapi = (k['openapi'] as { path?: unknown } | undefined)?.path;
  if (typeof openapi === 'string') refs.push(openapi);
  const remote = refs.find(isRemote);
  if (remote !== undefined) return { ok: false, message: `refers to \`${remote}\`, which kustomize fetches from outside; only local files and folders inside the roots are vetted` };
  return { ok: true, local: refs };
}
