import { describe, expect, it } from 'vitest';
import { joinWords, MAX_LINE_LENGTH, quoteWord, tokenize } from '../tokenize.js';

const texts = (line: string, vars: Record<string, string> = {}): string[][] => {
  const r = tokenize(line, { vars });
  if (!r.ok) throw new Error(`expected ok for ${line}: ${r.message}`);
  return r.value.map((s) => s.map((w) => w.text));
};

describe('tokenize: accepted lines', () => {
  const cases: Array<[string, string[][], Record<string, string>?]> = [
    ['kubectl get pods', [['kubectl', 'get', 'pods']]],
    ['  kubectl\tget   pods  ', [['kubectl', 'get', 'pods']]],
    ["echo 'a b' c", [['echo', 'a b', 'c']]],
    ['echo "a b" c', [['echo', 'a b', 'c']]],
    ['echo "a\\"b\\\\c\\$d\\`e"', [['echo', 'a"b\\c$d`e']]],
    ['echo "a\\nb"', [['echo', 'a\\nb']]],
    ['echo a\\ b', [['echo', 'a b']]],
    ["echo 'it'\\''s'", [['echo', "it's"]]],
    ["echo ''", [['echo', '']]],
    ['echo ""', [['echo', '']]],
    ['echo a""b', [['echo', 'ab']]],
    ['kubectl -n $NS get pods', [['kubectl', '-n', 'mw', 'get', 'pods']], { NS: 'mw' }],
    ['echo ${NS}x "$NS-y" \'$NS\'', [['echo', 'mwx', 'mw-y', '$NS']], { NS: 'mw' }],
    ['echo $V', [['echo', 'a b; c']], { V: 'a b; c' }],
    ['echo $EMPTY x', [['echo', 'x']], { EMPTY: '' }],
    ['echo "$EMPTY" x', [['echo', '', 'x']], { EMPTY: '' }],
    ['grep -E ready$', [['grep', '-E', 'ready$']]],
    ['grep -E "ready$"', [['grep', '-E', 'ready$']]],
    ['echo $ x', [['echo', '$', 'x']]],
    ['kubectl get pods | grep Running | wc -l', [['kubectl', 'get', 'pods'], ['grep', 'Running'], ['wc', '-l']]],
    ['kubectl get pods|head -n 1', [['kubectl', 'get', 'pods'], ['head', '-n', '1']]],
    ["jq '.items[] | .name'", [['jq', '.items[] | .name']]],
    ['kubectl get x -o jsonpath={.status.readyReplicas}', [['kubectl', 'get', 'x', '-o', 'jsonpath={.status.readyReplicas}']]],
    ['kubectl get pods -o jsonpath={..image}', [['kubectl', 'get', 'pods', '-o', 'jsonpath={..image}']]],
    ['vault kv put kv/a pw={{generate:hex32}}', [['vault', 'kv', 'put', 'kv/a', 'pw={{generate:hex32}}']]],
    ['kubectl get pods # a comment', [['kubectl', 'get', 'pods']]],
    ['curl http://h/a#frag', [['curl', 'http://h/a#frag']]],
    ['echo a~b', [['echo', 'a~b']]],
    ['echo "*" \'?\' \\[', [['echo', '*', '?', '[']]],
    ['echo "{a,b}" "~"', [['echo', '{a,b}', '~']]],
  ];
  for (const [line, want, vars] of cases) {
    it(`splits ${JSON.stringify(line)}`, () => {
      expect(texts(line, vars)).toEqual(want);
    });
  }

  it('records 1-based columns and whether a word was quoted', () => {
    const r = tokenize(`ab 'c d' e`);
    expect(r.ok && r.value[0]).toEqual([
      { text: 'ab', col: 1, quoted: false },
      { text: 'c d', col: 4, quoted: true },
      { text: 'e', col: 10, quoted: false },
    ]);
  });
});

describe('tokenize: refusals name the token and its column', () => {
  const cases: Array<[string, 'refused' | 'unparseable', RegExp]> = [
    ['a; b', 'refused', /`;` at column 2/],
    ['a && b', 'refused', /`&&` at column 3/],
    ['a || b', 'refused', /`\|\|` at column 3/],
    ['a & b', 'refused', /`&` at column 3/],
    ['a > f', 'refused', /`>` at column 3/],
    ['a >> f', 'refused', /`>>` at column 3/],
    ['a < f', 'refused', /`<` at column 3/],
    ['a 2>&1', 'refused', /`2>&1` at column 3/],
    ['a 2> f', 'refused', /`2>` at column 3/],
    ['a &> f', 'refused', /`&>` at column 3/],
    ['a <(b)', 'refused', /`<\(` at column 3/],
    ['a `b`', 'refused', /^`.` at column 3: command substitution/],
    ['a "x`b`"', 'refused', /^`.` at column 5: command substitution/],
    ['a $(b)', 'refused', /`\$\(` at column 3/],
    ['a "$(b)"', 'refused', /`\$\(` at column 4/],
    ['a $((1+2))', 'refused', /`\$\(\(` at column 3/],
    ['a (b)', 'refused', /`\(` at column 3/],
    ['ls /srv/*.log', 'refused', /`\*` at column 9/],
    ['ls /srv/a?', 'refused', /`\?` at column 10/],
    ['jq .items[]', 'refused', /`\[` at column 10/],
    ['echo {a,b}', 'refused', /`\{a,b\}` at column 6/],
    ['echo x{1..3}', 'refused', /`\{1\.\.3\}` at column 7/],
    ['cat ~/x', 'refused', /`~` at column 5/],
    ['a --f=~/x', 'refused', /`~` at column 7/],
    ['a ${X:-d}', 'refused', /`\$\{X:-d\}` at column 3/],
    ['a $1', 'refused', /`\$1` at column 3/],
    ['a $@', 'refused', /`\$@` at column 3/],
    ["a $'x'", 'refused', /`\$'` at column 3/],
    ['! a', 'refused', /`!` at column 1/],
    ['a |& b', 'refused', /`\|&` at column 3/],
    ['a\nb', 'refused', /newline \(U\+000A\) at column 2/],
    ["a 'x\ny'", 'refused', /newline \(U\+000A\) at column 5/],
    ['a \u0000', 'refused', /NUL \(U\+0000\) at column 3/],
    ['a \u001b[31m', 'refused', /control character \(U\+001B\) at column 3/],
    ['a "\u202e"', 'refused', /bidirectional control character \(U\+202E\)/],
    ["a 'x\ty'", 'refused', /tab \(U\+0009\) at column 5/],
    ['a $X', 'unparseable', /undefined variable \$X at column 3/],
    ["a 'x", 'unparseable', /unterminated single quote at column 3/],
    ['a "x', 'unparseable', /unterminated double quote at column 3/],
    ['a \\', 'unparseable', /trailing backslash at column 3/],
    ['', 'unparseable', /empty command line/],
    ['   # only a comment', 'unparseable', /empty command line/],
    ['| grep x', 'unparseable', /`\|` at column 1 has no command before it/],
    ['a | | b', 'unparseable', /`\|` at column 5 has no command before it/],
    ['a |', 'unparseable', /nothing after the last `\|`/],
  ];
  for (const [line, code, msg] of cases) {
    it(`${code}: ${JSON.stringify(line)}`, () => {
      const r = tokenize(line);
      expect(r.ok).toBe(false);
      if (r.ok) return;
      expect(r.code).toBe(code);
      expect(r.message).toMatch(msg);
    });
  }

  it('refuses a variable whose value holds a newline', () => {
    const r = tokenize('a $V', { vars: { V: 'x\ny' } });
    expect(r).toMatchObject({ ok: false, code: 'refused' });
    expect(!r.ok && r.message).toMatch(/`\$V` at column 3: its value contains a newline/);
  });

  it('caps the line length', () => {
    const r = tokenize(`a ${'x'.repeat(MAX_LINE_LENGTH)}`);
    expect(r).toMatchObject({ ok: false, code: 'unparseable' });
    expect(!r.ok && r.message).toMatch(/the limit is 16384/);
  });

  it('caps the expanded length', () => {
    const r = tokenize('a $V $V $V', { vars: { V: 'x'.repeat(30_000) } });
    expect(r).toMatchObject({ ok: false, code: 'unparseable' });
  });
});

describe('quoteWord / joinWords', () => {
  const words = ['plain', '', 'a b', "it's", '$HOME', '*', '~x', '#c', 'x|y', 'a;b', '{a,b}', '"q"', '\\', '--output=jsonpath={.a}'];
  it('round-trips every word through tokenize', () => {
    const r = tokenize(joinWords(words));
    expect(r.ok && r.value[0]!.map((w) => w.text)).toEqual(words);
  });
  it('leaves safe words bare and quotes the rest', () => {
    expect(quoteWord('kube-system')).toBe('kube-system');
    expect(quoteWord('/srv/a.log')).toBe('/srv/a.log');
    expect(quoteWord('a b')).toBe("'a b'");
    expect(quoteWord("it's")).toBe("'it'\\''s'");
  });
});
