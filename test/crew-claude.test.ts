// The crew with the Claude brain, end to end: `runCrew({ brain: 'claude' })` routes a task to a
// specialist, gives Claude that specialist's MCP tools (real server, in process), and the real
// @anthropic-ai/sdk talks to the Messages API double. Only a passing `task_submit` completes.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runCrew } from '../agents/runtime/crew.js';
import { OpsError } from '../mcp-server/core/errors.js';
import { ensureWorkspace, resolveWorkspace, type Workspace } from '../mcp-server/core/workspace.js';
import { message, startAnthropicDouble, text, toolUse, type AnthropicDouble } from './harness/anthropic-double.js';
import { startHttpTargets, type HttpTargets } from './harness/http-targets.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const temps: string[] = [];
let http: HttpTargets;
let dbl: AnthropicDouble | undefined;

beforeAll(async () => {
  http = await startHttpTargets();
});
afterEach(async () => {
  expect(dbl?.failures ?? []).toEqual([]);
  await dbl?.close();
  dbl = undefined;
});
afterAll(async () => {
  await http.close();
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

function workspace(): Workspace {
  const dir = mkdtempSync(join(tmpdir(), 'opscrew-crew-claude-'));
  temps.push(dir);
  const ws = resolveWorkspace(dir);
  ensureWorkspace(ws);
  mkdirSync(ws.backlog, { recursive: true });
  writeFileSync(ws.configPath, 'brain: claude\nmax_attempts: 1\ntimeouts: { command: 10s, task: 30s, approval: 5s }\nhttp:\n  allow: [127.0.0.1]\n');
  writeFileSync(
    join(ws.backlog, 'health.md'),
    [
      '---',
      'id: TASK-301',
      'title: Check the service health',
      'agent: observability-specialist',
      '---',
      '# Check the service health',
      '',
      '## Acceptance Criteria',
      '- [ ] The service is healthy',
      '  ```sh',
      `  curl -fsS ${http.base}/health`,
      '  # expect: ok',
      '  ```',
      '',
    ].join('\n'),
  );
  return ws;
}

function env(): NodeJS.ProcessEnv {
  if (!dbl) throw new Error('start the double first');
  return { ...process.env, ANTHROPIC_API_KEY: 'sk-ant-test-dummy', ANTHROPIC_BASE_URL: dbl.url };
}

describe('runCrew with the Claude brain', () => {
  it('completes a task only through task_submit, after working through the specialist’s tools', async () => {
    const ws = workspace();
    dbl = await startAnthropicDouble([
      (req) => {
        // The specialist's tools only: the observability specialist has no vault and no task_create of another's.
        const names = (req.tools ?? []).map((t) => t.name);
        expect(names).toContain('http');
        expect(names).toContain('task_submit');
        expect(names).not.toContain('vault');
        return message(req, [text('Looking at the health endpoint.'), toolUse('http', { args: ['-fsS', `${http.base}/health`] })]);
      },
      (req) => message(req, [toolUse('task_submit', { id: 'TASK-301' })]),
      (req) => {
        // The retrospective agent narrates from the recorded facts, passed as untrusted data, with no tools.
        expect(req.tools ?? []).toEqual([]);
        expect(JSON.stringify(req.messages)).toContain('untrusted');
        expect(JSON.stringify(req.messages)).toContain('TASK-301');
        return message(req, [text('TASK-301 was checked over HTTP and submitted; the health check passed on the first attempt.')]);
      },
    ]);
    const summary = await runCrew({ workspace: ws, specialistsDir: join(ROOT, 'agents', 'specialists'), once: true, env: env(), jsonLog: false });
    expect(summary.completed).toEqual(['TASK-301']);
    expect(dbl.remaining()).toBe(0);
    const done = readFileSync(join(ws.completed, 'health.md'), 'utf8');
    expect(done).toContain('- [x] The service is healthy');
    expect(done).toContain('## Verification Evidence');
    const retros = readdirSync(ws.retrospectives).filter((f) => f.startsWith('retro-') && f.endsWith('-TASK-301.md'));
    expect(retros).toHaveLength(1);
    const retro = readFileSync(join(ws.retrospectives, retros[0] ?? ''), 'utf8');
    // The same facts section as under the runbook brain, plus Claude's narrative.
    expect(retro).toContain('## Facts');
    expect(retro).toContain('## Narrative');
    expect(retro).toContain('the health check passed on the first attempt');
  });

  it('keeps the facts-only retrospective when narration fails', async () => {
    const ws = workspace();
    dbl = await startAnthropicDouble([
      (req) => message(req, [toolUse('task_submit', { id: 'TASK-301' })]),
      () => ({ status: 400, body: { type: 'error', error: { type: 'invalid_request_error', message: 'no narration today' } } }),
    ]);
    const summary = await runCrew({ workspace: ws, specialistsDir: join(ROOT, 'agents', 'specialists'), once: true, env: env(), jsonLog: false });
    expect(summary.completed).toEqual(['TASK-301']);
    const retros = readdirSync(ws.retrospectives).filter((f) => f.endsWith('-TASK-301.md'));
    expect(retros).toHaveLength(1);
    const retro = readFileSync(join(ws.retrospectives, retros[0] ?? ''), 'utf8');
    expect(retro).toContain('## Facts');
    expect(retro).not.toContain('## Narrative');
  });

  it('does not complete a task whose model never submits; the run fails and the task is blocked after max_attempts', async () => {
    const ws = workspace();
    dbl = await startAnthropicDouble([
      (req) => message(req, [text('Everything looks fine; nothing to do.')]),
      (req) => message(req, [text('The model ended without submitting TASK-301; nothing was verified.')]),
    ]);
    const summary = await runCrew({ workspace: ws, specialistsDir: join(ROOT, 'agents', 'specialists'), once: true, env: env(), jsonLog: false });
    expect(summary.completed).toEqual([]);
    expect(summary.blocked.map((b) => b.id)).toEqual(['TASK-301']);
    expect(readdirSync(ws.completed).filter((f) => f.endsWith('.md'))).toEqual([]);
    expect(readFileSync(join(ws.backlog, 'health.md'), 'utf8')).toMatch(/^status: blocked$/m);
  });

  it('fails at start, before claiming anything, without ANTHROPIC_API_KEY', async () => {
    const ws = workspace();
    const noKey = { ...process.env };
    delete noKey.ANTHROPIC_API_KEY;
    await expect(runCrew({ workspace: ws, specialistsDir: join(ROOT, 'agents', 'specialists'), once: true, env: noKey, jsonLog: false })).rejects.toThrow(OpsError);
    expect(readdirSync(ws.backlog)).toEqual(['health.md']);
  });
});
