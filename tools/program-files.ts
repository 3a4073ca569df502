// Files another program will read (kubectl -f/-k/--from-file/--from-env-file/--patch-file): the
// policy checked the paths as written; here, at run time, each is resolved as the kernel will,
// a folder is walked, a kustomization's references are followed, and every file must lie inside
// the roots and hold no known secret value unless the program puts it into a Secret.
import { promises as fsp, type Stats } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { contained, resolveRoots } from './files-ops.js';
import { inside } from './fs-verified.js';

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
  // By resolved path, and whether it was reached under a kustomization's name (a link named
  // kustomization.yaml to a file seen plainly before must still be parsed).
  const visited = new Set<string>();
  let steps = 0;
  while (pending.length > 0) {
    const cur = pending.pop()!;
    // Every place counts, missing ones too: a kustomization listing a million names ends here.
    if (++steps > WALK_LIMIT) return { code: `${tool}-too-many-files`, message: `${tool}: ${shown} holds or names more than ${WALK_LIMIT} files and folders to check; name a smaller folder` };
    let st: Stats;
    let at: string;
    try {
      at = await fsp.realpath(cur);
      st = await fsp.stat(at);
    } catch {
      continue; // gone or dangling: the program reports it
    }
    if (!roots.some((r) => inside(at, r))) return { code: `${tool}-outside-roots`, message: `${tool}: ${cur} (under ${shown}) resolves to ${at}, outside the configured roots (${roots.join(', ')})` };
    // kustomize goes by the name it opened, and resolves references from that name's folder.
    const isKustomization = st.isFile() && KUSTOMIZATION.test(basename(cur));
    const key = `${isKustomization ? 'k' : 'f'}${at}`;
    if (visited.has(key)) continue;
    visited.add(key);
    if (st.isDirectory()) {
      for (const name of (await fsp.readdir(at)).sort()) pending.push(join(at, name));
      continue;
    }
    if (!st.isFile()) continue;
    const cap = isKustomization ? KUSTOMIZATION_BYTES : FILE_BYTES;
    if (st.size > cap) return { code: `${tool}-file-too-big`, message: `${tool}: ${at} is over ${cap / 1024} KiB, too big to check` };
    const text = await fsp.readFile(at, 'utf8');
    if (checks.secretRefusal !== null && checks.scrub(text) !== text) return { code: `${tool}-secret-file`, message: `${tool}: ${at} holds a secret value; ${checks.secretRefusal}` };
    if (isKustomization) {
      const refs = kustomizationRefs(text, checks.parseYaml);
      if (!refs.ok) return { code: `${tool}-kustomization`, message: `${tool}: ${cur}: ${refs.message}` };
      for (const ref of refs.local) pending.push(resolve(dirname(cur), ref));
    }
  }
  return null;
}

/**
 * A kustomization's keys, by level, as kustomize v5 knows them: anything else (a misspelling, a
 * different case that Go's decoder would still match, a YAML merge key `<<`) is refused, since
 * what is not recognised here cannot be followed. kustomize refuses unknown fields itself.
 */
const TOP_KEYS = new Set([
  'apiVersion', 'kind', 'metadata', 'resources', 'bases', 'components', 'crds', 'configurations',
  'patches', 'patchesStrategicMerge', 'patchesJson6902', 'replacements', 'configMapGenerator', 'secretGenerator',
  'generatorOptions', 'namespace', 'namePrefix', 'nameSuffix', 'commonLabels', 'commonAnnotations', 'labels',
  'images', 'replicas', 'vars', 'openapi', 'sortOptions', 'buildMetadata',
]);
const ITEM_KEYS: Readonly<Record<string, ReadonlySet<string>>> = {
  patches: new Set(['path', 'patch', 'target', 'options']),
  patchesJson6902: new Set(['path', 'patch', 'target']),
  replacements: new Set(['path', 'source', 'targets']),
  configMapGenerator: new Set(['name', 'namespace', 'behavior', 'files', 'literals', 'envs', 'env', 'options']),
  secretGenerator: new Set(['name', 'namespace', 'behavior', 'files', 'literals', 'envs', 'env', 'options', 'type']),
};
/** Plugins: kustomize loads and runs what they name; not vetted. */
const PLUGIN_KEYS = ['generators', 'transformers', 'validators', 'helmCharts', 'helmGlobals', 'helmChartInflationGenerator'];
/** Fields whose string entries name files or folders. */
const LIST_FIELDS = ['resources', 'bases', 'components', 'crds', 'configurations', 'patchesStrategicMerge'] as const;
/** A kustomization is small; a bigger one costs the gate's time to parse, so it is refused. */
const KUSTOMIZATION_BYTES = 256 * 1024;

/**
 * kustomize's remote forms (v5): a URL, `git::…`, `user@host:…` (ssh), `github.com/…` or
 * `github.com:…`. Everything else is read as a local path (`my.dir/x.yaml`, `base.v2` are local).
 */
export function isRemote(ref: string): boolean {
  const s = ref.replace(/^git::/i, '');
  return /^git::/i.test(ref) || s.includes('://') || /^[a-z][a-z0-9._-]*@/i.test(s) || /^github\.com[:/]/i.test(s);
}

type Refs = { ok: true; local: string[] } | { ok: false; message: string };

/**
 * The local files and folders a kustomization reads, or why it cannot be vetted: a remote base
 * (fetched from outside), a plugin or Helm chart, a key not recognised, or a file that does not
 * parse.
 */
export function kustomizationRefs(text: string, parseYaml: ProgramFileChecks['parseYaml']): Refs {
  if (!parseYaml) return { ok: false, message: 'a kustomization cannot be checked here (no YAML parser); refused' };
  const parsed = parseYaml(text);
  if (!parsed.ok) return { ok: false, message: `does not parse as YAML (${parsed.message}); refused` };
  const doc = parsed.data;
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) return { ok: false, message: 'is not a YAML mapping; refused' };
  const k = doc as Record<string, unknown>;
  const plugin = PLUGIN_KEYS.find((p) => k[p] !== undefined);
  if (plugin !== undefined) return { ok: false, message: `uses \`${plugin}\`: kustomize would load and run what it names (plugins, Helm charts); render them first and apply the manifests` };
  const unknown = Object.keys(k).find((key) => !TOP_KEYS.has(key));
  if (unknown !== undefined) return { ok: false, message: `has the key \`${unknown}\`, which is not a kustomization field vetted here; refused` };
  const refs: string[] = [];
  const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : typeof v === 'string' ? [v] : []);
  for (const f of LIST_FIELDS) {
    for (const s of strings(k[f])) {
      // An inline strategic-merge patch (several lines) is content, not a path; elsewhere a line
      // break or control character has no business in a name.
      if (f === 'patchesStrategicMerge' && s.includes('\n')) continue;
      if ([...s].some((ch) => ch.charCodeAt(0) < 0x20)) return { ok: false, message: `names \`${JSON.stringify(s)}\` in ${f}, with a control character; refused` };
      refs.push(s);
    }
  }
  for (const [f, allowed] of Object.entries(ITEM_KEYS)) {
    for (const item of Array.isArray(k[f]) ? (k[f] as unknown[]) : []) {
      if (item === null || typeof item !== 'object' || Array.isArray(item)) continue;
      const o = item as Record<string, unknown>;
      const bad = Object.keys(o).find((key) => !allowed.has(key));
      if (bad !== undefined) return { ok: false, message: `has the key \`${bad}\` in ${f}, which is not vetted here; refused` };
      if (typeof o['path'] === 'string') refs.push(o['path']);
      // Generators: files are `KEY=PATH` or `PATH`; envs/env are paths.
      for (const s of strings(o['files'])) refs.push(s.includes('=') ? s.slice(s.indexOf('=') + 1) : s);
      for (const s of [...strings(o['envs']), ...strings(o['env'])]) refs.push(s);
    }
  }
  const openapi = k['openapi'];
  if (openapi !== undefined) {
    if (openapi === null || typeof openapi !== 'object' || Object.keys(openapi).some((x) => x !== 'path' && x !== 'version'))
      return { ok: false, message: 'has an openapi entry other than `path`/`version`; refused' };
    const path = (openapi as { path?: unknown }).path;
    if (typeof path === 'string') refs.push(path);
  }
  const remote = refs.find(isRemote);
  if (remote !== undefined) return { ok: false, message: `refers to \`${remote}\`, which kustomize fetches from outside; only local files and folders inside the roots are vetted` };
  return { ok: true, local: refs };
}
