import { describe, expect, it } from 'vitest';
import { createSecretBroker, hasHandles, scrubForms, secretHandle, ToolError } from '../secret-broker.js';

const CANARY = 'canary-S3cr3t/value+with=specials';

function thrownCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return e instanceof ToolError ? e.code : 'not-a-ToolError';
  }
  return undefined;
}

describe('register and reveal', () => {
  it('round-trips a handle to its value', () => {
    const b = createSecretBroker();
    const h = b.register('vault:kv/deploy#db_password', CANARY);
    expect(h).toBe('{{secret:vault:kv/deploy#db_password}}');
    expect(h).toBe(secretHandle('vault:kv/deploy#db_password'));
    expect(b.reveal(`pw=${h};again=${h}`)).toBe(`pw=${CANARY};again=${CANARY}`);
    expect(b.scrub(`got ${CANARY}`)).toBe(`got ${h}`);
  });

  it('an unknown handle throws ToolError unknown-secret-handle (never an empty string)', () => {
    const b = createSecretBroker();
    expect(thrownCode(() => b.reveal('x={{secret:vault:kv/none#x}}'))).toBe('unknown-secret-handle');
    expect(thrownCode(() => b.reveal('{{generate:hex99}}'))).toBe('unknown-generate-kind');
  });

  it('refuses refs that could not round-trip through a handle', () => {
    const b = createSecretBroker();
    expect(thrownCode(() => b.register('has space', 'value1234'))).toBe('bad-secret-ref');
    expect(thrownCode(() => b.register('a}b', 'value1234'))).toBe('bad-secret-ref');
  });

  it('text without handles is unchanged', () => {
    const b = createSecretBroker();
    expect(b.reveal('plain {text} {{not a handle}}')).toBe('plain {text} {{not a handle}}');
    expect(hasHandles('a {{generate:hex16}}')).toBe(true);
    expect(hasHandles('a {{x}}')).toBe(false);
  });
});

describe('generate', () => {
  it('makes fresh values of each kind, each occurrence distinct', () => {
    const b = createSecretBroker();
    const out = b.reveal('{{generate:hex32}} {{generate:hex32}} {{generate:hex16}} {{generate:base64-32}} {{generate:alnum24}}');
    const [h1, h2, h16, b64, an] = out.split(' ');
    expect(h1).toMatch(/^[0-9a-f]{64}$/);
    expect(h2).toMatch(/^[0-9a-f]{64}$/);
    expect(h1).not.toBe(h2);
    expect(h16).toMatch(/^[0-9a-f]{32}$/);
    expect(Buffer.from(b64 as string, 'base64')).toHaveLength(32);
    expect(b64).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    expect(an).toMatch(/^[A-Za-z0-9]{24}$/);
  });

  it('generated values are registered and scrubbed afterwards', () => {
    const b = createSecretBroker();
    const v = b.reveal('{{generate:alnum24}}');
    const scrubbed = b.scrub(`server said: ${v} / ${Buffer.from(v).toString('base64')}`);
    expect(scrubbed).not.toContain(v);
    expect(scrubbed).toMatch(/^server said: \{\{secret:generated:alnum24:1\}\} \/ \{\{secret:generated:alnum24:1\}\}$/);
  });

  it('uses the injected random source', () => {
    const b = createSecretBroker({ random: (n) => Buffer.alloc(n, 0xab) });
    expect(b.reveal('{{generate:hex16}}')).toBe('ab'.repeat(16));
  });

  it('a later vault read of a generated value takes over its handle', () => {
    const b = createSecretBroker();
    const v = b.reveal('{{generate:hex32}}');
    const h = b.register('vault:kv/deploy#token', v);
    expect(b.scrub(v)).toBe(h);
  });
});

describe('scrub', () => {
  const b = createSecretBroker();
  const h = b.register('vault:kv/app#pw', CANARY);

  it('replaces raw, base64 (std/url-safe, padded or not), URL-encoded, hex and JSON-escaped forms', () => {
    const buf = Buffer.from(CANARY);
    const forms = [
      CANARY,
      buf.toString('base64'),
      buf.toString('base64').replace(/=+$/, ''),
      buf.toString('base64url'),
      encodeURIComponent(CANARY),
      encodeURIComponent(CANARY).replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase()),
      buf.toString('hex'),
      buf.toString('hex').toUpperCase(),
    ];
    for (const f of forms) {
      expect(b.scrub(`<${f}>`)).toBe(`<${h}>`);
    }
    const quoted = 'he said "hi"\\now';
    const b2 = createSecretBroker();
    const h2 = b2.register('x', quoted);
    expect(b2.scrub(JSON.stringify({ v: quoted }))).toBe(`{"v":"${h2}"}`);
  });

  it('catches the secret inside a longer base64 blob (Basic auth)', () => {
    for (const user of ['u', 'us', 'usr', 'admin']) {
      const blob = Buffer.from(`${user}:${CANARY}`).toString('base64');
      const out = b.scrub(`Authorization: Basic ${blob}`);
      expect(out).toContain(h);
      // What is left of the blob decodes to nothing that contains the secret.
      expect(Buffer.from(out.replace(/.*Basic /, '').replace(h, ''), 'base64').toString()).not.toContain(CANARY);
    }
  });

  it('replaces the longest match first', () => {
    const s = createSecretBroker();
    const short = s.register('a', 'abcdef');
    const long = s.register('b', 'abcdefghij');
    expect(s.scrub('abcdefghij abcdef')).toBe(`${long} ${short}`);
  });

  it('keeps old values scrubbed after a ref is re-registered', () => {
    const s = createSecretBroker();
    s.register('vault:kv/x#k', 'first-value-1');
    const h2 = s.register('vault:kv/x#k', 'second-value-2');
    expect(s.reveal(h2)).toBe('second-value-2');
    expect(s.scrub('first-value-1 second-value-2')).toBe(`${h2} ${h2}`);
  });

  it('does not scrub values shorter than 4 characters (documented), but reveals them', () => {
    const s = createSecretBroker();
    const h3 = s.register('v', 'abc');
    expect(s.reveal(h3)).toBe('abc');
    expect(s.scrub('abc')).toBe('abc');
    expect(scrubForms('abc')).toEqual(expect.not.arrayContaining(['abc']));
  });

  it('hex form is skipped for values that are already hex (no double work, no false hits)', () => {
    expect(scrubForms('deadbeef')).not.toContain(Buffer.from('deadbeef').toString('hex'));
  });
});
