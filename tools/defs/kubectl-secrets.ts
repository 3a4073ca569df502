// Where a kubectl line may carry a secret handle: into the data of one Secret, and nowhere
// else. In an annotation, a label, a ConfigMap, an env var, a Secret's metadata or a key name
// the value would be stored where later reads (describe, get, -L) show it, to runs whose
// broker no longer knows it and so cannot scrub it.

import { hasHandles } from '../secret-broker.js';

/** The core Secret resource as kubectl names it (`secret`, `secrets`, `secrets.v1.`), not a look-alike CRD. */
export const SECRET_RESOURCE = /^secrets?(?:\.v1\.?)?$/i;

const SINK_HINT =
  'handles go only into the data of one Secret: `kubectl create secret generic NAME --from-literal=KEY={{secret:…}}` or `kubectl patch secret NAME -p \'{"stringData":{"KEY":"{{secret:…}}"}}\'`';

export interface HandleUse {
  verb: string;
  /** Positionals after kubectl's global flags: the verb first. */
  positionals: readonly string[];
  flags: ReadonlyMap<string, string | true>;
  /** Every --from-literal value, in order (a flag may repeat). */
  fromLiterals: readonly string[];
  /** Where handles appear: `--flag`, `argument …` or `the command after --`. */
  handlesIn: ReadonlySet<string>;
  paths: readonly string[];
}

/** Null when every handle of the line goes into a Secret's data; else why not. */
export function handleSinkRefusal(u: HandleUse): string | null {
  const where = [...u.handlesIn].join(', ');
  const only = (flag: string): boolean => [...u.handlesIn].every((h) => h === flag);
  if (u.verb === 'create' && u.positionals[1] === 'secret' && only('--from-literal')) {
    // KEY=VALUE: a key name is printed by describe; only the value may be secret.
    // The first `=` must come before any handle: a ref may hold `=`, and so may its value.
    const badKey = u.fromLiterals.find((v) => hasHandles(v) && (v.indexOf('=') === -1 || v.indexOf('{{') < v.indexOf('=')));
    if (badKey !== undefined) return `a secret handle in the key of --from-literal=${badKey}; key names are shown by describe; ${SINK_HINT}`;
    return null;
  }
  if (u.verb === 'patch' && only('--patch') && u.paths.length === 0) {
    const target = oneSecret(u.positionals.slice(1));
    if (target !== null) return `\`kubectl patch\` with a secret handle must name exactly one Secret (${target}); ${SINK_HINT}`;
    const patch = u.flags.get('patch');
    const type = u.flags.get('type');
    const bad = typeof patch === 'string' ? dataOnlyPatch(patch, typeof type === 'string' ? type.toLowerCase() : 'strategic') : 'no patch';
    if (bad !== null) return `a secret handle in this patch ${bad}; ${SINK_HINT}`;
    return null;
  }
  return `a secret handle in ${where} of \`${u.verb}\` would store or show the value outside a Secret's data; ${SINK_HINT}`;
}

/** Null when the resource arguments name exactly one Secret (`secret NAME` or `secret/NAME`). */
function oneSecret(args: readonly string[]): string | null {
  const [a, b, ...rest] = args;
  if (a === undefined) return 'no resource given';
  if (rest.length > 0 || a.includes(',') || (b !== undefined && (b.includes(',') || b.includes('/')))) return `it names ${args.join(' ')}`;
  const slash = a.indexOf('/');
  if (slash !== -1) return b === undefined && SECRET_RESOURCE.test(a.slice(0, slash)) ? null : `it names ${args.join(' ')}`;
  return b !== undefined && SECRET_RESOURCE.test(a) ? null : `it names ${args.join(' ')}`;
}

/** Null when the patch only sets string values under data/stringData; else what it does besides. */
function dataOnlyPatch(text: string, type: string): string | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return 'is not JSON (write it as JSON so it can be checked)';
  }
  if (type === 'json') {
    if (!Array.isArray(value)) return 'is not a JSON patch array';
    for (const op of value as unknown[]) {
      const o = op as { op?: unknown; path?: unknown; value?: unknown } | null;
      if (!o || (o.op !== 'add' && o.op !== 'replace') || typeof o.path !== 'string' || !/^\/(?:data|stringData)\/[^/]+$/.test(o.path) || typeof o.value !== 'string')
        return `has an operation other than add/replace of a string at /data/KEY or /stringData/KEY (${JSON.stringify(op)})`;
      if (hasHandles(o.path)) return `puts a handle in the key ${o.path}`;
    }
    return null;
  }
  if (type !== 'strategic' && type !== 'merge') return `has --type=${type}`;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return 'is not a JSON object';
  for (const [k, v] of Object.entries(value)) {
    if (k !== 'data' && k !== 'stringData') return `sets \`${k}\`, not only data/stringData`;
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return `sets ${k} to something other than a map of strings`;
    for (const [key, s] of Object.entries(v)) {
      if (typeof s !== 'string') return `sets ${k}.${key} to something other than a string`;
      if (hasHandles(key)) return `puts a handle in the key ${k}.${key}`;
    }
  }
  return null;
}

/**
 * A JSON patch on a Secret that copies or moves its data elsewhere (to an annotation, say) would
 * put the value where `describe` shows it: refused, with or without a handle.
 */
export function secretCopyRefusal(patch: string | true | undefined, type: string | true | undefined): string | null {
  if (typeof type !== 'string' || type.toLowerCase() !== 'json' || typeof patch !== 'string') return null;
  let ops: unknown;
  try {
    ops = JSON.parse(patch);
  } catch {
    // kubectl reads -p as YAML too; what cannot be checked here is refused.
    return 'a JSON patch on a Secret must be written as JSON (not YAML) so its operations can be checked';
  }
  if (!Array.isArray(ops)) return null;
  const bad = (ops as Array<{ op?: unknown; from?: unknown }>).find((o) => o && (o.op === 'copy' || o.op === 'move'));
  return bad ? `a JSON patch \`${String(bad.op)}\` on a Secret can carry its data where describe shows it; set values with add/replace under /data or /stringData` : null;
}
