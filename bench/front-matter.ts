// `node dist/bench/front-matter.js`: parseTask and updateTaskText per call, fast YAML path vs the
// library path (`fast: false`, i.e. what every call did before the fast path), in one process,
// interleaved round by round so both see the same load. Reports medians of per-round CPU µs/op
// (wall time is noisy while other work shares the cores).
import { parseTask } from '../mcp-server/core/task-parse.js';
import { updateTaskText, type TaskUpdate } from '../mcp-server/core/task-render.js';
import type { YamlPathOptions } from '../mcp-server/core/yaml.js';
import { padding, taskText } from '../test/fixtures/task-files.js';
import { median, table } from './stats.js';

const ROUNDS = 15;
const OPS_PER_ROUND = 400;

/** The crew bench's task shape (bench/crew.ts `taskText`, which is not exported). */
function crewTaskText(i: number): string {
  const id = `TASK-${String(i).padStart(6, '0')}`;
  const lines = ['---', `id: ${id}`, `title: bench get ${i}`, '---', `# bench get ${i}`, '', '## Steps', '```sh'];
  lines.push(`curl -fsS http://127.0.0.1:8080/t/${i}`, '# expect: ok', '```', '', '## Acceptance Criteria', "- [ ] N/A - the step's expectation is the check", '');
  return lines.join('\n');
}

const SHAPES: ReadonlyArray<{ name: string; text: string }> = [
  { name: 'crew task', text: crewTaskText(1) },
  {
    name: 'fixture task',
    text: taskText({ id: 'TASK-000002', title: 'deploy web', priority: 'high', depends_on: ['TASK-000001'], resources: ['db', 'web'], max_attempts: 2, created_at: '2024-05-01T10:00:00.000Z' }),
  },
  { name: 'fixture 5 KB', text: taskText({ id: 'TASK-000003', title: 'long one', padding: padding(5 * 1024) }) },
];

/** The two updates a run makes: the claim's fields, then the finish's. */
const CLAIM: TaskUpdate = { set: { status: 'active', run_id: 'run-01HZX3T9Q2', attempts: 1, started_at: '2024-05-01T10:00:00.000Z' }, unset: ['blocked_reason', 'blocked_at'] };
const FINISH: TaskUpdate = { set: { status: 'completed', completed_at: '2024-05-01T10:00:02.500Z' }, unset: ['run_id'] };

function cpuMicrosPerOp(op: () => unknown): number {
  const start = process.cpuUsage();
  for (let i = 0; i < OPS_PER_ROUND; i++) op();
  const used = process.cpuUsage(start);
  return (used.user + used.system) / OPS_PER_ROUND;
}

interface Case {
  name: string;
  run: (options: YamlPathOptions) => unknown;
}

function cases(): Case[] {
  return SHAPES.flatMap((s) => [
    { name: `parseTask, ${s.name}`, run: (o: YamlPathOptions) => parseTask(s.text, 't.md', o) },
    { name: `updateTaskText claim+finish, ${s.name}`, run: (o: YamlPathOptions) => [updateTaskText(s.text, CLAIM, 't.md', o), updateTaskText(s.text, FINISH, 't.md', o)] },
  ]);
}

function main(): void {
  const rows: string[][] = [['case', 'library µs/op', 'fast µs/op', 'speed-up']];
  for (const c of cases()) {
    const lib = (): unknown => c.run({ fast: false });
    const fast = (): unknown => c.run({});
    if (JSON.stringify(lib()) !== JSON.stringify(fast())) throw new Error(`bench front-matter: ${c.name}: the two paths disagree`);
    cpuMicrosPerOp(lib);
    cpuMicrosPerOp(fast);
    const libRuns: number[] = [];
    const fastRuns: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      // Alternate which goes first so neither always runs on a warmer cache.
      if (r % 2 === 0) {
        libRuns.push(cpuMicrosPerOp(lib));
        fastRuns.push(cpuMicrosPerOp(fast));
      } else {
        fastRuns.push(cpuMicrosPerOp(fast));
        libRuns.push(cpuMicrosPerOp(lib));
      }
    }
    const l = median(libRuns);
    const f = median(fastRuns);
    rows.push([c.name, l.toFixed(1), f.toFixed(1), `${(l / f).toFixed(1)}x`]);
  }
  process.stdout.write(`${table(rows)}\n(CPU time, median of ${ROUNDS} interleaved rounds of ${OPS_PER_ROUND} calls)\n`);
}

main();
