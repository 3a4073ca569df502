// The CLI as a person and a script use it: real `node bin/opscrew.js` processes against
// temp workspaces (built by `npm test` before vitest runs).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..', '..');
const BIN = join(ROOT, 'bin', 'opscrew.js');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function opscrew(args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): Run {
  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', LANG: 'C.UTF-8', ...opts.env };
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: opts.cwd ?? ROOT, env, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs the CLI with a reader that takes the first chunk of stdout and closes the pipe. */
function opscrewThenClose(args: string[], cwd: string): Promise<{ code: number | null; signal: string | null; stderr: string }> {
  return new Promise((done) => {
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', LANG: 'C.UTF-8' };
    const p = spawn(process.execPath, [BIN, ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    p.stdout.once('data', () => p.stdout.destroy());
    p.on('close', (code, signal) => done({ code, signal, stderr }));
  });
}

const temps: string[] = [];
function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), `opscrew-cli-${prefix}-`));
  temps.push(d);
  return d;
}

/** A workspace with a config whose files root is `<ws>/srv`, and a file in it. */
function workspace(): string {
  const ws = tempDir('ws');
  expect(opscrew(['init', ws]).code).toBe(0);
  mkdirSync(join(ws, 'srv'));
  writeFileSync(join(ws, 'srv', 'motd.txt'), 'hello from the files root\n');
  writeFileSync(
    join(ws, 'opscrew.config.yaml'),
    [
      'mode: standard',
      'kubernetes:',
      '  contexts:',
      '    staging: { namespaces: [orders] }',
      'files:',
      `  roots: [${join(ws, 'srv')}]`,
      'http:',
      '  allow: [127.0.0.1]',
      '',
    ].join('\n'),
  );
  return ws;
}

function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const n of readdirSync(dir).sort()) out[n] = readFileSync(join(dir, n), 'latin1');
  return out;
}

beforeAll(() => {
  if (!existsSync(join(ROOT, 'dist', 'agents', 'cli', 'main.js'))) throw new Error('build first: npx tsc -p tsconfig.build.json (npm test does)');
});

afterAll(() => {
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

describe('opscrew init', () => {
  it('creates the layout, config, state dir and database, and is idempotent', () => {
    const ws = join(tempDir('init'), 'team-ops');
    const first = opscrew(['init', ws, '--json']);
    expect(first.code).toBe(0);
    const r1 = JSON.parse(first.stdout) as { created: string[]; existing: string[] };
    expect(r1.created).toEqual(expect.arrayContaining(['tasks/backlog/', 'tasks/active/', 'tasks/completed/', 'retrospectives/', 'opscrew.config.yaml', '.opscrew/opscrew.db']));
    expect(readFileSync(join(ws, '.opscrew', '.gitignore'), 'utf8')).toContain('*');
    writeFileSync(join(ws, 'opscrew.config.yaml'), 'mode: read-only\n');
    const second = opscrew(['init', ws, '--json']);
    expect(second.code).toBe(0);
    const r2 = JSON.parse(second.stdout) as { created: string[]; existing: string[] };
    expect(r2.created).toEqual([]);
    expect(r2.existing).toContain('opscrew.config.yaml');
    // never overwrites an existing config
    expect(readFileSync(join(ws, 'opscrew.config.yaml'), 'utf8')).toBe('mode: read-only\n');
  });
});

describe('opscrew tasks new → list → show', () => {
  it('creates a task with the next free id, lists it and shows its parts', () => {
    const ws = workspace();
    const created = opscrew([
      '--workspace', ws, 'tasks', 'new', '--title', 'Scale the orders API', '--priority', 'high', '--tag', 'kubernetes',
      '--step', 'kubectl --context staging -n orders scale deploy/orders-api --replicas=3',
      '--criterion', 'Three replicas are ready :: kubectl --context staging -n orders get deploy orders-api',
      '--criterion', 'Someone watched the dashboard', '--json',
    ]);
    expect(created.stderr).toBe('');
    expect(created.code).toBe(0);
    const c = JSON.parse(created.stdout) as { id: string; file: string };
    expect(c.id).toMatch(/^TASK-\d{3,}$/);
    expect(c.file.startsWith('tasks/backlog/')).toBe(true);
    expect(existsSync(join(ws, c.file))).toBe(true);

    const again = JSON.parse(opscrew(['--workspace', ws, 'tasks', 'new', '--title', 'Second', '--json']).stdout) as { id: string };
    expect(Number(again.id.slice(5))).toBe(Number(c.id.slice(5)) + 1);

    const list = opscrew(['--workspace', ws, 'tasks', 'list', '--json']);
    expect(list.code).toBe(0);
    const l = JSON.parse(list.stdout) as { tasks: Array<{ id: string; title: string; priority: string; folder: string }> };
    expect(l.tasks.map((t) => t.id).sort()).toEqual([c.id, again.id].sort());
    expect(l.tasks.find((t) => t.id === c.id)).toMatchObject({ title: 'Scale the orders API', priority: 'high', folder: 'backlog' });

    const human = opscrew(['--workspace', ws, 'tasks', 'list', '--status', 'backlog']);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain(c.id);
    expect(human.stdout).toContain('Scale the orders API');

    const show = opscrew(['--workspace', ws, 'tasks', 'show', c.id, '--json']);
    expect(show.code).toBe(0);
    const s = JSON.parse(show.stdout) as { task: { fm: { id: string; tags: string[] }; steps: Array<{ kind: string; text: string }>; criteria: Array<{ kind: string }> } };
    expect(s.task.fm.id).toBe(c.id);
    expect(s.task.fm.tags).toEqual(['kubernetes']);
    expect(s.task.steps.some((x) => x.kind === 'command' && x.text.includes('--replicas=3'))).toBe(true);
    expect(s.task.criteria.map((x) => x.kind)).toEqual(['verify', 'manual']);

    const text = opscrew(['--workspace', ws, 'tasks', 'show', c.id]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('[verify] Three replicas are ready');
    expect(text.stdout).toContain('[manual] Someone watched the dashboard');

    const missing = opscrew(['--workspace', ws, 'tasks', 'show', 'TASK-999']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('TASK-999');
  });

  it('honours OPSCREW_WORKSPACE', () => {
    const ws = workspace();
    const created = opscrew(['tasks', 'new', '--title', 'From the env', '--json'], { env: { OPSCREW_WORKSPACE: ws }, cwd: tmpdir() });
    expect(created.code).toBe(0);
    const { file } = JSON.parse(created.stdout) as { file: string };
    expect(existsSync(join(ws, file))).toBe(true);
    const list = JSON.parse(opscrew(['tasks', 'list', '--json'], { env: { OPSCREW_WORKSPACE: ws }, cwd: tmpdir() }).stdout) as { tasks: Array<{ title: string }> };
    expect(list.tasks.map((t) => t.title)).toEqual(['From the env']);
  });

  it('stops quietly when the reader closes the pipe early (`tasks list --json | head`)', async () => {
    const ws = workspace();
    // Enough output to outgrow the pipe's buffer, so the write after the close meets EPIPE.
    for (let i = 1; i <= 600; i++) {
      writeFileSync(join(ws, 'tasks', 'backlog', `t${i}.md`), `---\nid: TASK-${String(i).padStart(3, '0')}\ntitle: ${'pipe test '.repeat(20)}${i}\n---\n# t${i}\n\n## Acceptance Criteria\n- [ ] N/A - nothing\n`);
    }
    expect(opscrew(['--workspace', ws, 'tasks', 'list', '--json']).stdout.length).toBeGreaterThan(256 * 1024);
    const r = await opscrewThenClose(['--workspace', ws, 'tasks', 'list', '--json'], ws);
    expect(r.stderr).toBe('');
    expect(r.signal).toBeNull();
    expect(r.code).toBe(0);
  });

  it('refuses a folder that is not a workspace with exit 6', () => {
    const r = opscrew(['--workspace', tempDir('empty'), 'tasks', 'list']);
    expect(r.code).toBe(6);
    expect(r.stderr).toContain('opscrew init');
  });
});

describe('opscrew tasks lint', () => {
  const BAD: Record<string, string> = {
    'bad-yaml.md': '---\ntitle: [unclosed\n---\n# Bad yaml\n',
    'js-front-matter.md': '---js\n{ title: "x" }\n---\n# JS\n',
    'bad-priority.md': '---\nid: TASK-101\npriority: urgent\n---\n# Unknown priority\n',
    'cycle-a.md': '---\nid: TASK-102\ndepends_on: [TASK-103]\n---\n# A\n',
    'cycle-b.md': '---\nid: TASK-103\ndepends_on: [TASK-102]\n---\n# B\n',
    'dup-1.md': '---\nid: TASK-104\n---\n# Dup one\n',
    'dup-2.md': '---\nid: TASK-104\n---\n# Dup two\n',
    'missing-dep.md': '---\nid: TASK-105\ndepends_on: [TASK-999]\n---\n# Missing dep\n',
    'shell-line.md': '---\nid: TASK-106\n---\n# Shell\n\n## Steps\n```sh\nrm -rf /tmp/x; echo done\n```\n',
    'out-of-scope.md': '---\nid: TASK-107\n---\n# Scope\n\n## Steps\n```sh\nkubectl --context prod -n orders get pods\n```\n',
    'no-id-ok.md': '---\ntitle: Fine\n---\n# Fine\n\n## Steps\n```sh\nkubectl --context staging -n orders get pods\n```\n',
  };

  it('reports every problem as file:line:, exits 1, and leaves every file byte-identical', () => {
    const ws = workspace();
    const dir = join(ws, 'incoming');
    mkdirSync(dir);
    for (const [n, t] of Object.entries(BAD)) writeFileSync(join(dir, n), t);
    const before = snapshot(dir);
    const r = opscrew(['tasks', 'lint', 'incoming'], { cwd: ws });
    expect(r.code).toBe(1);
    const lines = r.stdout.trim().split('\n');
    for (const l of lines) expect(l).toMatch(/^incoming\/[a-z0-9-]+\.md:\d+:/);
    const files = new Set(lines.map((l) => l.split(':')[0]));
    for (const n of Object.keys(BAD)) if (n !== 'no-id-ok.md') expect(files).toContain(`incoming/${n}`);
    expect(files).not.toContain('incoming/no-id-ok.md');
    expect(r.stdout).toMatch(/incoming\/shell-line\.md:8: .*`;`/);
    expect(r.stdout).toMatch(/incoming\/out-of-scope\.md:8: .*prod/);
    expect(r.stdout).toMatch(/incoming\/missing-dep\.md:3: .*TASK-999/);
    expect(snapshot(dir)).toEqual(before);

    const json = opscrew(['tasks', 'lint', 'incoming', '--json'], { cwd: ws });
    expect(json.code).toBe(1);
    const j = JSON.parse(json.stdout) as { ok: boolean; files: Array<{ file: string; valid: boolean; problems: Array<{ line: number }> }> };
    expect(j.ok).toBe(false);
    expect(j.files.find((f) => f.file === 'incoming/no-id-ok.md')?.valid).toBe(true);
    expect(j.files.find((f) => f.file === 'incoming/cycle-a.md')?.problems.length).toBeGreaterThan(0);
    expect(snapshot(dir)).toEqual(before);
  });

  it("passes the project's own examples against the example config", () => {
    const ws = tempDir('examples');
    expect(opscrew(['init', ws]).code).toBe(0);
    writeFileSync(join(ws, 'opscrew.config.yaml'), readFileSync(join(ROOT, 'examples', 'opscrew.config.yaml')));
    const r = opscrew(['--workspace', ws, 'tasks', 'lint', join(ROOT, 'examples', 'tasks')]);
    expect(r.stdout).toBe('');
    expect(r.code).toBe(0);
  });
});

describe('opscrew check-command', () => {
  it('exits 0 / 3 / 4 / 5 for allowed, needs approval, refused and unparseable', () => {
    const ws = workspace();
    const run = (line: string) => opscrew(['--workspace', ws, 'check-command', line, '--json']);
    const allowed = run('kubectl --context staging -n orders get pods');
    expect(allowed.code).toBe(0);
    const a = JSON.parse(allowed.stdout) as { call: { tool: string; verb: string; class: string }; decision: { verdict: string; rule: string } };
    expect(a.call).toMatchObject({ tool: 'kubectl', verb: 'get', class: 'read' });
    expect(a.decision.verdict).toBe('allow');

    const approval = run('kubectl --context staging -n orders delete pod orders-api-1');
    expect(approval.code).toBe(3);
    expect((JSON.parse(approval.stdout) as { call: { class: string } }).call.class).toBe('destructive');

    const refused = run('kubectl --context prod -n orders get pods');
    expect(refused.code).toBe(4);
    expect((JSON.parse(refused.stdout) as { decision: { verdict: string } }).decision.verdict).toBe('deny');

    const shell = run('rm -rf / ; echo');
    expect(shell.code).toBe(5);
    expect((JSON.parse(shell.stdout) as { parsed: boolean }).parsed).toBe(false);

    const human = opscrew(['--workspace', ws, 'check-command', 'kubectl --context staging -n orders get pods']);
    expect(human.stdout).toMatch(/tool:\s+kubectl/);
    expect(human.stdout).toMatch(/decision:\s+allow/);
  });

  it("decides within a specialist's scope with --agent, and reports an unknown agent clearly", () => {
    const ws = workspace();
    const scale = 'kubectl --context staging -n orders scale deploy/orders-api --replicas=2';
    expect(opscrew(['--workspace', ws, 'check-command', scale, '--agent', 'k8s-specialist']).code).toBe(0);
    const other = opscrew(['--workspace', ws, 'check-command', scale, '--agent', 'devops-specialist', '--json']);
    expect(other.code).toBe(4);
    expect((JSON.parse(other.stdout) as { agent: string; decision: { rule: string } }).agent).toBe('devops-specialist');
    const r = opscrew(['--workspace', ws, 'check-command', 'kubectl --context staging -n orders get pods', '--agent', 'nobody-specialist']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('unknown agent');
  });
});

describe('opscrew exec and audit', () => {
  it('runs an allowed local command, prints its output and records an audit row', () => {
    const ws = workspace();
    const file = join(ws, 'srv', 'motd.txt');
    const r = opscrew(['--workspace', ws, 'exec', `cat ${file}`]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('hello from the files root\n');

    const denied = opscrew(['--workspace', ws, 'exec', 'cat /etc/passwd']);
    expect(denied.code).toBe(4);
    expect(denied.stdout).toBe('');

    const audit = opscrew(['--workspace', ws, 'audit', '--json']);
    expect(audit.code).toBe(0);
    const rows = (JSON.parse(audit.stdout) as { calls: Array<{ canonical: string; decision: string; exitCode: number | null; agent: string; tool: string }> }).calls;
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatchObject({ tool: 'files', decision: 'allow', exitCode: 0, agent: 'person' });
    expect(rows[0]?.canonical).toContain('motd.txt');
    expect(rows[1]).toMatchObject({ decision: 'deny' });

    const since = JSON.parse(opscrew(['--workspace', ws, 'audit', '--since', '1h', '--limit', '1', '--json']).stdout) as { calls: unknown[] };
    expect(since.calls).toHaveLength(1);
    const future = JSON.parse(opscrew(['--workspace', ws, 'audit', '--since', '2999-01-01', '--json']).stdout) as { calls: unknown[] };
    expect(future.calls).toHaveLength(0);
    expect(opscrew(['--workspace', ws, 'audit', '--since', 'yesterday-ish']).code).toBe(2);
  });
});

describe('usage', () => {
  const COMMANDS = [['init'], ['tasks'], ['tasks', 'list'], ['tasks', 'show'], ['tasks', 'lint'], ['tasks', 'new'], ['check-command'], ['exec'], ['audit'], ['demo']];

  it('--help works on every command and mentions it', () => {
    const top = opscrew(['--help']);
    expect(top.code).toBe(0);
    expect(top.stdout).toContain('Exit codes:');
    for (const c of COMMANDS) {
      const r = opscrew([...c, '--help']);
      expect(r.code, c.join(' ')).toBe(0);
      expect(r.stdout, c.join(' ')).toContain(c[c.length - 1]);
    }
  });

  it('an unknown command or option is a usage error (exit 2)', () => {
    expect(opscrew(['frobnicate']).code).toBe(2);
    expect(opscrew(['tasks', 'list', '--no-such-flag']).code).toBe(2);
    expect(opscrew(['tasks', 'list', '--status', 'sideways']).code).toBe(2);
  });

  it('the demo refuses a --dir that exists (the full demo run is agents/test/demo.test.ts)', () => {
    const dir = tempDir('demo');
    const r = opscrew(['demo', '--dir', dir]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('exists already');
    expect(readdirSync(dir)).toEqual([]);
  });
});
