import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseCommandLine } from '../parse-command.js';
import { tokenize } from '../tokenize.js';
import { FILTER_NAMES, OP_CLASSES, type ToolEnv } from '../types.js';

const env: ToolEnv = {
  kubernetes: { contexts: { minikube: { namespaces: ['*'] } }, defaultContext: 'minikube' },
  compose: { projects: { shop: { file: '/srv/shop/docker-compose.yml' } } },
  ssh: { hosts: { 'edge-1': { host: '10.0.0.5', port: 22, user: 'ops' } } },
};

/** Characters that stress the tokenizer: quotes, escapes, expansions, operators, controls. */
const NASTY = [..."'\"\\$`{}()[]*?~#;&|<>!=:,. \t\n\r\0-_/aZ9@%+", '\u202e', '\u2028', 'é', '😀'];
const nastyString = (maxLength: number, minLength = 0) =>
  fc.array(fc.constantFrom(...NASTY), { minLength, maxLength }).map((a) => a.join(''));

const safeBare = fc.stringMatching(/^[A-Za-z0-9_@%+=:,./-]{1,12}$/);
// Printable ASCII except the single quote: whatever it holds stays literal inside '...'.
const singleQuoted = fc.stringMatching(/^[ !-&(-~]{0,12}$/).map((s) => `'${s}'`);
const doubleQuoted = fc.stringMatching(/^[A-Za-z0-9 ;&|<>*?(){}~#,.:=-]{0,12}$/).map((s) => `"${s}"`);
const segment = fc.oneof(safeBare, singleQuoted, doubleQuoted);

describe('tokenizer properties', () => {
  it('never throws on any string, and always answers ok or a coded failure', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 200 }), nastyString(200)), (line) => {
        const r = tokenize(line, { vars: { A: 'x', B: '' } });
        expect(r.ok || r.code === 'refused' || r.code === 'unparseable').toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('parseCommandLine never throws either', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('', 'kubectl ', 'docker compose -p shop ', 'ssh edge-1 ', 'curl ', 'vault kv put kv/x ', 'cat ', 'systemctl ', 'journalctl '),
        nastyString(80),
        (prefix, rest) => {
          const r = parseCommandLine(prefix + rest, { env, vars: { A: 'x' } });
          expect(typeof r.ok).toBe('boolean');
          if (!r.ok) expect(['refused', 'unparseable']).toContain(r.code);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('never accepts an unquoted metacharacter', () => {
    const meta = fc.constantFrom(';', '&', '&&', '||', '>', '>>', '<', '2>&1', '`', '$(', '$((', '(', ')', '*', '?', '[', '|&');
    fc.assert(
      fc.property(fc.array(segment, { minLength: 1, maxLength: 5 }), meta, fc.nat(), fc.boolean(), (segs, m, at, glued) => {
        const i = at % (segs.length + 1);
        const parts = [...segs];
        parts.splice(i, 0, m);
        const line = glued ? parts.join('') : parts.join(' ');
        const r = tokenize(line);
        expect(r.ok).toBe(false);
        if (!r.ok) expect(r.code).toBe('refused');
      }),
      { numRuns: 3000 },
    );
  });

  it('never accepts a pipe into anything but a vetted filter', () => {
    const notFilter = fc.stringMatching(/^[a-z][a-z0-9-]{0,8}$/).filter((w) => !(FILTER_NAMES as readonly string[]).includes(w));
    fc.assert(
      fc.property(notFilter, fc.array(safeBare, { maxLength: 3 }), (prog, args) => {
        const r = parseCommandLine(['kubectl get pods |', prog, ...args].join(' '), { env });
        expect(r).toMatchObject({ ok: false, code: 'refused' });
        expect(!r.ok && r.message).toContain(`\`${prog}\``);
      }),
      { numRuns: 500 },
    );
  });

  it('runs in bounded time on 10k-character adversarial input', () => {
    const fixed = [
      '{'.repeat(10_000),
      '\\'.repeat(10_000),
      `"${'\\"'.repeat(4_999)}"`,
      `'${'a'.repeat(9_998)}'`,
      '$'.repeat(10_000),
      '${'.repeat(5_000),
      `a ${'${A}'.repeat(2_000)}`,
      `${"'x'".repeat(3_333)}`,
      `${'"a"'.repeat(3_333)}`,
      'a | '.repeat(2_500),
      `kubectl ${'-n x '.repeat(2_000)}`,
      `curl ${'-fsS '.repeat(2_000)}http://x/`,
      `ssh edge-1 '${'cat /srv/x '.repeat(900)}'`,
    ];
    // A bound, not a benchmark: the best of three runs (after a warm-up) must stay under 50 ms,
    // which a quadratic algorithm on 10k characters would not.
    const check = (line: string): void => {
      parseCommandLine(line, { env, vars: { A: 'x' } });
      let best = Infinity;
      for (let k = 0; k < 3; k++) {
        const t0 = performance.now();
        parseCommandLine(line, { env, vars: { A: 'x' } });
        best = Math.min(best, performance.now() - t0);
      }
      expect(best, `${JSON.stringify(line.slice(0, 20))}… took ${best.toFixed(1)} ms`).toBeLessThan(50);
    };
    fixed.forEach(check);
    fc.assert(fc.property(nastyString(10_000, 9_000), check), { numRuns: 30 });
  });
});

describe('classifier properties', () => {
  const templates = [
    'kubectl get', 'kubectl describe', 'kubectl logs', 'kubectl delete', 'kubectl apply -f /srv/a.yaml', 'kubectl scale',
    'kubectl rollout status', 'kubectl rollout restart', 'kubectl get secret', 'kubectl exec pod/x --',
    'docker compose -p shop ps', 'docker compose -p shop up -d', 'docker compose -p shop down', 'docker-compose -p shop logs',
    'docker ps', 'docker logs', 'docker inspect', 'vault kv get kv/a', 'vault kv put kv/a', 'vault kv delete',
    'systemctl status', 'systemctl restart', 'systemctl stop', 'journalctl -u', 'ssh edge-1 systemctl is-active', 'ssh edge-1 cat',
    'curl http://127.0.0.1/', 'curl -X POST', 'cat', 'ls -la', 'rm -rf', 'mkdir -p', 'chmod 0644', 'cp', 'test -f',
  ];
  const extra = fc.oneof(
    safeBare,
    fc.constantFrom('-n', 'ffl', '-A', '--context', 'kind', '-o', 'yaml', 'json', 'wide', '--tail', '50', '/srv/x', '/srv/y y',
      'nginx', 'k=v', 'pw={{generate:hex32}}', "'a b'", '--dry-run=server', '--force', 'http://127.0.0.1/x', '-d', 'x=1', '-fsS',
      '| grep -i x', '| wc -l', '| head -n 3', "| jq -r '.a'", '$NS', '"$NS"'),
  );

  it('every accepted call has a class and parses back from its canonical line to the same call', () => {
    fc.assert(
      fc.property(fc.constantFrom(...templates), fc.array(extra, { maxLength: 5 }), (t, xs) => {
        const line = [t, ...xs].join(' ');
        const r = parseCommandLine(line, { env, vars: { NS: 'mtg agents' } });
        if (!r.ok) return;
        expect(OP_CLASSES).toContain(r.value.class);
        const again = parseCommandLine(r.value.canonical, { env });
        expect(again.ok, `${line} → ${r.value.canonical} → ${again.ok ? '' : again.message}`).toBe(true);
        if (again.ok) {
          expect(again.value).toEqual(r.value);
          // Parsing is deterministic.
          expect(parseCommandLine(line, { env, vars: { NS: 'mtg agents' } })).toEqual(r);
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('accepts a useful share of the generated lines (the property above is not vacuous)', () => {
    const sample = fc.sample(fc.tuple(fc.constantFrom(...templates), fc.array(extra, { maxLength: 2 })), { numRuns: 500, seed: 42 });
    const accepted = sample.filter(([t, xs]) => parseCommandLine([t, ...xs].join(' '), { env, vars: { NS: 'x' } }).ok).length;
    expect(accepted).toBeGreaterThan(50);
  });
});
