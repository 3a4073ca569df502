// The gate's group commit: audit rows of executed calls that finish together share one
// transaction (one synchronous=FULL fsync), yet every call resolves only after its own row is
// committed, and a row that cannot be written fails only its own call.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createSecretBroker } from '../../tools/secret-broker.js';
import type { Spawner } from '../../tools/types.js';
import { listAudit } from '../core/audit.js';
import { parseConfigText, type Config } from '../core/config.js';
import { runLine, type GateDeps } from '../core/gate.js';
import { openStore, type Db, type Store } from '../core/store.js';

let dir: string;
let store: Store;
let config: Config;

/** A spawner answering at once, with the program's first argument as output. */
const instant: Spawner = async (req) => ({ exitCode: 0, signal: null, stdout: `out ${req.args.join(' ')}\n`, stderr: '', durationMs: 1, timedOut: false, truncated: false });

/**
 * The store's Db, counting commits that write audit rows (a transaction, or an INSERT on its own)
 * and refusing INSERTs whose parameters mention `poison`.
 */
function instrumented(db: Db): { db: Db; commits: () => number } {
  let commits = 0;
  let depth = 0;
  const wrapped: Db = {
    ...db,
    run: (sql, params) => {
      const insert = /^\s*INSERT INTO tool_calls/.test(sql);
      if (insert && JSON.stringify(params ?? []).includes('poison')) throw new Error('disk says no');
      if (insert && depth === 0) commits++;
      return db.run(sql, params);
    },
    immediate: (fn) => {
      if (depth === 0) commits++;
      depth++;
      try {
        return db.immediate(fn);
      } finally {
        depth--;
      }
    },
    immediateDeferred: (fn) => {
      if (depth === 0) commits++;
      depth++;
      try {
        return db.immediateDeferred(fn);
      } finally {
        depth--;
      }
    },
  };
  return { db: wrapped, commits: () => commits };
}

function deps(db: Db): GateDeps {
  return { db, config, env: {}, broker: createSecretBroker(), now: Date.now, spawn: instant };
}

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'opscrew-gate-gc-'));
  store = openStore(path.join(dir, '.opscrew', 'state.db'));
  const r = parseConfigText('mode: standard\n', { file: path.join(dir, 'opscrew.config.yaml'), workspaceDir: dir, env: { HOME: dir } });
  if (!r.ok) throw new Error(r.message);
  config = r.value;
});
afterEach(() => {
  store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('runLine: group commit of audit rows', () => {
  it('calls finishing together share one transaction; each resolves with its own committed row', async () => {
    const w = instrumented(store.db);
    const units = Array.from({ length: 8 }, (_, i) => `unit-${i}.service`);
    const results = await Promise.all(
      units.map(async (u) => {
        const r = await runLine(deps(w.db), { line: `systemctl status ${u}`, agent: 'person', scope: 'person' });
        // committed by the time the call resolves: a fresh read sees it
        const row = listAudit(store.db).find((x) => x.seq === r.auditSeq);
        return { r, row, u };
      }),
    );
    expect(w.commits()).toBeGreaterThanOrEqual(1);
    expect(w.commits()).toBeLessThan(units.length);
    expect(new Set(results.map((x) => x.r.auditSeq)).size).toBe(units.length);
    for (const { r, row, u } of results) {
      expect(r.ok).toBe(true);
      expect(row).toMatchObject({ decision: 'allow', canonical: `systemctl status ${u}`, exitCode: 0, stdout: `out status ${u}\n` });
    }
    expect(listAudit(store.db)).toHaveLength(units.length);
  });

  it('a row that cannot be written fails only its own call', async () => {
    const w = instrumented(store.db);
    const lines = ['systemctl status a.service', 'systemctl status poison.service', 'systemctl status b.service'];
    const settled = await Promise.allSettled(lines.map((line) => runLine(deps(w.db), { line, agent: 'person', scope: 'person' })));
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(listAudit(store.db).map((r) => r.canonical)).toEqual(['systemctl status a.service', 'systemctl status b.service']);
  });

  it('sequential calls still get one row each, in order', async () => {
    for (const u of ['x.service', 'y.service']) {
      const r = await runLine(deps(store.db), { line: `systemctl status ${u}`, agent: 'person', scope: 'person' });
      expect(r.auditSeq).toBe(listAudit(store.db).at(-1)?.seq);
    }
    expect(listAudit(store.db).map((r) => r.canonical)).toEqual(['systemctl status x.service', 'systemctl status y.service']);
  });
});
