// `opscrew run`, `approve` and `deny` through the CLI entry, in-process, on real temp workspaces
// with a real local HTTP target.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { main } from '../cli/main.js';
import { captureIO, type CapturedIO } from './capture-io.js';
import { EXIT } from '../cli/exit-codes.js';
import { listApprovals, requestApproval } from '../../mcp-server/core/approvals.js';
import { openStore } from '../../mcp-server/core/store.js';
import { startHttpTargets, type HttpTargets } from '../../test/harness/http-targets.js';

const temps: string[] = [];
let http: HttpTargets;
beforeAll(async () => {
  http = await startHttpTargets();
});
afterAll(async () => {
  await http.close();
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

function io(cwd: string): CapturedIO {
  return captureIO({ cwd });
}

function workspace(config = 'http:\n  allow: [127.0.0.1]\n'): string {
  const dir = mkdtempSync(join(tmpdir(), 'opscrew-cli-run-'));
  temps.push(dir);
  for (const f of ['backlog', 'active', 'completed']) mkdirSync(join(dir, 'tasks', f), { recursive: true });
  writeFileSync(join(dir, 'opscrew.config.yaml'), config);
  return dir;
}

const healthTask = (id: string): string => `---
id: ${id}
---
# Check health ${id}

## Steps
\`\`\`sh
curl -fsS ${'BASE'}/echo/cli-${id}
\`\`\`

## Acceptance Criteria
- [ ] Healthy
  \`\`\`sh
  curl -fsS BASE/health
  # expect: ok
  \`\`\`
`;

describe('opscrew run', () => {
  it('--once processes the backlog, prints a summary and exits 0', async () => {
    const dir = workspace();
    writeFileSync(join(dir, 'tasks', 'backlog', 'a.md'), healthTask('TASK-010').replaceAll('BASE', http.base));
    writeFileSync(join(dir, 'tasks', 'backlog', 'b.md'), '---\nid: TASK-011\nagent: nobody\n---\n# x\n\n## Acceptance Criteria\n- [ ] N/A - nothing\n');
    const o = io(dir);
    const code = await main(['run', '--once', '--json'], o);
    expect(o.stderr()).toContain('TASK-010');
    expect(code).toBe(EXIT.OK);
    const summary = JSON.parse(o.stdout()) as { completed: string[]; blocked: Array<{ id: string; reason: string }> };
    expect(summary.completed).toEqual(['TASK-010']);
    expect(summary.blocked.map((b) => b.id)).toEqual(['TASK-011']);
    expect(summary.blocked[0]?.reason).toContain('agent: nobody is not a known specialist');
    expect(readdirSync(join(dir, 'tasks', 'completed'))).toEqual(['a.md']);
    expect(http.requests.some((r) => r.url === '/echo/cli-TASK-010')).toBe(true);
    // Plain (non-TTY) progress lines carry timestamps; "health" routes to the observability specialist.
    expect(o.stderr()).toMatch(/^\d{4}-\d\d-\d\dT.* TASK-010 .*claimed by observability-specialist/m);
  });

  it('--threads 2 runs two crews that share the backlog; --threads 0 is a usage error', async () => {
    const dir = workspace();
    const ids = ['TASK-040', 'TASK-041', 'TASK-042', 'TASK-043', 'TASK-044', 'TASK-045'];
    // Routed to devops-specialist (max_concurrency 2): one slot in each thread.
    const fetchTask = (id: string): string =>
      `---\nid: ${id}\n---\n# Fetch the echo ${id}\n\n## Steps\n\`\`\`sh\ncurl -fsS ${http.base}/echo/cli-${id}\ncurl -fsS '${http.base}/slow?ms=250'\n\`\`\`\n\n## Acceptance Criteria\n- [ ] N/A - the step is the check\n`;
    for (const id of ids) writeFileSync(join(dir, 'tasks', 'backlog', `${id}.md`), fetchTask(id));
    const o = io(dir);
    expect(await main(['run', '--once', '--json', '--concurrency', '4', '--threads', '2'], o)).toBe(EXIT.OK);
    const summary = JSON.parse(o.stdout()) as { completed: string[] };
    expect([...summary.completed].sort()).toEqual(ids);
    // Each id hit the target once, whichever thread ran it; two holders (one per thread) took work.
    for (const id of ids) expect(http.requests.filter((r) => r.url === `/echo/cli-${id}`)).toHaveLength(1);
    const store = openStore(join(dir, '.opscrew', 'opscrew.db'));
    try {
      const holders = new Set(store.db.all<{ holder: string }>('SELECT holder FROM runs').map((r) => r.holder.replace(/.*#/, '')));
      expect(holders).toEqual(new Set(['0', '1']));
    } finally {
      store.close();
    }
    const bad = io(dir);
    expect(await main(['run', '--once', '--threads', '0'], bad)).toBe(EXIT.USAGE);
    expect(bad.stderr()).toContain('--threads');
  });

  it('refuses --brain claude without ANTHROPIC_API_KEY at start with exit 2 and a clear message', async () => {
    const dir = workspace();
    writeFileSync(join(dir, 'tasks', 'backlog', 'a.md'), healthTask('TASK-020').replaceAll('BASE', http.base));
    const o = io(dir);
    expect(await main(['run', '--once', '--brain', 'claude'], o)).toBe(EXIT.USAGE);
    expect(o.stderr()).toContain('the Claude brain needs ANTHROPIC_API_KEY');
    expect(o.stderr()).toContain('--brain runbook');
    expect(readdirSync(join(dir, 'tasks', 'backlog'))).toEqual(['a.md']);
    const o2 = io(dir);
    writeFileSync(join(dir, 'opscrew.config.yaml'), 'brain: claude\n');
    expect(await main(['run', '--once'], o2)).toBe(EXIT.USAGE);
  });
});

describe('opscrew approve / deny', () => {
  it('approves and denies pending requests as person:<login>, and lists them', async () => {
    const dir = workspace();
    const store = openStore(join(dir, '.opscrew', 'opscrew.db'));
    const a = requestApproval(store.db, { task: 'TASK-030', run: 'run-x', agent: 'devops-specialist', canonical: 'rm -f /srv/a' });
    const b = requestApproval(store.db, { task: 'TASK-031', run: 'run-y', agent: 'devops-specialist', canonical: 'rm -f /srv/b' });
    try {
      const l = io(dir);
      expect(await main(['approve', '--list'], l)).toBe(EXIT.OK);
      expect(l.stdout()).toContain(a);
      expect(l.stdout()).toContain('rm -f /srv/b');

      const o = io(dir);
      expect(await main(['approve', a], o)).toBe(EXIT.OK);
      expect(o.stdout()).toContain(`${a} approved by person:${userInfo().username}`);
      const d = io(dir);
      expect(await main(['deny', b, '--json'], d)).toBe(EXIT.OK);
      expect((JSON.parse(d.stdout()) as { state: string }).state).toBe('denied');

      const rows = listApprovals(store.db, {});
      expect(Object.fromEntries(rows.map((r) => [r.id, [r.state, r.decidedBy]]))).toEqual({
        [a]: ['approved', `person:${userInfo().username}`],
        [b]: ['denied', `person:${userInfo().username}`],
      });
      // Deciding twice, or an unknown id, is a failure with the reason.
      const again = io(dir);
      expect(await main(['approve', a], again)).toBe(EXIT.FAILED);
      expect(again.stderr()).toContain('already approved');
      const unknown = io(dir);
      expect(await main(['deny', 'apr-00000000'], unknown)).toBe(EXIT.FAILED);
      expect(unknown.stderr()).toContain('no approval request apr-00000000');
    } finally {
      store.close();
    }
  });

  it('does not create a store just to say there is nothing to approve', async () => {
    const dir = workspace();
    const o = io(dir);
    expect(await main(['approve', 'apr-12345678'], o)).toBe(EXIT.FAILED);
    expect(o.stderr()).toContain('no approval requests yet');
    expect(readdirSync(dir)).not.toContain('.opscrew');
    expect(readFileSync(join(dir, 'opscrew.config.yaml'), 'utf8')).toContain('127.0.0.1');
  });
});
