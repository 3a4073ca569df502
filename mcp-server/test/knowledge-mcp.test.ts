// The knowledge tools through the real MCP SDK client (in-memory transport) over a real store.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { recordCall } from '../core/audit.js';
import { recordRunKnowledge } from '../core/retro.js';
import { makeHarness, textOf, type Harness } from './mcp-harness.js';

let h: Harness;
let c: Client;
const RUN = 'run-20261116-080000-abcd';
beforeAll(async () => {
  h = await makeHarness();
  const db = h.store.db;
  const t = Date.UTC(2026, 10, 16, 8);
  db.run("INSERT INTO runs (id, task_id, agent, attempt, token, holder, outcome, reason, started_ms, ended_ms) VALUES (?, 'TASK-042', 'k8s-specialist', 1, 1, 'h', 'blocked', 'rollout stuck', ?, ?)", [RUN, t, t + 5000]);
  recordCall(db, { tsMs: t + 1000, agent: 'k8s-specialist', taskId: 'TASK-042', runId: RUN, tool: 'kubectl', verb: 'rollout status', canonical: 'kubectl --context minikube -n shop rollout status deployment/web', decision: 'allow', rule: 'allow.read', exitCode: 1, durationMs: 4000, stderr: 'error: deployment "web" exceeded its progress deadline' });
  recordRunKnowledge({ db, root: h.ws.root, retrospectivesDir: h.ws.retrospectives, now: () => t + 6000 }, { runId: RUN });
  c = await h.connect('observer');
});
afterAll(async () => {
  await h.close();
});

type Structured = Record<string, unknown>;
const data = (r: unknown): Structured => (r as { structuredContent: Structured }).structuredContent;

describe('knowledge tools over MCP', () => {
  it('are listed, read-only', async () => {
    const tools = (await c.listTools()).tools.filter((t) => ['knowledge_search', 'knowledge_query', 'knowledge_entity', 'lessons_for'].includes(t.name));
    expect(tools.map((t) => t.name).sort()).toEqual(['knowledge_entity', 'knowledge_query', 'knowledge_search', 'lessons_for']);
    for (const t of tools) expect(t.annotations?.readOnlyHint).toBe(true);
  });

  it('knowledge_search finds the run with citations', async () => {
    const r = await c.callTool({ name: 'knowledge_search', arguments: { query: 'progress deadline' } });
    expect(r.isError).toBeFalsy();
    const hits = data(r).hits as Array<{ taskId: string; runId: string; kind: string }>;
    expect(hits.length).toBeGreaterThan(0);
    expect(hits.every((x) => x.taskId === 'TASK-042' && x.runId === RUN)).toBe(true);
  });

  it('knowledge_entity returns edges both ways', async () => {
    const r = await c.callTool({ name: 'knowledge_entity', arguments: { kind: 'namespace', name: 'shop' } });
    expect(r.isError).toBeFalsy();
    const inc = data(r).incoming as Array<{ kind: string; other: { kind: string; name: string } }>;
    expect(inc).toContainEqual(expect.objectContaining({ kind: 'touched', other: { kind: 'run', name: RUN } }));
    const missing = await c.callTool({ name: 'knowledge_entity', arguments: { kind: 'host', name: 'nope' } });
    expect(missing.isError).toBe(true);
  });

  it('knowledge_query reads, and refuses a write', async () => {
    const r = await c.callTool({ name: 'knowledge_query', arguments: { sql: "SELECT id, outcome FROM runs WHERE task_id = 'TASK-042'" } });
    expect(r.isError).toBeFalsy();
    expect(data(r).rows).toEqual([{ id: RUN, outcome: 'blocked' }]);
    for (const sql of ['DELETE FROM runs', "UPDATE runs SET outcome = 'completed'", 'SELECT 1; DELETE FROM runs', "ATTACH DATABASE 'x.db' AS x"]) {
      const w = await c.callTool({ name: 'knowledge_query', arguments: { sql } });
      expect(w.isError, sql).toBe(true);
      expect(textOf(w)).toMatch(/query-refused/);
    }
    expect(h.store.db.get<{ outcome: string }>('SELECT outcome FROM runs WHERE id = ?', [RUN])?.outcome).toBe('blocked');
  });

  it('lessons_for returns related retros', async () => {
    const r = await c.callTool({ name: 'lessons_for', arguments: { task_id: 'TASK-042' } });
    expect(r.isError).toBeFalsy();
    const retros = data(r).retros as Array<{ runId: string }>;
    expect(retros.map((x) => x.runId)).toEqual([RUN]);
  });
});
