// A directory of malformed tasks: every problem is reported with its file and line, and no file
// is moved or changed by scanning, claiming or reconciling.
import { describe, it, expect, afterEach } from 'vitest';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../mcp-server/core/store.js';
import { createFolderQueue } from '../mcp-server/core/queue.js';
import { ensureWorkspace, resolveWorkspace } from '../mcp-server/core/workspace.js';
import type { Issue } from '../mcp-server/core/errors.js';
import { taskText } from './fixtures/task-files.js';

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

const FILES: Record<string, string> = {
  'bad-yaml.md': '---\nid: TASK-001\ntitle: [unclosed\npriority: high\n---\n# Bad YAML\n',
  'js-front-matter.md': '---js\n{ id: "TASK-002", title: require("child_process").execSync("id").toString() }\n---\n# JS\n',
  'unknown-priority.md': '---\nid: TASK-003\ntitle: Unknown priority\npriority: urgent\n---\n# Unknown priority\n',
  'cycle-a.md': taskText({ id: 'TASK-010', title: 'cycle a', depends_on: ['TASK-011'] }),
  'cycle-b.md': taskText({ id: 'TASK-011', title: 'cycle b', depends_on: ['TASK-012'] }),
  'cycle-c.md': taskText({ id: 'TASK-012', title: 'cycle c', depends_on: ['TASK-010'] }),
  'dup-one.md': taskText({ id: 'TASK-020', title: 'dup one' }),
  'dup-two.md': taskText({ id: 'TASK-020', title: 'dup two' }),
  'missing-dep.md': '---\nid: TASK-030\ntitle: Missing dep\ndepends_on:\n  - TASK-010\n  - TASK-099\n---\n# Missing dep\n',
  'binary.md': '\u0000\u0001\u0002garbage\uFFFD\u0000',
};

const sha = (p: string): string => createHash('sha256').update(readFileSync(p)).digest('hex');

describe('bad input', () => {
  it('reports each malformed task with file and line and leaves every file byte-identical', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'opscrew-bad-'));
    const ws = resolveWorkspace(dir);
    ensureWorkspace(ws);
    const store = openStore(ws.dbPath);
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    cleanups.push(() => store.close());
    const hashes = new Map<string, string>();
    for (const [name, text] of Object.entries(FILES)) {
      writeFileSync(join(ws.backlog, name), text);
      hashes.set(name, sha(join(ws.backlog, name)));
    }
    let t = Date.parse('2026-03-01T00:00:00Z');
    const q = createFolderQueue({ workspace: ws, store, now: () => t });
    const rep = await q.reconcile();
    expect(rep.scan.files).toBe(Object.keys(FILES).length);
    expect(rep.scan.assigned).toEqual([]);

    const invalid = await q.invalid();
    const graph = await q.graphIssues();
    const all: Issue[] = [...invalid.flatMap((f) => f.problems), ...graph];
    const at = (file: string): Issue[] => all.filter((i) => i.file === `tasks/backlog/${file}`);

    // The YAML library notices the unclosed `[` on the line after it opens.
    expect([3, 4]).toContain(at('bad-yaml.md')[0]?.line);
    expect(at('bad-yaml.md')[0]!.message).toMatch(/YAML/);
    expect(at('js-front-matter.md')[0]).toMatchObject({ line: 1 });
    expect(at('js-front-matter.md')[0]!.message).toMatch(/js/);
    expect(at('unknown-priority.md')[0]).toMatchObject({ line: 4, field: 'priority' });
    for (const [f, line, next] of [
      ['cycle-a.md', 4, 'TASK-011'],
      ['cycle-b.md', 4, 'TASK-012'],
      ['cycle-c.md', 4, 'TASK-010'],
    ] as const) {
      const cyc = at(f).find((i) => /cycle/.test(i.message));
      expect(cyc, f).toMatchObject({ line, field: 'depends_on' });
      expect(cyc!.message).toContain(next);
      expect(cyc!.message).toMatch(/TASK-01\d -> TASK-01\d -> TASK-01\d -> TASK-01\d/);
    }
    for (const f of ['dup-one.md', 'dup-two.md']) {
      const dup = at(f).find((i) => /duplicate id TASK-020/.test(i.message));
      expect(dup, f).toMatchObject({ line: 2, field: 'id' });
    }
    expect(at('missing-dep.md').find((i) => /TASK-099/.test(i.message))).toMatchObject({ line: 6, field: 'depends_on' });
    for (const f of ['binary.md']) expect(at(f).length, f).toBeGreaterThan(0);
    for (const i of all) expect(i.line, `${i.file}: ${i.message}`).toBeGreaterThanOrEqual(0);

    // Nothing here is runnable: cycles and missing deps never get ready, duplicates are held back.
    expect(await q.ready()).toEqual([]);
    expect(await q.claim()).toBeNull();
    t += 3_600_000;
    await q.reconcile();
    await q.scan();

    expect(readdirSync(ws.active)).toEqual([]);
    expect(readdirSync(ws.completed)).toEqual([]);
    expect(readdirSync(ws.backlog).sort()).toEqual(Object.keys(FILES).sort());
    for (const [name, h] of hashes) expect(sha(join(ws.backlog, name)), name).toBe(h);
  });
});
