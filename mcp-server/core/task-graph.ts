// Workspace-level checks no single file can make: duplicate ids, dependencies on ids that no
// file has, dependency cycles. Lines are looked up only for files that have a problem, so the
// check stays cheap over thousands of tasks.
import { readFileSync } from 'node:fs';
import type { Issue } from './errors.js';

export interface GraphNode {
  /** Path shown in issues (relative to the workspace, or as the user gave it). */
  file: string;
  id: string;
  dependsOn: readonly string[];
  /** The file text when the caller already has it; else read from `path ?? file` on demand. */
  text?: string;
  path?: string;
}

export interface GraphOptions {
  /** Reads a node's text to locate lines; default reads `path ?? file` from disk. */
  readText?: (node: GraphNode) => string | null;
}

/** 1-based line of a top-level front-matter key (and, if given, of one of its list items); 0 if absent. */
export function frontMatterLine(text: string, key: string, item?: string): number {
  const lines = text.split(/\r?\n/);
  let start = 0;
  if ((lines[0] ?? '').replace(/^\uFEFF/, '').trimEnd() !== '---') return 0;
  start = 1;
  const keyRe = new RegExp(`^${key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s*:`);
  for (let i = start; i < lines.length; i++) {
    const line = lines[i] ?? '';
    if (/^(---|\.\.\.)\s*$/.test(line)) return 0;
    if (!keyRe.test(line)) continue;
    if (item === undefined) return i + 1;
    if (line.includes(item)) return i + 1;
    // Block list: items follow on indented `- ` lines until the next top-level key.
    for (let j = i + 1; j < lines.length; j++) {
      const l = lines[j] ?? '';
      if (/^(---|\.\.\.)\s*$/.test(l) || /^\S/.test(l)) break;
      if (l.includes(item)) return j + 1;
    }
    return i + 1;
  }
  return 0;
}

export function checkTaskGraph(nodes: readonly GraphNode[], opts: GraphOptions = {}): Issue[] {
  const readText =
    opts.readText ??
    ((n: GraphNode): string | null => {
      try {
        return readFileSync(n.path ?? n.file, 'utf8');
      } catch {
        return null;
      }
    });
  const texts = new Map<GraphNode, string | null>();
  const lineOf = (n: GraphNode, key: string, item?: string): number => {
    let t = n.text ?? texts.get(n);
    if (t === undefined) {
      t = readText(n);
      texts.set(n, t);
    }
    return t === null ? 0 : frontMatterLine(t, key, item);
  };

  const issues: Issue[] = [];
  const byId = new Map<string, GraphNode[]>();
  for (const n of nodes) {
    const list = byId.get(n.id);
    if (list) list.push(n);
    else byId.set(n.id, [n]);
  }

  for (const [id, group] of byId) {
    if (group.length < 2) continue;
    for (const n of group) {
      const others = group.filter((o) => o !== n).map((o) => o.file);
      issues.push({
        file: n.file,
        line: lineOf(n, 'id'),
        field: 'id',
        message: `duplicate id ${id}: also used by ${others.join(', ')}`,
        fix: 'give one of the files another id, or delete its id line so the next free id is assigned',
      });
    }
  }

  for (const n of nodes) {
    for (const dep of n.dependsOn) {
      if (byId.has(dep)) continue;
      issues.push({
        file: n.file,
        line: lineOf(n, 'depends_on', dep),
        field: 'depends_on',
        message: `depends on ${dep}, which no task file has`,
        fix: `create the task ${dep}, or remove it from depends_on`,
      });
    }
  }

  for (const cycle of findCycles(byId)) {
    const members = new Set(cycle.members);
    // One BFS per member is quadratic; past a few dozen members, rotate one representative ring.
    const ring = cycle.members.length > MAX_BFS_MEMBERS ? cyclePath(cycle.members[0]!, members, byId).slice(0, -1) : null;
    const ringPos = new Map(ring?.map((id, i) => [id, i]));
    for (const id of cycle.members) {
      const n = byId.get(id)?.[0];
      if (!n) continue;
      const pos = ringPos.get(id);
      const path = ring ? ringPath(ring, pos, id) : cyclePath(id, members, byId);
      const next = path[1] ?? id;
      issues.push({
        file: n.file,
        line: lineOf(n, 'depends_on', next),
        field: 'depends_on',
        message: `dependency cycle: ${showPath(path)}`,
        fix: `remove one of these dependencies so the chain ends (e.g. ${id} on ${next})`,
      });
    }
  }
  return issues;
}

const MAX_BFS_MEMBERS = 64;
const MAX_SHOWN = 12;

/** A long cycle is shown by its ends: the start, what it depends on, and the way back. */
function showPath(path: readonly string[]): string {
  if (path.length <= MAX_SHOWN) return path.join(' -> ');
  return [...path.slice(0, 6), `... (${path.length - 10} more)`, ...path.slice(-4)].join(' -> ');
}

/**
 * The cycle as seen from `id`, built only as far as it is shown (O(1) per member). A member off the
 * representative ring (a knot of several cycles) is shown entering it.
 */
function ringPath(ring: readonly string[], pos: number | undefined, id: string): string[] {
  const L = ring.length;
  if (pos === undefined) return [id, ring[0]!, `... (${L} tasks in this knot)`, id];
  const at = (k: number): string => ring[(pos + k) % L]!;
  if (L + 1 <= MAX_SHOWN) return [...Array.from({ length: L }, (_, k) => at(k)), id];
  return [at(0), at(1), at(2), at(3), at(4), at(5), `... (${L - 9} more)`, at(L - 3), at(L - 2), at(L - 1), id];
}

interface Cycle {
  members: string[];
}

/** Strongly connected components with a cycle (size > 1, or a self-dependency); iterative Tarjan. */
function findCycles(byId: Map<string, GraphNode[]>): Cycle[] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const out: Cycle[] = [];
  let counter = 0;
  const deps = (id: string): string[] => (byId.get(id)?.[0]?.dependsOn ?? []).filter((d) => byId.has(d));

  for (const root of byId.keys()) {
    if (index.has(root)) continue;
    const work: Array<{ id: string; i: number; next: string[] }> = [];
    const visit = (id: string): void => {
      index.set(id, counter);
      low.set(id, counter);
      counter++;
      stack.push(id);
      onStack.add(id);
      work.push({ id, i: 0, next: deps(id) });
    };
    visit(root);
    while (work.length > 0) {
      const top = work[work.length - 1]!;
      if (top.i < top.next.length) {
        const w = top.next[top.i++]!;
        if (!index.has(w)) visit(w);
        else if (onStack.has(w)) low.set(top.id, Math.min(low.get(top.id)!, index.get(w)!));
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent) low.set(parent.id, Math.min(low.get(parent.id)!, low.get(top.id)!));
      if (low.get(top.id) === index.get(top.id)) {
        const members: string[] = [];
        let w: string | undefined;
        do {
          w = stack.pop();
          if (w === undefined) break;
          onStack.delete(w);
          members.push(w);
        } while (w !== top.id);
        if (members.length > 1 || deps(top.id).includes(top.id)) out.push({ members: members.reverse() });
      }
    }
  }
  return out;
}

/** Shortest dependency path from `start` back to itself inside its cycle: [start, ..., start]. */
function cyclePath(start: string, members: Set<string>, byId: Map<string, GraphNode[]>): string[] {
  const prev = new Map<string, string>();
  const queue: string[] = [start];
  for (let qi = 0; qi < queue.length; qi++) {
    const cur = queue[qi]!;
    for (const d of byId.get(cur)?.[0]?.dependsOn ?? []) {
      if (!members.has(d)) continue;
      if (d === start) {
        const path = [start];
        for (let p: string | undefined = cur; p !== undefined && p !== start; p = prev.get(p)) path.splice(1, 0, p);
        path.push(start);
        return path;
      }
      if (!prev.has(d)) {
        prev.set(d, cur);
        queue.push(d);
      }
    }
  }
  return [start, start];
}
