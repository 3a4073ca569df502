// Extraction: a fixture history of runs (real queue, real audit rows) → exact entities and edges.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { commandFacts, errorSignature, indexRun, indexTask, maskErrorText } from '../core/knowledge-extract.js';
import { knowledgeEntity } from '../core/knowledge.js';
import { buildHistory, type History } from './knowledge-fixture.js';

const SIG_SSH = 'ssh systemctl restart exit=1: job for nginx.service failed because the control process exited with error code <hex>.';
const SIG_CURL = 'http GET exit=7: curl: (<n>) failed to connect to web1.internal port <n> after <n> ms: connection refused';
const SIG_DENY = 'kubectl delete denied: class.destructive';
const SIG_APPROVAL = 'compose restart needs-approval: approval.mutate';

let h: History;
beforeAll(async () => {
  h = await buildHistory();
});
afterAll(() => h.cleanup());

function edges(): string[] {
  const r = h.runs;
  const fix = (s: string): string => s.replace(r.r1, 'R1').replace(r.r2, 'R2').replace(r.r3, 'R3').replace(r.r4, 'R4');
  return h.store.db
    .all<{ s: string; k: string; d: string; run_id: string | null }>(
      `SELECT s.kind || ':' || s.name AS s, e.kind AS k, d.kind || ':' || d.name AS d, e.run_id FROM edges e
         JOIN entities s ON s.id = e.src JOIN entities d ON d.id = e.dst WHERE s.kind <> 'lesson'`,
    )
    .map((x) => `${fix(x.s)} ${x.k} ${fix(x.d)} ${x.run_id === null ? '-' : fix(x.run_id)}`)
    .sort();
}

describe('knowledge extraction', () => {
  it('extracts exactly these entities', () => {
    const r = h.runs;
    const fix = (s: string): string => s.replace(r.r1, 'R1').replace(r.r2, 'R2').replace(r.r3, 'R3').replace(r.r4, 'R4');
    const ents = h.store.db.all<{ k: string }>("SELECT kind || ':' || name AS k FROM entities WHERE kind <> 'lesson'").map((x) => fix(x.k)).sort();
    expect(ents).toEqual(
      [
        'agent:devops-specialist', 'agent:k8s-specialist', 'compose_project:shop',
        `error_signature:${SIG_APPROVAL}`, `error_signature:${SIG_CURL}`, `error_signature:${SIG_DENY}`, `error_signature:${SIG_SSH}`,
        'file:/var/log/app', 'host:web1', 'kube_context:prod', 'namespace:ffl',
        'run:R1', 'run:R2', 'run:R3', 'run:R4', 'secret_path:kv/webhook', 'service:nginx',
        'tag:api', 'tag:nginx', 'tag:vault', 'tag:web',
        'task:TASK-001', 'task:TASK-002', 'task:TASK-003', 'task:TASK-004', 'task:TASK-005',
        'tool:compose', 'tool:http', 'tool:kubectl', 'tool:ssh', 'url_host:web1.internal:8080',
      ].sort(),
    );
    // One lesson entity per lesson row.
    const lessons = h.store.db.get<{ n: number }>('SELECT count(*) AS n FROM lessons')?.n;
    expect(h.store.db.get<{ n: number }>("SELECT count(*) AS n FROM entities WHERE kind = 'lesson'")?.n).toBe(lessons);
  });

  it('extracts exactly these edges', () => {
    expect(edges()).toEqual(
      [
        `error_signature:${SIG_CURL} fixed_by run:R2 R2`,
        `error_signature:${SIG_SSH} fixed_by run:R1 R1`,
        `error_signature:${SIG_SSH} fixed_by run:R2 R2`,
        `run:R1 failed_with error_signature:${SIG_CURL} R1`,
        `run:R1 failed_with error_signature:${SIG_SSH} R1`,
        'run:R1 run_of task:TASK-001 R1',
        'run:R1 touched host:web1 R1',
        'run:R1 touched service:nginx R1',
        'run:R1 touched url_host:web1.internal:8080 R1',
        'run:R1 used agent:devops-specialist R1',
        'run:R1 used tool:http R1',
        'run:R1 used tool:ssh R1',
        'run:R2 run_of task:TASK-001 R2',
        'run:R2 touched host:web1 R2',
        'run:R2 touched service:nginx R2',
        'run:R2 touched url_host:web1.internal:8080 R2',
        'run:R2 used agent:devops-specialist R2',
        'run:R2 used tool:http R2',
        'run:R2 used tool:ssh R2',
        `run:R3 failed_with error_signature:${SIG_DENY} R3`,
        'run:R3 run_of task:TASK-002 R3',
        'run:R3 touched kube_context:prod R3',
        'run:R3 touched namespace:ffl R3',
        'run:R3 used agent:k8s-specialist R3',
        'run:R3 used tool:kubectl R3',
        `run:R4 failed_with error_signature:${SIG_APPROVAL} R4`,
        'run:R4 run_of task:TASK-005 R4',
        'run:R4 used agent:devops-specialist R4',
        'run:R4 used tool:compose R4',
        'task:TASK-001 touched host:web1 -',
        'task:TASK-001 touched service:nginx -',
        'task:TASK-001 touched tag:nginx -',
        'task:TASK-001 touched tag:web -',
        'task:TASK-001 touched url_host:web1.internal:8080 -',
        'task:TASK-001 verified_by run:R2 R2',
        'task:TASK-002 touched kube_context:prod -',
        'task:TASK-002 touched namespace:ffl -',
        'task:TASK-002 touched tag:api -',
        'task:TASK-002 used agent:k8s-specialist -',
        'task:TASK-002 verified_by run:R3 R3',
        'task:TASK-003 depends_on task:TASK-005 -',
        'task:TASK-003 discovered_from task:TASK-001 -',
        'task:TASK-003 touched secret_path:kv/webhook -',
        'task:TASK-003 touched tag:vault -',
        'task:TASK-004 touched file:/var/log/app -',
        `task:TASK-005 blocked_by error_signature:${SIG_APPROVAL} R4`,
        'task:TASK-005 touched compose_project:shop -',
        'task:TASK-005 touched tag:web -',
        'task:TASK-005 used agent:devops-specialist -',
      ].sort(),
    );
    // Every lesson was discovered from the run its retrospective describes.
    const bad = h.store.db.all(
      `SELECT l.id FROM lessons l JOIN entities le ON le.kind = 'lesson' AND le.name = CAST(l.id AS TEXT)
        LEFT JOIN edges e ON e.src = le.id AND e.kind = 'discovered_from' LEFT JOIN entities r ON r.id = e.dst AND r.name = l.run_id
        WHERE r.id IS NULL`,
    );
    expect(bad).toEqual([]);
  });

  it('re-indexing a run or a task replaces its rows (idempotent)', () => {
    const before = edges();
    const docs = h.store.db.get<{ n: number }>('SELECT count(*) AS n FROM kdocs')?.n;
    for (const id of Object.values(h.runs)) indexRun(h.store.db, id, { scrub: h.scrub });
    for (const t of Object.values(h.tasks)) indexTask(h.store.db, t, { scrub: h.scrub });
    for (const t of Object.values(h.tasks)) indexTask(h.store.db, t, { scrub: h.scrub });
    expect(edges()).toEqual(before);
    expect(h.store.db.get<{ n: number }>('SELECT count(*) AS n FROM kdocs')?.n).toBe(docs);
    expect(h.store.db.get<{ n: number }>('SELECT count(*) AS n FROM kfts')?.n).toBe(docs);
    expect(indexRun(h.store.db, 'run-nope')).toBeNull();
  });

  it('knowledgeEntity shows edges in both directions', () => {
    const e = knowledgeEntity(h.store.db, 'host', 'web1');
    expect(e?.entity).toMatchObject({ kind: 'host', name: 'web1' });
    expect(e?.outgoing).toEqual([]);
    const from = e?.incoming.map((x) => `${x.other.kind}:${x.other.name} ${x.kind}`).sort();
    expect(from).toEqual([`run:${h.runs.r1} touched`, `run:${h.runs.r2} touched`, 'task:TASK-001 touched'].sort());
    const t = knowledgeEntity(h.store.db, 'task', 'TASK-003');
    expect(t?.outgoing.map((x) => `${x.kind} ${x.other.name}`)).toContain('depends_on TASK-005');
    expect(knowledgeEntity(h.store.db, 'task', 'TASK-999')).toBeNull();
  });
});

describe('error signatures', () => {
  const base = { tool: 'kubectl', verb: 'get', decision: 'allow', rule: 'allow.read', stdout: null };
  it('groups the same failure across runs and masks ids, numbers, paths, quoted names, hex', () => {
    const a = errorSignature({ ...base, exitCode: 1, stderr: 'Error from server (NotFound): pods "api-7d9f8c6b5-xk2p9" not found\n' });
    const b = errorSignature({ ...base, exitCode: 1, stderr: 'Warning: x\nError from server (NotFound): pods "api-5b4c7d8f9-q7r2m" not found' });
    expect(a).toBe(b);
    expect(a).toBe('kubectl get exit=1: error from server (notfound): pods <q> not found');
    expect(maskErrorText('open /etc/app/7.conf failed at 10.0.0.12:443 id 3f2a9b1c4d id 123e4567-e89b-12d3-a456-426614174000')).toBe(
      'open <path> failed at <ip> id <hex> id <id>',
    );
    expect(errorSignature({ ...base, exitCode: 2, stderr: 'Error from server (NotFound): pods "x" not found' })).not.toBe(a);
    expect(errorSignature({ ...base, exitCode: 0, stderr: 'error: nothing' })).toBeNull();
    expect(errorSignature({ ...base, exitCode: null, stderr: null, decision: 'deny', rule: 'scope.namespace' })).toBe('kubectl get denied: scope.namespace');
  });

  it('commandFacts reads scopes of every tool', () => {
    expect(commandFacts('kubectl --context prod -n ffl get pods').entities).toEqual([
      { kind: 'kube_context', name: 'prod' },
      { kind: 'namespace', name: 'ffl' },
    ]);
    expect(commandFacts('ssh web1 journalctl -u nginx').entities).toEqual([
      { kind: 'host', name: 'web1' },
      { kind: 'service', name: 'nginx' },
    ]);
    expect(commandFacts('docker compose -p shop restart web').entities).toEqual([{ kind: 'compose_project', name: 'shop' }]);
    expect(commandFacts('vault kv patch kv/deploy password={{secret:vault:kv/other#pw}}').entities).toEqual([
      { kind: 'secret_path', name: 'kv/deploy' },
      { kind: 'secret_path', name: 'kv/other#pw' },
    ]);
  });
});
