import { describe, it, expect } from 'vitest';
import { checkTaskGraph, frontMatterLine, type GraphNode } from '../core/task-graph.js';

const node = (file: string, id: string, deps: string[], text?: string): GraphNode => ({
  file,
  id,
  dependsOn: deps,
  text: text ?? `---\nid: ${id}\ndepends_on: [${deps.join(', ')}]\n---\n# ${id}\n`,
});

describe('task graph', () => {
  it('finds lines of keys and of block-list items inside the front matter only', () => {
    const text = '---\ntitle: x\ndepends_on:\n  - TASK-001\n  - TASK-002\nid: TASK-003\n---\nid: not front matter\n';
    expect(frontMatterLine(text, 'id')).toBe(6);
    expect(frontMatterLine(text, 'depends_on')).toBe(3);
    expect(frontMatterLine(text, 'depends_on', 'TASK-002')).toBe(5);
    expect(frontMatterLine(text, 'agent')).toBe(0);
    expect(frontMatterLine('# no front matter\nid: x\n', 'id')).toBe(0);
  });

  it('reports a clean graph as no issues', () => {
    expect(checkTaskGraph([node('a.md', 'TASK-001', []), node('b.md', 'TASK-002', ['TASK-001'])])).toEqual([]);
  });

  it('reports a self-dependency and each member of a longer cycle with its path', () => {
    const issues = checkTaskGraph([
      node('self.md', 'TASK-009', ['TASK-009']),
      node('a.md', 'TASK-001', ['TASK-002']),
      node('b.md', 'TASK-002', ['TASK-001']),
      node('c.md', 'TASK-003', ['TASK-001']), // depends on the cycle, not part of it
    ]);
    expect(issues.map((i) => [i.file, i.line, i.message])).toEqual([
      ['self.md', 3, 'dependency cycle: TASK-009 -> TASK-009'],
      ['a.md', 3, 'dependency cycle: TASK-001 -> TASK-002 -> TASK-001'],
      ['b.md', 3, 'dependency cycle: TASK-002 -> TASK-001 -> TASK-002'],
    ]);
  });

  it('reports duplicates on every file and missing dependencies on the item line', () => {
    const issues = checkTaskGraph([
      node('a.md', 'TASK-001', []),
      node('b.md', 'TASK-001', []),
      node('c.md', 'TASK-002', ['TASK-001', 'TASK-404'], '---\nid: TASK-002\ndepends_on:\n  - TASK-001\n  - TASK-404\n---\n'),
    ]);
    expect(issues).toEqual([
      expect.objectContaining({ file: 'a.md', line: 2, field: 'id', message: 'duplicate id TASK-001: also used by b.md' }),
      expect.objectContaining({ file: 'b.md', line: 2, field: 'id', message: 'duplicate id TASK-001: also used by a.md' }),
      expect.objectContaining({ file: 'c.md', line: 5, field: 'depends_on', message: 'depends on TASK-404, which no task file has' }),
    ]);
  });

  it('handles a long chain without recursion limits', () => {
    const nodes: GraphNode[] = [];
    for (let i = 0; i < 20_000; i++) nodes.push({ file: `${i}.md`, id: `T-${i}`, dependsOn: i > 0 ? [`T-${i - 1}`] : ['T-19999'], text: '' });
    const issues = checkTaskGraph(nodes.slice(0, 5000).concat(nodes.slice(5000)));
    expect(issues).toHaveLength(20_000); // one ring: every member reported
    const first = issues.find((i) => i.file === '5.md');
    expect(first?.message).toBe('dependency cycle: T-5 -> T-4 -> T-3 -> T-2 -> T-1 -> T-0 -> ... (19991 more) -> T-8 -> T-7 -> T-6 -> T-5');
  });
});
