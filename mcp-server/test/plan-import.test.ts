// Plan import: the example plan and four fixture plans of different shapes go through splitPlan,
// every task is rendered and parsed back, and importPlan writes (or, dry, does not write) real files.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { checkExpectations } from '../core/expectations.js';
import { splitPlan, type PlanSplit, type PlanTask } from '../core/plan-import.js';
import { createFilesExclusive, highestTaskNumber, importPlan } from '../core/plan-write.js';
import { parseTask } from '../core/task-parse.js';
import { renderNewTask } from '../core/task-render.js';
import type { CommandItem, Task } from '../core/task-types.js';
import { ensureWorkspace, resolveWorkspace } from '../core/workspace.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.join(HERE, '..', '..');
const EXAMPLE = path.join(ROOT, 'examples', 'plans', 'observability-rollout.md');
const fixturePath = (name: string): string => path.join(HERE, 'fixtures', 'plans', name);

const temps: string[] = [];
afterAll(() => {
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

function split(text: string, file = 'plan.md', first = 1): PlanSplit {
  let n = first;
  const r = splitPlan(text, file, { nextId: () => `TASK-${String(n++).padStart(3, '0')}` });
  if (!r.ok) throw new Error(`${r.code}: ${r.message}`);
  return r.value;
}

function splitFile(p: string): { plan: PlanSplit; text: string } {
  const text = readFileSync(p, 'utf8');
  return { plan: split(text, path.basename(p)), text };
}

/** Render a task and parse it back; fails the test when the result is not a valid task. */
function roundTrip(t: PlanTask): Task {
  const r = parseTask(renderNewTask(t), `${t.id ?? 'x'}.md`);
  if (!r.ok) throw new Error(r.issues.map((i) => `${i.line}: ${i.message}`).join('\n'));
  return r.task;
}

/** 1-based line of the first line of `text` that contains `needle`. */
function lineOf(text: string, needle: string): number {
  const i = text.split('\n').findIndex((l) => l.includes(needle));
  if (i < 0) throw new Error(`not in the plan: ${needle}`);
  return i + 1;
}

function commands(items: Task['steps']): string[] {
  return items.filter((i): i is CommandItem => i.kind === 'command').map((i) => i.text);
}

function warningsMatching(plan: PlanSplit, re: RegExp): PlanSplit['warnings'] {
  return plan.warnings.filter((w) => re.test(w.message));
}

describe('splitPlan: the example observability plan', () => {
  const { plan, text } = splitFile(EXAMPLE);
  const parsed = plan.tasks.map(roundTrip);

  it('yields exactly three tasks with P0/P1/P2 mapped to critical/high/medium', () => {
    expect(plan.title).toBe('Observability rollout for the billing platform');
    expect(plan.tasks.map((t) => t.title)).toEqual(['Alert rules in Prometheus', 'Grafana dashboards provisioned from files', 'Log shipping to Loki']);
    expect(plan.tasks.map((t) => t.priority)).toEqual(['critical', 'high', 'medium']);
    expect(parsed.map((t) => t.fm.priority)).toEqual(['critical', 'high', 'medium']);
    expect(plan.tasks.map((t) => t.estimate)).toEqual(['1h', '2h', '2h']);
    expect(parsed.map((t) => t.fm.extra.estimate)).toEqual(['1h', '2h', '2h']);
    expect(parsed.map((t) => t.fm.tags)).toEqual([['imported'], ['imported'], ['imported']]);
    expect(plan.tasks.map((t) => t.sourceLine)).toEqual([
      lineOf(text, '## Milestone 1'),
      lineOf(text, '## Milestone 2'),
      lineOf(text, '## Milestone 3'),
    ]);
  });

  it('turns the bash block into Steps and the inline curl criteria into verify blocks', () => {
    const [m1, m2, m3] = parsed;
    expect(commands(m1?.steps ?? [])).toEqual(['curl -X POST http://127.0.0.1:9090/-/reload']);
    const rules = m1?.criteria[0];
    expect(rules?.kind).toBe('verify');
    if (rules?.kind !== 'verify') return;
    const cmd = rules.items[0] as CommandItem;
    expect(cmd.text).toBe('curl -s http://127.0.0.1:9090/api/v1/rules');
    expect(cmd.expects).toEqual([expect.objectContaining({ kind: 'contains', text: 'billing' })]);
    expect(m1?.criteria[1]?.kind).toBe('manual');

    const grafana = m2?.criteria[0];
    expect(grafana?.kind).toBe('verify');
    if (grafana?.kind !== 'verify') return;
    expect((grafana.items[0] as CommandItem).text).toBe('curl -s http://127.0.0.1:3000/api/search');
    expect((grafana.items[0] as CommandItem).expects).toEqual([expect.objectContaining({ kind: 'contains', text: 'Billing Overview' })]);

    expect(m3?.criteria.map((c) => c.kind)).toEqual(['manual', 'manual']);
    expect(m3?.steps).toEqual([]);
  });

  it('warns once per manual criterion, at the criterion line', () => {
    const manual = warningsMatching(plan, /^manual criterion/);
    expect(manual.map((w) => w.line)).toEqual([
      lineOf(text, 'Prometheus is healthy'),
      lineOf(text, 'Logs of the `billing-api`'),
      lineOf(text, 'Logs survive'),
    ]);
    expect(manual.every((w) => w.file === 'observability-rollout.md' && w.field === 'Acceptance Criteria' && w.fix)).toBe(true);
  });

  it('puts the plain-text plan rollback into Context with one warning, and adds no dependencies', () => {
    for (const t of parsed) {
      expect(t.context).toContain('Rollback (from the plan): Remove the rule files and reload Prometheus.');
      expect(t.rollback).toEqual([]);
      expect(t.fm.depends_on).toEqual([]);
    }
    expect(warningsMatching(plan, /rollback is plain text/).map((w) => w.line)).toEqual([lineOf(text, '## Rollback')]);
    expect(parsed[0]?.context).toContain(`Imported from observability-rollout.md § "Milestone 1: Alert rules in Prometheus" (line ${lineOf(text, '## Milestone 1')})`);
    expect(parsed[0]?.context).toContain('Load the billing alert rules and reload Prometheus.');
    // The parsed parts are not repeated in Context.
    expect(parsed[0]?.context).not.toContain('Done when');
    expect(parsed[0]?.context).not.toContain('```');
  });
});

describe('splitPlan: a "Phase N —" migration plan with a word-priority table and stated order', () => {
  const { plan, text } = splitFile(fixturePath('postgres-migration.md'));
  const parsed = plan.tasks.map(roundTrip);

  it('finds the four phases, their High/Medium/Low priorities and Effort estimates', () => {
    expect(plan.tasks.map((t) => t.title)).toEqual(['Stand up Postgres 16', 'Copy the data', 'Cut the service over', 'Decommission Postgres 12']);
    expect(parsed.map((t) => t.fm.priority)).toEqual(['high', 'high', 'medium', 'low']);
    expect(plan.tasks.map((t) => t.estimate)).toEqual(['1h', '3h', '1h', '30m']);
    expect(plan.tasks.map((t) => t.id)).toEqual(['TASK-001', 'TASK-002', 'TASK-003', 'TASK-004']);
  });

  it('adds only the dependencies the plan states (table column, "Requires Phase 2", "Once Phase 3")', () => {
    expect(parsed.map((t) => t.fm.depends_on)).toEqual([[], ['TASK-001'], ['TASK-002'], ['TASK-003']]);
  });

  it('takes steps from code blocks in sub-steps, criteria from headings, labels and bold labels', () => {
    const [p1, p2, p3, p4] = parsed;
    expect(commands(p1?.steps ?? [])).toEqual(['docker compose -p orders up -d postgres16']);
    expect(p1?.criteria.map((c) => c.kind)).toEqual(['verify', 'verify']);
    const expects = (t: Task | undefined): string[] =>
      (t?.criteria ?? []).flatMap((c) => (c.kind === 'verify' ? c.items.flatMap((i) => (i.kind === 'command' ? i.expects.map((e) => (e.kind === 'contains' ? e.text : e.kind)) : [])) : []));
    expect(expects(p1)).toEqual(['accepting connections', '16']);
    // Comments are dropped from Steps.
    expect(commands(p2?.steps ?? [])).toEqual([
      'docker compose -p orders exec postgres12 pg_dump -U orders -Fc -f /backup/orders.dump orders',
      'docker compose -p orders exec postgres16 pg_restore -U postgres -d orders -j 4 /backup/orders.dump',
    ]);
    expect(p2?.criteria.map((c) => c.kind)).toEqual(['verify', 'manual']);
    expect(expects(p2)).toEqual(['1042']);
    expect(commands(p2?.rollback ?? [])).toEqual(['docker compose -p orders exec postgres16 dropdb -U postgres orders']);
    expect(expects(p3)).toEqual(['"db":"postgres16"']);
    expect(p3?.rollback).toEqual([]);
    expect(p3?.context).toContain('Rollback (from the plan): point `DATABASE_URL` back at postgres12 and restart the API.');
    expect(p4?.criteria.map((c) => c.kind)).toEqual(['verify', 'manual']);
  });

  it('turns "does not list X" into an expectation that fails when X is printed', () => {
    const c = parsed[3]?.criteria[0];
    if (c?.kind !== 'verify') throw new Error('expected a verify criterion');
    const cmd = c.items[0] as CommandItem;
    expect(cmd.text).toBe('docker compose -p orders ps --services --filter status=running');
    expect(checkExpectations(cmd.expects, { exitCode: 0, stdout: 'orders-api\npostgres16\n' }).passed).toBe(true);
    expect(checkExpectations(cmd.expects, { exitCode: 0, stdout: 'orders-api\npostgres12\npostgres16\n' }).passed).toBe(false);
  });

  it('warns about the plain-text rollback and the manual criteria only', () => {
    expect(warningsMatching(plan, /rollback for "Cut the service over" is plain text/).map((w) => w.line)).toEqual([lineOf(text, '## Phase 3')]);
    expect(warningsMatching(plan, /^manual criterion/).map((w) => w.line)).toEqual([
      lineOf(text, 'The restore log has no errors'),
      lineOf(text, 'Backups of the old volume'),
    ]);
    expect(warningsMatching(plan, /names no task section|priority/)).toEqual([]);
  });
});

describe('splitPlan: a "Task N:" runbook with console transcripts', () => {
  const { plan, text } = splitFile(fixturePath('nginx-runbook.md'));
  const parsed = plan.tasks.map(roundTrip);

  it('makes three tasks with heading priorities, medium (and a warning) where none is given, no order', () => {
    expect(plan.tasks.map((t) => t.title)).toEqual(['Check the current configuration', 'Turn on HTTP/2', 'Enable gzip for JSON']);
    expect(parsed.map((t) => t.fm.priority)).toEqual(['medium', 'high', 'medium']);
    expect(warningsMatching(plan, /no priority for "Check the current configuration"/).map((w) => w.line)).toEqual([lineOf(text, '## Task 1')]);
    expect(parsed.map((t) => t.fm.depends_on)).toEqual([[], [], []]);
  });

  it('keeps only the `$ ` lines of a console block as commands, and single output lines as expectations', () => {
    const [t1, t2] = parsed;
    expect(commands(t1?.steps ?? [])).toEqual(['nginx -t', 'systemctl is-active nginx']);
    const c = t1?.criteria[0];
    if (c?.kind !== 'verify') throw new Error('expected a verify criterion');
    expect(c.items).toEqual([expect.objectContaining({ kind: 'command', text: 'systemctl is-active nginx', expects: [expect.objectContaining({ kind: 'contains', text: 'active' })] })]);
    expect(commands(t2?.steps ?? [])).toEqual(['nginx -t', 'systemctl reload nginx']);
  });

  it('reads "shows", "succeeds", "exits with code 0" and leaves comparisons and prose manual', () => {
    const [, t2, t3] = parsed;
    expect(t2?.criteria.map((c) => c.kind)).toEqual(['verify', 'verify', 'manual']);
    const nginxT = t2?.criteria[1];
    if (nginxT?.kind !== 'verify') throw new Error('expected verify');
    expect((nginxT.items[0] as CommandItem).expects).toEqual([]);
    expect(t3?.criteria.map((c) => c.kind)).toEqual(['manual', 'verify']);
    expect(warningsMatching(plan, /is a comparison/).map((w) => w.line)).toEqual([lineOf(text, 'prints a number below 20000')]);
  });

  it('splits `&&` chains into steps and warns about shell syntax it cannot run', () => {
    const t3 = parsed[2];
    expect(commands(t3?.steps ?? [])).toEqual(['nginx -t', 'systemctl reload nginx', 'cd /etc/nginx', 'grep -r gzip_types .']);
    expect(warningsMatching(plan, /uses shell syntax \(cd\)/).map((w) => w.line)).toEqual([lineOf(text, '$ cd /etc/nginx')]);
    expect(commands(t3?.rollback ?? [])).toEqual(['systemctl reload nginx']);
    expect(t3?.context).toContain('Rollback (from the plan): Restore `/etc/nginx/nginx.conf` from the backup');
  });
});

describe('splitPlan: an "Optimization N:" plan with body labels and a plan-level rollback', () => {
  const { plan, text } = splitFile(fixturePath('api-latency.md'));
  const parsed = plan.tasks.map(roundTrip);

  it('reads **Priority:** P-labels and Estimate/Effort lines, and keeps them out of Context', () => {
    expect(parsed.map((t) => t.fm.priority)).toEqual(['critical', 'high', 'low']);
    expect(plan.tasks.map((t) => t.estimate)).toEqual(['2h', '4h', '1h']);
    for (const t of parsed) {
      expect(t.context).not.toMatch(/Priority|Estimate|Effort/);
    }
    expect(parsed[0]?.context).toContain('Raise the pool size');
  });

  it('chains the tasks because the plan says to apply them in order', () => {
    expect(parsed.map((t) => t.fm.depends_on)).toEqual([[], ['TASK-001'], ['TASK-002']]);
  });

  it('copies the plan-level rollback commands into each task, with one warning', () => {
    for (const t of parsed) {
      expect(commands(t.rollback)).toEqual(['kubectl --context staging -n orders rollout undo deploy/orders-api', 'kubectl --context staging -n orders delete -f k8s/redis-cache.yaml']);
    }
    expect(warningsMatching(plan, /plan-level rollback commands were copied into 3 tasks/).map((w) => w.line)).toEqual([lineOf(text, '## Rollback')]);
  });

  it('checks "returns `3`" and "contains", and warns that "returns 200" needs the status from curl', () => {
    const kinds = parsed.map((t) => t.criteria.map((c) => c.kind));
    expect(kinds).toEqual([['verify', 'manual'], ['verify', 'verify'], ['verify']]);
    expect(warningsMatching(plan, /looks like an HTTP status/).map((w) => w.line)).toEqual([lineOf(text, 'returns 200')]);
    const first = parsed[0]?.criteria[0];
    if (first?.kind !== 'verify') throw new Error('expected verify');
    expect((first.items[0] as CommandItem).expects).toEqual([expect.objectContaining({ kind: 'contains', text: '3' })]);
  });
});

describe('splitPlan: a plan without numbered headings (H2 fallback)', () => {
  const { plan, text } = splitFile(fixturePath('cert-rotation.md'));
  const parsed = plan.tasks.map(roundTrip);

  it('takes only the H2 sections with commands or criteria, skipping Overview and Notes', () => {
    expect(plan.tasks.map((t) => t.title)).toEqual(['Rotate the registry TLS certificate', 'Prune old images']);
    expect(plan.tasks.map((t) => t.sourceLine)).toEqual([lineOf(text, '## Rotate'), lineOf(text, '## Prune')]);
    expect(parsed.map((t) => t.fm.priority)).toEqual(['high', 'low']);
    expect(parsed.map((t) => t.fm.depends_on)).toEqual([[], []]);
  });

  it('reads quoted expectations with punctuation and "runs without errors" as exit 0', () => {
    const [cert, prune] = parsed;
    const c = cert?.criteria[0];
    if (c?.kind !== 'verify') throw new Error('expected verify');
    expect((c.items[0] as CommandItem).expects).toEqual([expect.objectContaining({ kind: 'contains', text: 'Verify return code: 0 (ok)' })]);
    expect(cert?.criteria[1]?.kind).toBe('manual');
    const p = prune?.criteria[0];
    if (p?.kind !== 'verify') throw new Error('expected verify');
    expect(p.items).toEqual([expect.objectContaining({ text: 'docker system df', expects: [] })]);
  });
});

describe('splitPlan: other shapes and edge cases', () => {
  it('reads roman "Part II" labels and resolves "after Part I"', () => {
    const plan = split(['# Plan', '', '## Part I: Prepare', '```sh', 'df -h /var', '```', '', '## Part II: Migrate (after Part I)', '```sh', 'systemctl stop app', '```'].join('\n'));
    expect(plan.tasks.map((t) => t.title)).toEqual(['Prepare', 'Migrate']);
    expect(plan.tasks.map((t) => t.depends_on)).toEqual([undefined, ['TASK-001']]);
    plan.tasks.forEach(roundTrip);
  });

  it('reads plain numbered headings, skipping numbered background sections', () => {
    const plan = split(
      ['# Plan', '## 1. Background', 'Why.', '## 2) Drain the node', '```sh', 'kubectl drain node-1 --ignore-daemonsets', '```', '## 3. Upgrade kubelet', 'After step 2.', '```sh', 'systemctl restart kubelet', '```'].join('\n'),
    );
    expect(plan.tasks.map((t) => t.title)).toEqual(['Drain the node', 'Upgrade kubelet']);
    expect(plan.tasks.map((t) => t.depends_on)).toEqual([undefined, ['TASK-001']]);
  });

  it('prefers the level with several numbered headings over a numbered title', () => {
    const plan = split(['# Phase 1 — Storage', '## Step 1: Resize', '```sh', 'lvextend -L +10G /dev/vg0/data', '```', '## Step 2: Grow the filesystem', '```sh', 'resize2fs /dev/vg0/data', '```'].join('\n'));
    expect(plan.tasks.map((t) => t.title)).toEqual(['Resize', 'Grow the filesystem']);
  });

  it('drops the forward edge of a dependency cycle, and keeps explicit task ids', () => {
    const plan = split(['# P', '## Phase 1: A', 'Blocked by Phase 2 and TASK-040.', '## Phase 2: B', 'Depends on: Phase 1'].join('\n'), 'p.md', 50);
    expect(plan.tasks.map((t) => t.depends_on)).toEqual([['TASK-040'], ['TASK-050']]);
    expect(warningsMatching(plan, /would close a cycle/)).toHaveLength(1);
  });

  it('matches roadmap rows by title when the table has no number column, and lets a section label win', () => {
    const plan = split(
      ['# P', '| Work | Priority |', '|---|---|', '| Rotate secrets | Critical |', '| Tune autoscaler | P3 |', '', '## Task 1: Tune the autoscaler', 'Priority: high', '## Task 2: Rotate secrets'].join('\n'),
    );
    expect(plan.tasks.map((t) => t.priority)).toEqual(['high', 'critical']);
    expect(warningsMatching(plan, /says priority high but the roadmap table/)).toHaveLength(1);
  });

  it('fails with PLAN_NO_TASKS and says which headings it looked for', () => {
    const r = splitPlan('# Notes\n\nJust some thoughts.\n\n## Background\n\nNothing to do.\n', 'notes.md', { nextId: () => 'TASK-001' });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.code).toBe('PLAN_NO_TASKS');
    expect(r.message).toContain('Milestone 1');
    expect(r.message).toContain('Success criteria');
  });

  it('drops lines the task parser would reject (bad export, bad expectations, N/A without reason), with warnings', () => {
    const plan = split(
      [
        '# P', '## Task 1: 🚀', '```sh', 'export FOO', 'export BAR=1', 'echo $BAR', '# expect exit: 999', '# expect: /[/', '```',
        'Done when:', '- [ ] N/A', '- [ ] N/A - not on staging', '- [ ] Reachable', '  ```sh', '  # expect: orphan', '  curl -s http://y', '  # expect: good', '  ```',
      ].join('\n'),
    );
    const t = roundTrip(plan.tasks[0] as PlanTask);
    expect(t.title).toBe('🚀');
    expect(t.steps.map((i) => (i.kind === 'command' ? i.text : i.kind))).toEqual(['export', 'echo $BAR']);
    expect(t.criteria.map((c) => c.kind)).toEqual(['na', 'verify']);
    const c = t.criteria[1];
    if (c?.kind !== 'verify') throw new Error('expected verify');
    expect(c.items).toEqual([expect.objectContaining({ text: 'curl -s http://y', expects: [expect.objectContaining({ text: 'good' })] })]);
    expect(warningsMatching(plan, /not a variable assignment|not a valid expectation|gives no reason/)).toHaveLength(4);
  });

  it('keeps a here-document block out of Steps, in Context, with a warning', () => {
    const plan = split(['# P', '## Task 1: Write config', '```sh', 'cat > /etc/x.conf <<EOF', 'a=1', 'EOF', '```'].join('\n'));
    const t = roundTrip(plan.tasks[0] as PlanTask);
    expect(t.steps).toEqual([]);
    expect(t.context).toContain('cat > /etc/x.conf <<EOF');
    expect(warningsMatching(plan, /here-document/)).toHaveLength(1);
  });
});

describe('splitPlan: robustness', () => {
  // Deterministic PRNG so a failure can be replayed.
  function rng(seed: number): () => number {
    let x = seed >>> 0;
    return () => {
      x = (x * 1664525 + 1013904223) >>> 0;
      return x / 2 ** 32;
    };
  }

  it('never throws and every task it makes parses back valid, on cut and shuffled plans', () => {
    const sources = [EXAMPLE, ...['postgres-migration.md', 'nginx-runbook.md', 'api-latency.md', 'cert-rotation.md'].map(fixturePath)].map((p) => readFileSync(p, 'utf8').split('\n'));
    const rand = rng(42);
    let tasks = 0;
    for (let round = 0; round < 300; round++) {
      const src = sources[round % sources.length] ?? [];
      const lines = [...src];
      const cut = Math.floor(rand() * lines.length);
      // Cut the plan anywhere (often inside a code block), then move a few lines around.
      const mutated = lines.slice(0, Math.max(cut, 3));
      for (let k = 0; k < 4; k++) {
        const i = Math.floor(rand() * mutated.length);
        const j = Math.floor(rand() * mutated.length);
        const a = mutated[i] ?? '';
        mutated[i] = mutated[j] ?? '';
        mutated[j] = a;
      }
      let n = 1;
      const r = splitPlan(mutated.join('\n'), 'm.md', { nextId: () => `TASK-${String(n++).padStart(3, '0')}` });
      if (!r.ok) {
        expect(r.code).toBe('PLAN_NO_TASKS');
        continue;
      }
      for (const t of r.value.tasks) {
        const parsed = parseTask(renderNewTask(t), 'm.md');
        if (!parsed.ok) throw new Error(`round ${round}: ${JSON.stringify(parsed.issues)}\n${mutated.join('\n')}`);
        tasks += 1;
      }
    }
    expect(tasks).toBeGreaterThan(100);
  });
});

describe('importPlan', () => {
  function workspace(): ReturnType<typeof resolveWorkspace> {
    const dir = mkdtempSync(path.join(tmpdir(), 'opscrew-plan-'));
    temps.push(dir);
    const ws = resolveWorkspace(dir);
    ensureWorkspace(ws);
    return ws;
  }

  it('numbers after the highest id in the task folders; a dry run writes nothing', () => {
    const ws = workspace();
    writeFileSync(path.join(ws.completed, 'old.md'), '---\nid: TASK-007\ntitle: Old\n---\n# Old\n');
    writeFileSync(path.join(ws.backlog, 'broken.md'), '---\nid: TASK-009\npriority: [\n---\n# Broken\n');
    expect(highestTaskNumber(ws)).toBe(9);
    const r = importPlan({ workspace: ws, planPath: EXAMPLE, dryRun: true });
    if (!r.ok) throw new Error(r.message);
    expect(r.value.dryRun).toBe(true);
    expect(r.value.created.map((t) => t.id)).toEqual(['TASK-010', 'TASK-011', 'TASK-012']);
    expect(r.value.created[0]).toMatchObject({ priority: 'critical', steps: 1, criteria: { verify: 1, manual: 1, na: 0 }, estimate: '1h' });
    expect(readdirSync(ws.backlog)).toEqual(['broken.md']);
  });

  it('writes one valid task per section into the backlog, and never replaces a file', () => {
    const ws = workspace();
    const r = importPlan({ workspace: ws, planPath: fixturePath('postgres-migration.md'), firstNumber: 20 });
    if (!r.ok) throw new Error(r.message);
    expect(r.value.created.map((t) => t.file)).toEqual([
      'tasks/backlog/TASK-020-stand-up-postgres-16.md',
      'tasks/backlog/TASK-021-copy-the-data.md',
      'tasks/backlog/TASK-022-cut-the-service-over.md',
      'tasks/backlog/TASK-023-decommission-postgres-12.md',
    ]);
    for (const t of r.value.created) {
      const parsed = parseTask(readFileSync(path.join(ws.root, t.file), 'utf8'), t.file);
      if (!parsed.ok) throw new Error(JSON.stringify(parsed.issues));
      expect(parsed.task.fm.id).toBe(t.id);
      expect(parsed.task.fm.depends_on).toEqual(t.dependsOn);
    }
    expect(readdirSync(ws.backlog).filter((n) => n.includes('opscrew-tmp'))).toEqual([]);

    // A file already named with the next id: the next import moves past it and leaves it alone.
    const squatter = path.join(ws.backlog, 'TASK-025-notes.md');
    writeFileSync(squatter, 'someone else\n');
    const again = importPlan({ workspace: ws, planPath: EXAMPLE, firstNumber: 24 });
    if (!again.ok) throw new Error(again.message);
    expect(again.value.created.map((t) => t.id)).toEqual(['TASK-026', 'TASK-027', 'TASK-028']);
    expect(readFileSync(squatter, 'utf8')).toBe('someone else\n');
  });

  it('creates files all or nothing and never replaces one (a lost race)', () => {
    const ws = workspace();
    const files = ['a', 'b', 'c'].map((n) => ({ path: path.join(ws.backlog, `${n}.md`), text: `${n}\n`, name: `${n}.md` }));
    writeFileSync(path.join(ws.backlog, 'b.md'), 'theirs\n');
    const r = createFilesExclusive(files, ws.backlog);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.code).toBe('PLAN_TARGET_EXISTS');
    expect(readdirSync(ws.backlog)).toEqual(['b.md']);
    expect(readFileSync(path.join(ws.backlog, 'b.md'), 'utf8')).toBe('theirs\n');
    const ok2 = createFilesExclusive(files.filter((f) => f.name !== 'b.md'), ws.backlog);
    expect(ok2.ok).toBe(true);
    expect(readdirSync(ws.backlog).sort()).toEqual(['a.md', 'b.md', 'c.md']);
  });

  it('reports a missing plan', () => {
    const ws = workspace();
    const r = importPlan({ workspace: ws, planPath: path.join(ws.root, 'nope.md') });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.code).toBe('PLAN_NOT_FOUND');
  });
});
