import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openStore, type Store } from '../core/store.js';
import { createToken, hashToken, listTokens, revokeToken, verifyToken } from '../tokens.js';

let dir: string;
let store: Store;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'opscrew-tokens-'));
  store = openStore(join(dir, 'state.db'));
});
afterEach(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('tokens', () => {
  it('stores only the hash and verifies the plaintext once created', () => {
    const r = createToken(store.db, 'k8s-specialist', () => 1000);
    if (!r.ok) throw new Error(r.message);
    const rows = store.db.all<{ hash: string; agent: string }>('SELECT hash, agent FROM tokens');
    expect(rows).toEqual([{ hash: hashToken(r.value.token), agent: 'k8s-specialist' }]);
    expect(JSON.stringify(rows)).not.toContain(r.value.token);
    expect(verifyToken(store.db, r.value.token)).toBe('k8s-specialist');
    expect(verifyToken(store.db, r.value.token + 'x')).toBeNull();
    expect(verifyToken(store.db, 'garbage')).toBeNull();
  });

  it('lists agents and ids, never tokens or hashes', () => {
    const a = createToken(store.db, 'observer', () => 5);
    if (!a.ok) throw new Error(a.message);
    const list = listTokens(store.db);
    expect(list).toEqual([{ id: a.value.id, agent: 'observer', createdMs: 5, revokedMs: null }]);
    expect(JSON.stringify(list)).not.toContain(a.value.token);
    expect(JSON.stringify(list)).not.toContain(hashToken(a.value.token));
  });

  it('revokes by id and by agent; revoked tokens stop working', () => {
    const a = createToken(store.db, 'k8s-specialist');
    const b = createToken(store.db, 'k8s-specialist');
    const c = createToken(store.db, 'devops-specialist');
    if (!a.ok || !b.ok || !c.ok) throw new Error('create failed');
    expect(revokeToken(store.db, { id: a.value.id }, () => 9)).toEqual({ ok: true, value: 1 });
    expect(verifyToken(store.db, a.value.token)).toBeNull();
    expect(verifyToken(store.db, b.value.token)).toBe('k8s-specialist');
    expect(revokeToken(store.db, { agent: 'k8s-specialist' })).toEqual({ ok: true, value: 1 });
    expect(verifyToken(store.db, b.value.token)).toBeNull();
    expect(verifyToken(store.db, c.value.token)).toBe('devops-specialist');
    expect(revokeToken(store.db, { id: a.value.id })).toMatchObject({ ok: false, code: 'token-not-found' });
    expect(revokeToken(store.db, { id: 'zz' })).toMatchObject({ ok: false, code: 'token-id-invalid' });
  });

  it('refuses a malformed agent name', () => {
    expect(createToken(store.db, 'Bad Name')).toMatchObject({ ok: false, code: 'token-agent-invalid' });
  });
});
