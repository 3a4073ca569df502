// What a kubectl line may print with -o / --template / --sort-by without counting as a read of
// secret-bearing data. The scrubber recognises a secret value in its plain and common encoded
// forms only: a go-template that re-encodes (`printf "%x"`), cuts (`slice`, `%.3s`, `index s 0`)
// or compares by order (`lt`, a bisecting oracle), or a jsonpath filter that compares by order
// or regex, can print what the scrubber would not see. Field access, range/if/with, map lookups
// by a string key, equality, len and plain printing are what tables are made of, and stay
// plain reads.

/** -o formats kubectl prints with that are vetted (name part, lower case). Files are never read. */
const FORMATS = new Set(['json', 'yaml', 'kyaml', 'name', 'wide', 'go-template', 'template', 'jsonpath', 'jsonpath-as-json', 'custom-columns']);
const GO_TEMPLATE = new Set(['go-template', 'template']);
const JSONPATH = new Set(['jsonpath', 'jsonpath-as-json']);

/** Keywords and functions that print values as they are (or only their length/equality). */
const PLAIN = new Set([
  'range', 'end', 'if', 'else', 'with', 'break', 'continue', 'define', 'template', 'block',
  'not', 'and', 'or', 'eq', 'ne', 'len', 'nil', 'true', 'false', 'print', 'println',
]);

/** A printf format whose verbs print a value whole: %s %v %d and %%, no flags, width or precision. */
const PLAIN_FORMAT = /^(?:[^%\\]|\\[nrt"\\]|%[svd%])*$/;

export type OutputCheck =
  | { ok: true; showsData: boolean; transform?: string }
  | { ok: false; message: string };

/**
 * Checks the output flags of a kubectl line: `output` (-o) and `template` (--template) as
 * given. `showsData`: the line prints object contents (not a table or names). `transform`: what
 * in a template or jsonpath could print a value in a form the scrubber does not know.
 */
export function checkOutput(output: string | true | undefined, template: string | true | undefined): OutputCheck {
  const out = typeof output === 'string' ? output : undefined;
  const tpl = typeof template === 'string' ? template : undefined;
  const eq = out === undefined ? -1 : out.indexOf('=');
  const format = out === undefined ? undefined : (eq === -1 ? out : out.slice(0, eq)).toLowerCase();
  if (format !== undefined && format !== '' && !FORMATS.has(format)) {
    return {
      ok: false,
      message: /file$/.test(format)
        ? `-o ${format} reads a local file; put the template inline (-o go-template=… or -o jsonpath=…)`
        : `-o ${format} is not a vetted output format; use one of ${[...FORMATS].join(', ')}`,
    };
  }
  const inline = eq === -1 ? undefined : out!.slice(eq + 1);
  // kubectl: --template with no -o (or an empty one) prints through a go-template.
  const isJsonpath = format !== undefined && JSONPATH.has(format);
  const isGo = format === undefined || format === '' || GO_TEMPLATE.has(format);
  const texts = [inline, tpl].filter((t): t is string => t !== undefined);
  // custom-columns are jsonpath expressions too.
  const isColumns = format === 'custom-columns';
  let transform: string | undefined;
  for (const t of texts) {
    transform ??= isJsonpath || isColumns ? jsonpathTransform(t) : isGo ? goTemplateTransform(t) : undefined;
  }
  const showsData = (format !== undefined && format !== 'name' && format !== 'wide') || tpl !== undefined;
  return { ok: true, showsData, ...(transform !== undefined ? { transform } : {}) };
}

/**
 * A jsonpath filter comparing by order or regex (`?(@.x < "m")`, `=~`) bisects a value. Any `<`,
 * `>` or `=~` anywhere counts, quoted or not: finding the filter's end the way kubectl does
 * (quote-aware, nested) is where a checker gets fooled, and these rarely appear otherwise.
 */
export function jsonpathTransform(path: string): string | undefined {
  return /[<>]|=~/.test(path) ? 'a jsonpath filter that compares by order or regex' : undefined;
}

/** --sort-by on object data orders objects by a value: with objects one made, a bisecting oracle. */
export function sortByTransform(sortBy: string | true | undefined): string | undefined {
  if (typeof sortBy !== 'string') return undefined;
  const path = sortBy.replace(/^\{/, '').replace(/\}$/, '');
  if (/^\.(?:metadata|status)\.[\w.\-[\]]+$/.test(path)) return undefined;
  return `--sort-by=${sortBy} (only .metadata.* and .status.* fields sort as a plain read)`;
}

type Token = { kind: 'word' | 'field' | 'string' | 'raw' | 'char' | 'number' | 'punct'; text: string };

/**
 * Go template actions, lexed the way text/template does: literals ("…", `…`, '…') are skipped
 * whole, so a `}}` inside one does not end the action, and a `{{/* … *\/}}` comment is dropped.
 * An unterminated action or literal is reported as null (the caller treats it as a transform:
 * kubectl would refuse it anyway).
 */
function actions(template: string): Token[][] | null {
  const out: Token[][] = [];
  let i = 0;
  const n = template.length;
  while (i < n) {
    const open = template.indexOf('{{', i);
    if (open === -1) break;
    i = open + 2;
    if (template.startsWith('- ', i) || template.startsWith('-\t', i) || template.startsWith('-\n', i)) i += 2;
    // A comment: `/*` straight after the delimiter, up to `*/` and the closing delimiter.
    const ws = /^\s*/.exec(template.slice(i))![0].length;
    if (template.startsWith('/*', i + ws)) {
      const end = template.indexOf('*/', i + ws + 2);
      if (end === -1) return null;
      const close = template.indexOf('}}', end + 2);
      if (close === -1) return null;
      i = close + 2;
      continue;
    }
    const tokens: Token[] = [];
    let closed = false;
    while (i < n) {
      const c = template[i]!;
      if (c === '}' && template[i + 1] === '}') {
        i += 2;
        closed = true;
        break;
      }
      if (c === '-' && (template[i + 1] === '}' && template[i + 2] === '}') && /\s/.test(template[i - 1] ?? '')) {
        i += 3;
        closed = true;
        break;
      }
      if (/\s/.test(c)) {
        i++;
        continue;
      }
      if (c === '"' || c === "'") {
        let j = i + 1;
        while (j < n && template[j] !== c) j += template[j] === '\\' ? 2 : 1;
        if (j >= n) return null;
        tokens.push({ kind: c === '"' ? 'string' : 'char', text: template.slice(i, j + 1) });
        i = j + 1;
        continue;
      }
      if (c === '`') {
        const j = template.indexOf('`', i + 1);
        if (j === -1) return null;
        tokens.push({ kind: 'raw', text: template.slice(i, j + 1) });
        i = j + 1;
        continue;
      }
      const m = /^(?:([.$][\w.$]*)|([A-Za-z_]\w*)|([+-]?\d[\w.+-]*)|(.))/.exec(template.slice(i, i + 256))!;
      if (m[1] !== undefined) tokens.push({ kind: 'field', text: m[1] });
      else if (m[2] !== undefined) tokens.push({ kind: 'word', text: m[2] });
      else if (m[3] !== undefined) tokens.push({ kind: 'number', text: m[3] });
      else tokens.push({ kind: 'punct', text: m[4]! });
      i += m[0].length;
    }
    if (!closed) return null;
    out.push(tokens);
  }
  return out;
}

/** A format literal printf may take: "…" or `…`, with no escape that could spell a verb, printing whole values. */
function plainFormat(t: Token | undefined): boolean {
  if (t === undefined || (t.kind !== 'string' && t.kind !== 'raw')) return false;
  const body = t.text.slice(1, -1);
  // In a raw string a backslash is itself: it cannot spell a verb.
  return PLAIN_FORMAT.test(t.kind === 'raw' ? body.replace(/\\/g, '') : body);
}

/**
 * The first function, keyword or literal in a go-template that could transform a value, as a
 * short description for a refusal; undefined when the template only selects and prints.
 */
export function goTemplateTransform(template: string): string | undefined {
  const all = actions(template);
  if (all === null) return 'an unterminated action, comment or literal';
  for (const t of all) {
    for (let i = 0; i < t.length; i++) {
      const tok = t[i]!;
      if (tok.kind === 'char') return `a character constant ${tok.text}`;
      if (tok.kind !== 'word' || PLAIN.has(tok.text)) continue;
      if (tok.text === 'printf') {
        if (plainFormat(t[i + 1])) continue;
        return '`printf` with a format other than %s/%v/%d';
      }
      if (tok.text === 'index') {
        // A map lookup by string keys is the common use; anything else may index a string's bytes.
        // A piped value is index's last argument (`0 | index .data "k"`): never a string key here.
        if (t[i - 1]?.text === '|') return '`index` with a piped argument';
        let depth = 0;
        let arg = 0;
        for (let j = i + 1; j < t.length; j++) {
          const a = t[j]!;
          if (a.text === '(') {
            if (depth === 0 && ++arg > 1) return '`index` by something other than a string key';
            depth++;
            continue;
          }
          if (a.text === ')') {
            if (depth === 0) break;
            depth--;
            continue;
          }
          if (depth > 0) continue;
          if (a.text === '|') break;
          arg++;
          if (arg > 1 && a.kind !== 'string' && a.kind !== 'raw') return '`index` by something other than a string key';
        }
        if (arg < 2) return '`index` by something other than a string key';
        continue;
      }
      return `\`${tok.text}\``;
    }
  }
  return undefined;
}
