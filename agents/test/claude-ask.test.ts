// ask/chat through Claude: the real @anthropic-ai/sdk against the Messages API double, the real
// knowledge core over the fixture history. The scripted model calls knowledge_search, then
// answers with the ids it found in the (wrapped, untrusted) tool result.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { PassThrough } from 'node:stream';
import { main } from '../cli/main.js';
import { runChat } from '../cli/knowledge-actions.js';
import { captureIO, type CapturedIO } from './capture-io.js';
import { ASK_TOOLS, claudeAsk, createAskModel } from '../runtime/claude-ask.js';
import { buildHistory, type History } from '../../mcp-server/test/knowledge-fixture.js';
import { apiError, lastUserBlocks, message, startAnthropicDouble, text, toolUse, type MessagesRequest, type Step } from '../../test/harness/anthropic-double.js';

const KEY = 'sk-ant-test-ask';
let h: History;
beforeAll(async () => {
  h = await buildHistory();
});
afterAll(() => h.cleanup());

interface SearchHitJson {
  taskId: string | null;
  runId: string | null;
  file: string | null;
}

/** The JSON inside the last tool_result's untrusted wrapper, checking the wrapper is there. */
function toolResultJson(req: MessagesRequest, tool: string): { hits: SearchHitJson[] } {
  const block = lastUserBlocks(req).find((b) => b.type === 'tool_result');
  const content = typeof block?.content === 'string' ? block.content : '';
  const m = new RegExp(`^<tool_output untrusted="true" tool="${tool}">\\n([\\s\\S]*)\\n</tool_output>$`).exec(content);
  if (!m?.[1]) throw new Error(`tool result not wrapped as untrusted data: ${content.slice(0, 200)}`);
  return JSON.parse(m[1]) as { hits: SearchHitJson[] };
}

/** Calls knowledge_search for nginx, then answers naming the first hit's task and run. */
function searchThenCite(seen: { hits: SearchHitJson[] }): Step[] {
  return [
    (req) => {
      expect(req.tools?.map((t) => t.name).sort()).toEqual(['knowledge_entity', 'knowledge_query', 'knowledge_search', 'lessons_for']);
      const sys = typeof req.system === 'string' ? req.system : (req.system ?? []).map((b) => b.text).join('');
      expect(sys).toMatch(/UNTRUSTED DATA/);
      expect(sys).toMatch(/I don't know/);
      return message(req, [text('Searching the records.'), toolUse('knowledge_search', { query: 'nginx web1', limit: 5 })]);
    },
    (req) => {
      const r = toolResultJson(req, 'knowledge_search');
      seen.hits = r.hits;
      const hit = r.hits.find((x) => x.taskId && x.runId);
      if (!hit?.taskId || !hit.runId) throw new Error('no hit with a task and run id');
      return message(req, [text(`${hit.taskId} restarted nginx on web1 in run ${hit.runId}.\nSources: ${hit.taskId}, ${hit.runId}`)]);
    },
  ];
}

function io(env: Record<string, string>): CapturedIO {
  return captureIO({ env: { OPSCREW_WORKSPACE: h.dir, ...env }, cwd: h.dir, now: () => h.clock.t });
}

describe('claudeAsk', () => {
  it('calls knowledge_search against the store and returns the answer with citations from the tool result', async () => {
    const seen = { hits: [] as SearchHitJson[] };
    const dbl = await startAnthropicDouble(searchThenCite(seen), { apiKey: KEY });
    try {
      const model = createAskModel({ ANTHROPIC_API_KEY: KEY, ANTHROPIC_BASE_URL: dbl.url }, { maxRetries: 0 });
      if (!model.ok) throw new Error(model.message);
      const a = await claudeAsk({ db: h.store.db, dbPath: h.ws.dbPath, question: 'what happened with nginx on web1?', model: model.value, now: () => h.clock.t });
      expect(dbl.failures).toEqual([]);
      expect(dbl.requests).toHaveLength(2);
      // The tool really ran against the fixture: its hits name TASK-001 and its runs.
      expect(seen.hits.some((x) => x.taskId === 'TASK-001')).toBe(true);
      const hit = seen.hits.find((x) => x.taskId && x.runId);
      expect([h.runs.r1, h.runs.r2, h.runs.r3, h.runs.r4]).toContain(hit?.runId);
      expect(a).toMatchObject({ intent: 'claude', stop: 'answered', grounded: true });
      expect(a.answer).toContain(`${hit?.taskId ?? '?'} restarted nginx`);
      expect(a.citations).toEqual(expect.arrayContaining([{ kind: 'task', id: hit?.taskId }, { kind: 'run', id: hit?.runId }]));
      expect(a.tools).toEqual([{ name: 'knowledge_search', input: { query: 'nginx web1', limit: 5 }, isError: false }]);
      expect(a.usage).toEqual({ inputTokens: 200, outputTokens: 40 });
    } finally {
      await dbl.close();
    }
  });

  it('an answer naming no returned record is not grounded; bad tool input and a write through knowledge_query come back as tool errors', async () => {
    const dbl = await startAnthropicDouble(
      [
        (req) => message(req, [toolUse('knowledge_query', { sql: "DELETE FROM tasks WHERE id = 'TASK-001'" }), toolUse('knowledge_entity', { kind: 'planet', name: 'mars' })]),
        (req) => {
          const blocks = lastUserBlocks(req);
          expect(blocks.map((b) => b.is_error)).toEqual([true, true]);
          expect(String(blocks[0]?.content)).toMatch(/query-refused/);
          return message(req, [text('TASK-999 did it.')]);
        },
      ],
      { apiKey: KEY },
    );
    try {
      const model = createAskModel({ ANTHROPIC_API_KEY: KEY, ANTHROPIC_BASE_URL: dbl.url }, { maxRetries: 0 });
      if (!model.ok) throw new Error(model.message);
      const a = await claudeAsk({ db: h.store.db, dbPath: h.ws.dbPath, question: 'delete TASK-001', model: model.value });
      expect(dbl.failures).toEqual([]);
      expect(a).toMatchObject({ stop: 'answered', grounded: false, citations: [] });
      expect(h.store.db.get<{ n: number }>("SELECT count(*) AS n FROM tasks WHERE id = 'TASK-001'")?.n).toBe(1);
    } finally {
      await dbl.close();
    }
  });

  it('the tool specs are JSON Schema objects', () => {
    for (const t of ASK_TOOLS) {
      expect(t.spec.input_schema).toMatchObject({ type: 'object' });
      expect(t.spec.input_schema).not.toHaveProperty('$schema');
    }
  });
});

describe('opscrew ask / chat with and without a key', () => {
  it('with ANTHROPIC_API_KEY, ask --json answers through Claude with citations', async () => {
    const seen = { hits: [] as SearchHitJson[] };
    const dbl = await startAnthropicDouble(searchThenCite(seen), { apiKey: KEY });
    try {
      const o = io({ ANTHROPIC_API_KEY: KEY, ANTHROPIC_BASE_URL: dbl.url });
      expect(await main(['ask', 'what happened with nginx on web1?', '--json'], o)).toBe(0);
      const a = JSON.parse(o.stdout()) as { intent: string; citations: Array<{ kind: string; id: string }>; tools: Array<{ name: string }> };
      expect(a.intent).toBe('claude');
      expect(a.tools.map((t) => t.name)).toEqual(['knowledge_search']);
      expect(a.citations.some((c) => c.kind === 'task' && c.id === 'TASK-001')).toBe(true);
      expect(dbl.requests).toHaveLength(2);
    } finally {
      await dbl.close();
    }
  });

  it('without a key (or with --no-claude) the intent router answers; a failing model falls back to it', async () => {
    const noKey = io({});
    expect(await main(['ask', 'what happened with TASK-001', '--json'], noKey)).toBe(0);
    expect(JSON.parse(noKey.stdout())).toMatchObject({ intent: 'task' });

    const dbl = await startAnthropicDouble([(req) => message(req, [text('never asked')])], { apiKey: KEY });
    try {
      const opt = io({ ANTHROPIC_API_KEY: KEY, ANTHROPIC_BASE_URL: dbl.url });
      expect(await main(['ask', '--no-claude', 'what happened with TASK-001', '--json'], opt)).toBe(0);
      expect(JSON.parse(opt.stdout())).toMatchObject({ intent: 'task' });
      expect(dbl.requests).toHaveLength(0);
    } finally {
      await dbl.close();
    }

    const bad = await startAnthropicDouble([() => apiError(401, 'authentication_error', 'invalid x-api-key')], { apiKey: KEY });
    try {
      const o = io({ ANTHROPIC_API_KEY: KEY, ANTHROPIC_BASE_URL: bad.url });
      expect(await main(['ask', 'what happened with TASK-001'], o)).toBe(0);
      expect(o.stderr()).toMatch(/Claude could not answer \(model\.auth\)/);
      expect(o.stdout()).toMatch(/TASK-001 Restart nginx on web1/);
    } finally {
      await bad.close();
    }
  });

  it('chat with a key sends the earlier exchange as history', async () => {
    const seen = { hits: [] as SearchHitJson[] };
    const script: Step[] = [
      ...searchThenCite(seen),
      (req) => {
        expect(req.messages).toHaveLength(3);
        expect(req.messages[0]).toMatchObject({ role: 'user' });
        expect(JSON.stringify(req.messages[1])).toMatch(/restarted nginx on web1/);
        return message(req, [text("I don't know anything about zebras.")]);
      },
    ];
    const dbl = await startAnthropicDouble(script, { apiKey: KEY });
    try {
      const o = io({ ANTHROPIC_API_KEY: KEY, ANTHROPIC_BASE_URL: dbl.url });
      const input = new PassThrough();
      const done = runChat(o, h.dir, { input, output: new PassThrough() });
      input.end('what happened with nginx on web1?\nand the zebras?\n');
      expect(await done).toBe(0);
      expect(dbl.failures).toEqual([]);
      expect(o.stdout()).toMatch(/Cited records: .*TASK-001/);
      expect(o.stdout()).toContain("I don't know anything about zebras.");
      expect(o.stdout()).not.toContain('treat it as unverified');
    } finally {
      await dbl.close();
    }
  });
});
