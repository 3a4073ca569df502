// `opscrew report`, `ask` and `chat` over the fixture history: in-process, and chat as a real
// process reading piped lines (stdin not a TTY).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { main } from '../cli/main.js';
import { runChat } from '../cli/knowledge-actions.js';
import { captureIO, type CapturedIO } from './capture-io.js';
import { buildHistory, type History } from '../../mcp-server/test/knowledge-fixture.js';

const BIN = resolve(dirname(fileURLToPath(import.meta.url)), '../../bin/opscrew.js');
let h: History;
beforeAll(async () => {
  h = await buildHistory();
});
afterAll(() => h.cleanup());

function io(now: number): CapturedIO {
  return captureIO({ env: { OPSCREW_WORKSPACE: h.dir }, cwd: h.dir, now: () => now });
}

describe('opscrew report / ask / chat', () => {
  it('report --json gives the numbers and writes the file', async () => {
    const o = io(h.clock.t);
    expect(await main(['report', '--since', '2026-11-16', '--json'], o)).toBe(0);
    const data = JSON.parse(o.stdout()) as { tasks: { processed: number; completed: number }; criteria: { met: number; total: number }; file: string };
    expect(data.tasks).toMatchObject({ processed: 3, completed: 2 });
    expect(data.criteria).toEqual({ met: 2, total: 3 });
    expect(existsSync(data.file)).toBe(true);
    const md = io(h.clock.t);
    expect(await main(['report', '--since', '7d'], md)).toBe(0);
    expect(md.stdout()).toContain('Acceptance criteria met: 2 of 3');
    expect(await main(['report', '--since', 'yesterday-ish'], io(h.clock.t))).toBe(2);
  });

  it('ask answers with sources, and says when it does not know', async () => {
    const o = io(h.clock.t);
    expect(await main(['ask', 'why', 'is', 'TASK-005', 'blocked?'], o)).toBe(0);
    expect(o.stdout()).toMatch(/TASK-005 Restart the shop web container: blocked/);
    expect(o.stdout()).toMatch(/Sources: .*retrospectives\/retro-\d{8}-\d{6}-TASK-005\.md/);
    const j = io(h.clock.t);
    expect(await main(['ask', 'what happened with TASK-001', '--json'], j)).toBe(0);
    const a = JSON.parse(j.stdout()) as { intent: string; citations: Array<{ kind: string; id: string }> };
    expect(a.intent).toBe('task');
    expect(a.citations.filter((c) => c.kind === 'run').map((c) => c.id).sort()).toEqual([h.runs.r1, h.runs.r2].sort());
    const n = io(h.clock.t);
    await main(['ask', 'anything about the zebra migration?'], n);
    expect(n.stdout()).toMatch(/^I don't know — nothing in the records matches/);
    const help = io(h.clock.t);
    await main(['ask', '--help'], help);
    expect(help.stdout()).toMatch(/no API key is needed/);
  });

  it('chat answers each line until exit (in-process, piped input)', async () => {
    const input = new PassThrough();
    const output = new PassThrough();
    const o = io(h.clock.t);
    const done = runChat(o, h.dir, { input, output });
    input.end('what is the status?\n\nwhat touched namespace ffl\nexit\nwhat happened with TASK-001\n');
    expect(await done).toBe(0);
    expect(o.stdout()).toMatch(/^Tasks: /);
    expect(o.stdout()).toContain('namespace ffl: touched by runs');
    expect(o.stdout()).not.toContain('TASK-001 Restart nginx on web1: completed'); // after `exit`
  });

  it('chat as a real process reads stdin that is not a TTY and quits at end of input', () => {
    if (!existsSync(join(dirname(BIN), '../dist/agents/cli/cmd-knowledge.js'))) throw new Error('build first: npx tsc -p tsconfig.build.json');
    const r = spawnSync(process.execPath, [BIN, 'chat', '--workspace', h.dir], { input: 'which commands fail most, ever?\nwhat is blocked?\n', encoding: 'utf8', timeout: 20_000 });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('Commands that fail most:');
    expect(r.stdout).toContain('TASK-005');
    expect(readdirSync(h.ws.retrospectives).some((f) => f.startsWith('retro-'))).toBe(true);
  });
});
