import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createSecretBroker } from '../../tools/secret-broker.js';
import { excerpt, listAudit, recordCall } from '../core/audit.js';
import { openStore, type Store } from '../core/store.js';

let dir: string;
let store: Store;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'opscrew-audit-'));
  store = openStore(path.join(dir, 'state.db'));
});
afterEach(() => {
  store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const row = (over: Partial<Parameters<typeof recordCall>[1]> = {}): Parameters<typeof recordCall>[1] => ({
  tsMs: 1000,
  agent: 'k8s-specialist',
  taskId: 'TASK-001',
  runId: 'run-1',
  tool: 'kubectl',
  verb: 'get',
  canonical: 'kubectl --context staging -n orders get pods',
  class: 'read',
  decision: 'allow',
  rule: 'class.read',
  exitCode: 0,
  durationMs: 12.6,
  stdout: 'NAME READY\nweb 1/1',
  stderr: '',
  ...over,
});

describe('audit rows', () => {
  it('records allowed and denied calls alike', () => {
    const a = recordCall(store.db, row());
    const d = recordCall(store.db, row({ tsMs: 2000, decision: 'deny', rule: 'scope.namespace', exitCode: null, durationMs: null, stdout: null, stderr: null, canonical: 'kubectl --context staging -n kube-system delete pod x', class: 'destructive', verb: 'delete' }));
    expect(d).toBeGreaterThan(a);
    const rows = listAudit(store.db, { taskId: 'TASK-001' });
    expect(rows.map((r) => [r.decision, r.rule])).toEqual([
      ['allow', 'class.read'],
      ['deny', 'scope.namespace'],
    ]);
    expect(rows[0]).toMatchObject({ agent: 'k8s-specialist', runId: 'run-1', tool: 'kubectl', exitCode: 0, durationMs: 13, stdout: 'NAME READY\nweb 1/1' });
    expect(rows[1]).toMatchObject({ exitCode: null, stdout: null, class: 'destructive' });
  });

  it('is append-only: UPDATE and DELETE are refused by the database', () => {
    recordCall(store.db, row());
    expect(() => store.db.run("UPDATE tool_calls SET decision = 'allow', rule = 'x'")).toThrow(/append-only/);
    expect(() => store.db.run('DELETE FROM tool_calls')).toThrow(/append-only/);
    expect(listAudit(store.db)).toHaveLength(1);
    expect(listAudit(store.db)[0]?.rule).toBe('class.read');
  });

  it('scrubs secrets before truncating the excerpts', () => {
    const broker = createSecretBroker();
    const secret = 's3cr3t-value-XYZ-123456-' + 'q'.repeat(36); // longer than its handle
    const handle = broker.register('vault:kv/deploy#token', secret);
    // The secret sits right at the cut: truncating first would leave a prefix of it behind.
    const stdout = 'x'.repeat(20) + secret + 'y'.repeat(500);
    const b64 = Buffer.from(secret).toString('base64');
    recordCall(store.db, row({ stdout, stderr: `auth: ${b64}`, canonical: `curl -H ${secret}` }), { scrub: (s) => broker.scrub(s), excerptChars: 120 });
    const [r] = listAudit(store.db);
    expect(r?.stdout?.length).toBeLessThanOrEqual(120);
    expect(r?.stdout).toContain(handle);
    expect(JSON.stringify(r)).not.toContain(secret);
    expect(JSON.stringify(r)).not.toContain(b64);
    expect(JSON.stringify(r)).not.toContain(secret.slice(0, 8));
  });

  it('filters by task, time and limit (most recent rows, in order)', () => {
    for (let i = 0; i < 5; i++) recordCall(store.db, row({ tsMs: 1000 + i, taskId: i % 2 ? 'TASK-002' : 'TASK-001' }));
    expect(listAudit(store.db, { taskId: 'TASK-002' })).toHaveLength(2);
    expect(listAudit(store.db, { sinceMs: 1003 }).map((r) => r.tsMs)).toEqual([1003, 1004]);
    expect(listAudit(store.db, { limit: 2 }).map((r) => r.tsMs)).toEqual([1003, 1004]);
  });
});

describe('excerpt', () => {
  it('keeps head and tail around a marker, within the limit', () => {
    const t = 'a'.repeat(1000) + 'TAIL';
    const e = excerpt(t, 200);
    expect(e.length).toBeLessThanOrEqual(200);
    expect(e.startsWith('aaa')).toBe(true);
    expect(e.endsWith('TAIL')).toBe(true);
    expect(e).toContain('chars cut');
    expect(excerpt('short', 200)).toBe('short');
    expect(excerpt('abc', 0)).toBe('');
  });
});
