// What a kubectl go-template may do without counting as a read of secret-bearing data.
// The scrubber recognises a secret value in its plain and common encoded forms only: a
// template that re-encodes (`printf "%x"`), cuts (`slice`, `%.3s`, `index s 0`) or compares
// by order (`lt`, a bisecting oracle) can print a value the scrubber would not see. Field
// access, range/if/with, map lookups by a string key, equality, len and plain printing are
// what tables are made of, and stay plain reads.

/** Keywords and functions that print values as they are (or only their length/equality). */
const PLAIN = new Set([
  'range', 'end', 'if', 'else', 'with', 'break', 'continue', 'define', 'template', 'block',
  'not', 'and', 'or', 'eq', 'ne', 'len', 'nil', 'true', 'false', 'print', 'println',
]);

/** A printf format whose verbs print a value whole: %s %v %d and %%, no flags, width or precision. */
const PLAIN_FORMAT = /^(?:[^%]|%[svd%])*$/;

type Token = { kind: 'string' | 'word' | 'number' | 'other'; text: string };

/** Go-template action tokens: literals whole (so words inside them are not functions), fields as one token. */
function tokens(body: string): Token[] {
  const out: Token[] = [];
  const re = /\s+|("(?:[^"\\]|\\.)*"|`[^`]*`|'(?:[^'\\]|\\.)*')|([.$][\w.$]*)|([A-Za-z_]\w*)|(-?\d[\w.+-]*)|(.)/gy;
  for (const m of body.matchAll(re)) {
    if (m[1] !== undefined) out.push({ kind: 'string', text: m[1] });
    else if (m[2] !== undefined) out.push({ kind: 'other', text: m[2] }); // .field, $var
    else if (m[3] !== undefined) out.push({ kind: 'word', text: m[3] });
    else if (m[4] !== undefined) out.push({ kind: 'number', text: m[4] });
    else if (m[5] !== undefined) out.push({ kind: 'other', text: m[5] });
  }
  return out;
}

/**
 * The first function or keyword in a go-template that could transform a value, as a short
 * description for a refusal; undefined when the template only selects and prints.
 */
export function templateTransform(template: string): string | undefined {
  for (const m of template.matchAll(/\{\{([\s\S]*?)\}\}/g)) {
    const body = m[1]!.replace(/^-\s/, '').replace(/\s-$/, '');
    if (/^\s*\/\*/.test(body)) continue; // a comment
    const t = tokens(body);
    for (let i = 0; i < t.length; i++) {
      const tok = t[i]!;
      if (tok.kind !== 'word' || PLAIN.has(tok.text)) continue;
      if (tok.text === 'printf') {
        const format = t[i + 1];
        if (format?.kind === 'string' && PLAIN_FORMAT.test(format.text.slice(1, -1))) continue;
        return '`printf` with a format other than %s/%v/%d';
      }
      if (tok.text === 'index') {
        // Map lookups by string key are the common use; a number indexes into a string's bytes.
        for (let j = i + 1; j < t.length && t[j]!.text !== ')' && t[j]!.text !== '|'; j++)
          if (t[j]!.kind === 'number') return "`index` by number (a string's bytes, one at a time)";
        continue;
      }
      return `\`${tok.text}\``;
    }
  }
  return undefined;
}

/** The template text a kubectl line prints with, if it prints with a go-template. */
export function goTemplateOf(output: string | true | undefined, template: string | true | undefined): string | undefined {
  if (typeof output === 'string') {
    const m = /^(go-template|template)=([\s\S]*)$/.exec(output);
    if (m) return m[2];
    if (output === 'go-template' || output === 'template') return typeof template === 'string' ? template : '';
    return undefined; // jsonpath, yaml, json, name, wide...
  }
  // `--template` without -o is a go-template.
  return typeof template === 'string' ? template : undefined;
}
