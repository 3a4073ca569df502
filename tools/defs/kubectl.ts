// kubectl: verbs classified as DESIGN §5 says; credential- and target-redirecting flags
// refused; context and namespace made explicit so what runs is what the policy checked.
// Flags are a whitelist: a flag kubectl might read a value for but we do not know could
// make us mistake its value for the resource (and so misclassify `get secret -o yaml`).

import type { Word } from '../tokenize.js';
import type { OpClass, ToolCall } from '../types.js';
import { hasHandles } from '../secret-broker.js';
import { list, makeCall, named, ok, refused, splitLong, unparseable, type ParseContext, type ParseResult } from './common.js';
import { checkOutput, sortByTransform } from './kubectl-output.js';
import { handleSinkRefusal, SECRET_RESOURCE, secretCopyRefusal } from './kubectl-secrets.js';

type FlagKind = 'value' | 'bool' | 'path';

/** Long flags we understand. `bool` flags may also be written `--flag=VALUE`. */
const FLAGS: Readonly<Record<string, FlagKind>> = {
  namespace: 'value', context: 'value', 'request-timeout': 'value',
  output: 'value', selector: 'value', container: 'value', tail: 'value', since: 'value',
  'since-time': 'value', 'field-selector': 'value', replicas: 'value', 'current-replicas': 'value',
  'resource-version': 'value', type: 'value', patch: 'value', 'sort-by': 'value', timeout: 'value',
  'to-revision': 'value', 'label-columns': 'value', template: 'value', 'grace-period': 'value',
  for: 'value', 'max-log-requests': 'value', 'limit-bytes': 'value', revision: 'value', min: 'value',
  max: 'value', 'cpu-percent': 'value', port: 'value', 'target-port': 'value', name: 'value',
  protocol: 'value', 'field-manager': 'value', subresource: 'value', 'chunk-size': 'value',
  'pod-running-timeout': 'value', 'from-literal': 'value', image: 'value', env: 'value',
  'pod-selector': 'value', 'skip-wait-for-delete-timeout': 'value', 'prune-allowlist': 'value',
  namespaces: 'value', verbs: 'value', 'api-group': 'value', 'api-version': 'value', types: 'value',
  'external-ip': 'value', 'cluster-ip': 'value', schedule: 'value', concurrency: 'value',
  limits: 'value', requests: 'value', containers: 'bool',
  filename: 'path', kustomize: 'path', 'from-file': 'path', 'from-env-file': 'path', 'patch-file': 'path',
  'all-namespaces': 'bool', previous: 'bool', timestamps: 'bool', prefix: 'bool', 'show-labels': 'bool',
  'no-headers': 'bool', overwrite: 'bool', local: 'bool', all: 'bool', force: 'bool',
  'ignore-daemonsets': 'bool', 'delete-emptydir-data': 'bool', 'disable-eviction': 'bool', wait: 'bool',
  'dry-run': 'bool', cascade: 'bool', validate: 'bool', recursive: 'bool', 'server-side': 'bool',
  'force-conflicts': 'bool', prune: 'bool', 'ignore-not-found': 'bool', record: 'bool', quiet: 'bool',
  'show-kind': 'bool', 'show-managed-fields': 'bool', 'all-containers': 'bool', 'ignore-errors': 'bool',
  list: 'bool', 'use-protocol-buffers': 'bool', sum: 'bool', client: 'bool', minify: 'bool',
  flatten: 'bool', namespaced: 'bool', 'show-events': 'bool', 'allow-missing-template-keys': 'bool',
  now: 'bool', 'save-config': 'bool', 'windows-line-endings': 'bool', watch: 'bool',
};

/** Flags never accepted, with the reason given to the author. */
const REFUSED_FLAGS: Readonly<Record<string, string>> = {
  server: 'redirects the API server; clusters come from the config',
  kubeconfig: 'redirects credentials; the kubeconfig comes from the config',
  token: 'passes a credential; credentials come from the config',
  as: 'impersonates another identity',
  'as-group': 'impersonates another identity',
  'as-uid': 'impersonates another identity',
  username: 'passes a credential; credentials come from the config',
  password: 'passes a credential; credentials come from the config',
  'client-key': 'redirects credentials; the kubeconfig comes from the config',
  'client-certificate': 'redirects credentials; the kubeconfig comes from the config',
  'certificate-authority': 'redirects trust; the kubeconfig comes from the config',
  'insecure-skip-tls-verify': 'turns off server verification',
  'insecure-skip-tls-verify-backend': 'turns off server verification',
  'tls-server-name': 'redirects server verification',
  cluster: 'redirects the target cluster; use --context',
  user: 'redirects credentials; use --context',
  'cache-dir': 'writes local files',
  'log-file': 'writes local files',
  'log-dir': 'writes local files',
  profile: 'writes local files',
  'profile-output': 'writes local files',
  'output-directory': 'writes local files',
  v: 'verbose logging can print credentials',
  vmodule: 'verbose logging can print credentials',
  raw: 'prints raw credentials or bypasses resource handling',
  kuberc: 'loads local aliases and defaults',
  stdin: 'interactive sessions are not supported',
  tty: 'interactive sessions are not supported',
  interactive: 'interactive prompts are not supported',
  edit: 'opens an editor',
  follow: 'never ends; use --tail N or --since D',
  'watch-only': 'never ends',
};

/** Short letters → long names. `-f` `-p` `-c` depend on the verb (see shortFor). */
const SHORT: Readonly<Record<string, string>> = {
  n: 'namespace', o: 'output', l: 'selector', A: 'all-namespaces', L: 'label-columns', R: 'recursive',
  k: 'kustomize', f: 'filename', c: 'container', e: 'env', w: 'watch', i: 'stdin', t: 'tty', s: 'server',
  v: 'v', q: 'quiet', p: 'patch',
};

function shortFor(letter: string, verb: string | undefined): string | undefined {
  if (verb === 'logs') {
    if (letter === 'f') return 'follow';
    if (letter === 'p') return 'previous';
  }
  if (letter === 'p' && verb !== 'patch') return 'previous';
  return SHORT[letter];
}

/** Verbs and their classes. Two-word verbs (`rollout status`) are listed by their full name. */
export const KUBECTL_CLASSES: Readonly<Record<string, OpClass>> = {
  get: 'read', describe: 'read', logs: 'read', top: 'read', explain: 'read', 'api-resources': 'read',
  'api-versions': 'read', version: 'read', 'cluster-info': 'read', events: 'read', wait: 'read', diff: 'read',
  'rollout status': 'read', 'rollout history': 'read', 'auth can-i': 'read', 'auth whoami': 'read',
  'config current-context': 'read', 'config get-contexts': 'read',
  'config view': 'sensitive-read', exec: 'sensitive-read',
  apply: 'mutate', patch: 'mutate', scale: 'mutate', annotate: 'mutate', label: 'mutate', create: 'mutate',
  autoscale: 'mutate', cordon: 'mutate', uncordon: 'mutate', expose: 'mutate', taint: 'mutate',
  replace: 'mutate', 'rollout restart': 'mutate', 'rollout undo': 'mutate', 'rollout pause': 'mutate',
  'rollout resume': 'mutate', 'set image': 'mutate', 'set env': 'mutate', 'set resources': 'mutate',
  delete: 'destructive', drain: 'destructive',
};

const TWO_WORD = new Set(['rollout', 'config', 'auth', 'set']);

const REFUSED_VERBS: Readonly<Record<string, string>> = {
  'port-forward': 'is long-running and opens local ports',
  proxy: 'is long-running and opens local ports',
  attach: 'is interactive',
  cp: 'copies files between pods and this machine; not vetted',
  edit: 'opens an editor; use patch or apply',
  run: 'starts arbitrary pods; use apply with a manifest',
  debug: 'starts interactive debug containers',
  plugin: 'runs local plugins',
  alpha: 'alpha commands are not vetted',
  certificate: 'approving certificates grants cluster credentials',
  kustomize: 'not vetted; use apply -k',
  completion: 'not an operation',
};

const NAMESPACE_NAME = /^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$/;

/** Flags that may come before the verb (kubectl's global ones). */
const GLOBAL_BEFORE_VERB = new Set(['namespace', 'context', 'request-timeout']);

interface Parsed {
  verb: string;
  positionals: string[];
  rest: string[];
  context?: string;
  namespace?: string;
  allNamespaces: boolean;
  flags: Map<string, string | true>;
  paths: string[];
  /** Where secret handles appear: `--flag`, `argument …` or `the command after --`. */
  handlesIn: Set<string>;
  fromLiterals: string[];
}

export function parseKubectl(words: readonly Word[], ctx: ParseContext): ParseResult<ToolCall> {
  const p: Parsed = { verb: '', positionals: [], rest: [], allNamespaces: false, flags: new Map(), paths: [], handlesIn: new Set(), fromLiterals: [] };
  let verb: string | undefined;
  let afterDashes = false;

  const setFlag = (name: string, value: string | true, w: Word): ParseResult<true> => {
    if (value !== true && hasHandles(value)) p.handlesIn.add(`--${name}`);
    if (name === 'from-literal' && value !== true) p.fromLiterals.push(value);
    if (name === 'context' || name === 'namespace') {
      const v = value === true ? '' : value;
      if (v === '' || v.startsWith('-')) return refused(`kubectl: ${named(w)} needs a ${name} name`);
      const prev = name === 'context' ? p.context : p.namespace;
      if (prev !== undefined && prev !== v) return refused(`kubectl: ${named(w)} names a second ${name} (already ${prev})`);
      if (name === 'namespace' && !NAMESPACE_NAME.test(v)) return refused(`kubectl: ${named(w)}: \`${v}\` is not a namespace name`);
      if (name === 'context') p.context = v;
      else p.namespace = v;
      return ok(true);
    }
    if (name === 'all-namespaces') {
      if (value === true || value === 'true') p.allNamespaces = true;
      p.rest.push(value === true ? '--all-namespaces' : `--all-namespaces=${value}`);
      return ok(true);
    }
    if (name === 'watch' && verb !== 'rollout') return refused(`kubectl: ${named(w)} never ends; drop it (rollout status is the vetted way to wait)`);
    if (FLAGS[name] === 'path' && value !== true) {
      if (value === '-' || value.endsWith('=-')) return refused(`kubectl: ${named(w)} reads stdin; pass a file`);
      if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) return refused(`kubectl: ${named(w)} fetches a URL; pass a local file`);
      const eq = name === 'from-file' ? value.indexOf('=') : -1;
      const path = eq === -1 ? value : value.slice(eq + 1);
      // The policy checks paths lexically, kubectl opens them through the kernel: `/srv/link/..`
      // is not `/srv` when link is a symlink. Same rule as the files tool.
      if (path.split('/').includes('..')) return refused(`kubectl: ${named(w)} contains \`..\` (path traversal); write the path it means`);
      // kubectl expands a glob in -f itself: the files it reads would not be the ones checked.
      if (/[*?[]/.test(path)) return refused(`kubectl: ${named(w)} is a glob pattern, which kubectl expands itself; name the files or their folder`);
      p.paths.push(path);
    }
    p.flags.set(name, value);
    p.rest.push(value === true ? `--${name}` : `--${name}=${value}`);
    return ok(true);
  };

  /** Handles one flag word (and maybe the next word as its value); returns words consumed. */
  const flag = (i: number): ParseResult<number> => {
    const w = words[i]!;
    const text = w.text;
    let name: string;
    let value: string | undefined;
    let consumed = 1;
    if (text.startsWith('--')) {
      ({ name, value } = splitLong(text.slice(2)));
    } else {
      const letter = text[1]!;
      const long = shortFor(letter, verb);
      if (long === undefined) return refused(`kubectl: unknown flag ${named(w)}`);
      const attached = text.slice(2);
      name = long;
      if (long in REFUSED_FLAGS || FLAGS[long] === undefined) {
        value = attached === '' ? undefined : attached.replace(/^=/, '');
      } else if (FLAGS[long] === 'bool') {
        if (attached.startsWith('=')) value = attached.slice(1);
        else if (attached !== '') {
          // A bundle of boolean letters (`-Aq`): each must be a known boolean.
          for (const l of attached) {
            const other = shortFor(l, verb);
            if (other === undefined) return refused(`kubectl: unknown flag \`-${l}\` in ${named(w)}`);
            if (other in REFUSED_FLAGS) return refused(`kubectl: \`-${l}\` in ${named(w)} is refused: ${REFUSED_FLAGS[other]}`);
            if (FLAGS[other] !== 'bool') return refused(`kubectl: \`-${l}\` in ${named(w)} takes a value; write it separately`);
            const r = setFlag(other, true, w);
            if (!r.ok) return r;
          }
        }
      } else {
        value = attached === '' ? undefined : attached.replace(/^=/, '');
      }
    }
    if (name in REFUSED_FLAGS) return refused(`kubectl: ${named(w)} is refused: ${REFUSED_FLAGS[name]}`);
    const kind = FLAGS[name];
    if (kind === undefined) return refused(`kubectl: unknown flag ${named(w)}`);
    if (verb === undefined && !GLOBAL_BEFORE_VERB.has(name))
      return refused(`kubectl: ${named(w)} must come after the verb (only --context, -n/--namespace, --request-timeout may precede it)`);
    if (kind !== 'bool' && value === undefined) {
      const next = words[i + 1];
      if (next === undefined) return refused(`kubectl: ${named(w)} needs a value`);
      value = next.text;
      consumed = 2;
    }
    const r = setFlag(name, value ?? true, w);
    if (!r.ok) return r;
    return ok(consumed);
  };

  let i = 1;
  const positionalWords: Word[] = [];
  while (i < words.length) {
    const w = words[i]!;
    const text = w.text;
    if (afterDashes) {
      if (hasHandles(text)) p.handlesIn.add('the command after --');
      p.rest.push(text);
      i++;
      continue;
    }
    if (text === '--') {
      if (verb !== 'exec') return refused(`kubectl: ${named(w)} is only used with exec`);
      afterDashes = true;
      p.rest.push(text);
      i++;
      continue;
    }
    if (text.length > 1 && text.startsWith('-') && !/^-\d/.test(text)) {
      const r = flag(i);
      if (!r.ok) return r;
      i += r.value;
      continue;
    }
    // A positional: the verb, a sub-verb, a resource or a name.
    if (verb === undefined) {
      verb = text;
      if (verb in REFUSED_VERBS) return refused(`kubectl: ${named(w)} is refused: it ${REFUSED_VERBS[verb]}`);
    }
    if (hasHandles(text)) p.handlesIn.add(`argument ${named(w)}`);
    p.positionals.push(text);
    positionalWords.push(w);
    // A fresh service-account token is a credential printed to the model and every log, and
    // it works with any HTTP client, outside this vetting.
    if (verb === 'create' && p.positionals.length === 2 && text.toLowerCase() === 'token')
      return refused(`kubectl: ${named(w)} is refused: \`create token\` mints a credential; credentials come only from the config`);
    p.rest.push(text);
    i++;
  }

  if (verb === undefined) return unparseable(`kubectl: no verb given; vetted verbs: ${list(verbNames())}`);
  let fullVerb = verb;
  if (TWO_WORD.has(verb)) {
    const sub = p.positionals[1];
    fullVerb = `${verb} ${sub ?? ''}`;
    if (sub === undefined) return unparseable(`kubectl: \`${verb}\` needs a sub-command; vetted: ${list(subVerbs(verb))}`);
    if (verb === 'config' && !(fullVerb in KUBECTL_CLASSES))
      return refused(`kubectl: ${named(positionalWords[1])} is refused: it changes the kubeconfig, which only the config may set`);
  }
  let cls = KUBECTL_CLASSES[fullVerb];
  if (cls === undefined) {
    const bad = TWO_WORD.has(verb) ? positionalWords[1] : positionalWords[0];
    return unparseable(`kubectl: unknown or unvetted verb ${named(bad)}; vetted verbs: ${list(verbNames())}`);
  }
  if (verb === 'exec' && !afterDashes) return unparseable('kubectl: exec needs `-- COMMAND...` after the pod');
  if (p.flags.has('watch') && fullVerb !== 'rollout status')
    return refused('kubectl: --watch never ends; drop it (rollout status is the vetted way to wait)');

  if (verb === 'replace' && isTrue(p.flags.get('force'))) cls = 'destructive';
  if (verb === 'apply' && isTrue(p.flags.get('prune'))) cls = 'destructive';
  const dryRun = p.flags.get('dry-run');
  const isDryRun = dryRun === 'server' || dryRun === 'client';
  if (isDryRun && (cls === 'mutate' || cls === 'destructive')) cls = 'read';

  const out = p.flags.get('output');
  const output = checkOutput(out, p.flags.get('template'));
  if (!output.ok) return refused(`kubectl: ${output.message}`);
  const shown = typeof out === 'string' ? out : 'template';

  // Secret values: `-o yaml|json|jsonpath...` prints them; tables and names do not. Not only
  // `get`: label/annotate/patch/apply/wait... print the object they touched (dry runs too), so
  // a mutate call (no approval in standard mode) must not be a way around `get secret -o yaml`.
  const targetsSecrets =
    p.paths.length > 0 ||
    p.positionals.slice(1).some((r) => (r.split('/')[0] ?? '').split(',').some((t) => SECRET_RESOURCE.test(t)));
  // A client-side create never asks the server: it prints only what the line itself wrote.
  const localOnly = verb === 'create' && dryRun === 'client';
  if (output.showsData && targetsSecrets && !localOnly) {
    if (cls === 'read') cls = 'sensitive-read';
    else if (cls !== 'sensitive-read')
      return refused(`kubectl: \`${fullVerb}\` with -o ${shown} prints the secret it changes, values included; use -o name (or no -o) and read values with \`get secret -o yaml\` (sensitive-read)`);
  }
  // Objects sorted by a data field bisect its value, names alone are enough; on Secrets any sort.
  const sortBy = p.flags.get('sort-by');
  if (cls === 'read' && sortBy !== undefined && (targetsSecrets || sortByTransform(sortBy) !== undefined)) cls = 'sensitive-read';
  // A Secret made from files printed back (a client-side dry run with -o yaml) shows their values.
  if (verb === 'create' && p.positionals[1] === 'secret' && p.paths.length > 0 && output.showsData)
    return refused(`kubectl: \`create secret\` from files with -o ${shown} prints their values back; use -o name (or no -o)`);
  if (verb === 'patch' && targetsSecrets) {
    const copy = secretCopyRefusal(p.flags.get('patch'), p.flags.get('type'));
    if (copy !== null) return refused(`kubectl: ${copy}`);
  }

  // A handle's value goes only into a Secret's data (kubectl-secrets.ts).
  if (p.handlesIn.size > 0) {
    const why = handleSinkRefusal({ verb, positionals: p.positionals, flags: p.flags, fromLiterals: p.fromLiterals, handlesIn: p.handlesIn, paths: p.paths });
    if (why !== null) return refused(`kubectl: ${why}`);
    if (output.showsData) return refused(`kubectl: \`${fullVerb}\` with a secret handle and -o ${shown} prints the value back; use -o name (or no -o)`);
  }

  // A template or jsonpath that transforms values can print a secret in a form the scrubber does not know.
  if (output.transform !== undefined) {
    if (cls === 'read') cls = 'sensitive-read';
    else if (cls !== 'sensitive-read')
      return refused(`kubectl: \`${fullVerb}\` prints through a template that transforms values (${output.transform}); use -o name here and read with \`kubectl get\``);
  }

  const context = p.context ?? ctx.env?.kubernetes?.defaultContext;
  const namespace = p.allNamespaces ? '*' : (p.namespace ?? 'default');
  const args: string[] = [];
  if (context !== undefined) args.push('--context', context);
  if (!p.allNamespaces) args.push('-n', namespace);
  args.push(...p.rest);

  const scope: ToolCall['scope'] = { namespace };
  if (context !== undefined) scope.context = context;
  if (p.paths.length > 0) scope.paths = p.paths;
  return ok(
    makeCall({
      tool: 'kubectl',
      verb: fullVerb,
      program: ['kubectl'],
      args,
      class: cls,
      scope,
      ...((verb === 'apply' || verb === 'patch') && !isDryRun ? { preflight: 'server-dry-run' as const } : {}),
    }),
  );
}

function isTrue(v: string | true | undefined): boolean {
  return v === true || v === 'true';
}

function verbNames(): string[] {
  return [...new Set(Object.keys(KUBECTL_CLASSES))];
}

function subVerbs(verb: string): string[] {
  return verbNames()
    .filter((v) => v.startsWith(`${verb} `))
    .map((v) => v.slice(verb.length + 1));
}
