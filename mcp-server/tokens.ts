// Bearer tokens per agent. Only the sha256 of a token is stored; the plaintext is returned once,
// by createToken, and nothing else can ever produce it again.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Db } from './core/store.js';
import { fail, ok, type Result } from './core/errors.js';

/** Prefix makes leaked tokens recognisable to secret scanners. */
export const TOKEN_PREFIX = 'ocw_';
const AGENT_NAME = /^[a-z][a-z0-9-]{0,63}$/;

export interface TokenInfo {
  /** First 12 hex chars of the hash: lets a person tell tokens apart and revoke one. */
  id: string;
  agent: string;
  createdMs: number;
  revokedMs: number | null;
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** Creates a token for `agent`; the returned plaintext is shown once and never stored. */
export function createToken(db: Db, agent: string, now: () => number = Date.now): Result<{ token: string; id: string }> {
  if (!AGENT_NAME.test(agent)) {
    return fail('token-agent-invalid', `agent name "${agent}" is not valid: use lower-case letters, digits and dashes (e.g. k8s-specialist)`);
  }
  const token = TOKEN_PREFIX + randomBytes(32).toString('base64url');
  const hash = hashToken(token);
  db.run('INSERT INTO tokens (hash, agent, created_ms, revoked_ms) VALUES (?, ?, ?, NULL)', [hash, agent, now()]);
  return ok({ token, id: hash.slice(0, 12) });
}

/** The agent a presented token belongs to, or null (unknown, revoked, malformed). */
export function verifyToken(db: Db, token: string): string | null {
  if (!token.startsWith(TOKEN_PREFIX) || token.length > 200) return null;
  const hash = hashToken(token);
  const row = db.get<{ hash: string; agent: string; revoked_ms: number | null }>(
    'SELECT hash, agent, revoked_ms FROM tokens WHERE hash = ?',
    [hash],
  );
  if (!row || row.revoked_ms !== null) return null;
  // The lookup is by hash already; the constant-time compare guards against a collation surprise.
  const a = Buffer.from(row.hash, 'hex');
  const b = Buffer.from(hash, 'hex');
  return a.length === b.length && timingSafeEqual(a, b) ? row.agent : null;
}

/** Every token's id, agent and dates — never the token or its full hash. */
export function listTokens(db: Db): TokenInfo[] {
  return db
    .all<{ hash: string; agent: string; created_ms: number; revoked_ms: number | null }>(
      'SELECT hash, agent, created_ms, revoked_ms FROM tokens ORDER BY created_ms, hash',
    )
    .map((r) => ({ id: r.hash.slice(0, 12), agent: r.agent, createdMs: r.created_ms, revokedMs: r.revoked_ms }));
}

/**
 * Revokes by token id (hash prefix, at least 8 chars) or every live token of an agent (`agent:NAME`).
 * Returns how many tokens were revoked.
 */
export function revokeToken(db: Db, which: { id: string } | { agent: string }, now: () => number = Date.now): Result<number> {
  if ('agent' in which) {
    const r = db.run('UPDATE tokens SET revoked_ms = ? WHERE agent = ? AND revoked_ms IS NULL', [now(), which.agent]);
    return r.changes > 0 ? ok(r.changes) : fail('token-not-found', `agent "${which.agent}" has no live token (see: opscrew tokens list)`);
  }
  if (!/^[0-9a-f]{8,64}$/.test(which.id)) {
    return fail('token-id-invalid', `"${which.id}" is not a token id: use the id column of \`opscrew tokens list\` (8+ hex chars)`);
  }
  const rows = db.all<{ hash: string }>('SELECT hash FROM tokens WHERE substr(hash, 1, ?) = ? AND revoked_ms IS NULL', [which.id.length, which.id]);
  if (rows.length === 0) return fail('token-not-found', `no live token with id ${which.id} (see: opscrew tokens list)`);
  if (rows.length > 1) return fail('token-id-ambiguous', `id ${which.id} matches ${rows.length} tokens: give more characters`);
  db.run('UPDATE tokens SET revoked_ms = ? WHERE hash = ?', [now(), rows[0]!.hash]);
  return ok(1);
}
