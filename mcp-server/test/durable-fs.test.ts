import { describe, it, expect, afterEach } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { renameDurable, tempFilePid, tempPathFor, writeFileDurable } from '../core/durable-fs.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'opscrew-dfs-'));
  dirs.push(d);
  return d;
}

describe('durable-fs', () => {
  it('writeFileDurable replaces the content and leaves no temp file', () => {
    const d = tmp();
    const p = join(d, 'a.md');
    writeFileSync(p, 'old');
    writeFileDurable(p, 'new ✓');
    expect(readFileSync(p, 'utf8')).toBe('new ✓');
    expect(readdirSync(d)).toEqual(['a.md']);
  });

  it('renameDurable moves across directories and reports a lost race as false', () => {
    const d = tmp();
    mkdirSync(join(d, 'x'));
    mkdirSync(join(d, 'y'));
    writeFileSync(join(d, 'x', 'a.md'), 'A');
    expect(renameDurable(join(d, 'x', 'a.md'), join(d, 'y', 'a.md'))).toBe(true);
    expect(readFileSync(join(d, 'y', 'a.md'), 'utf8')).toBe('A');
    expect(renameDurable(join(d, 'x', 'a.md'), join(d, 'y', 'b.md'))).toBe(false);
    expect(existsSync(join(d, 'y', 'b.md'))).toBe(false);
    expect(() => renameDurable(join(d, 'y', 'a.md'), join(d, 'nope', 'a.md'))).toThrow();
  });

  it('temp names carry the writer pid and are hidden from *.md scans', () => {
    const t = tempPathFor('/w/tasks/active/fix.md', 4242);
    expect(basename(t).startsWith('.fix.md.')).toBe(true);
    expect(t.endsWith('.md')).toBe(false);
    expect(tempFilePid(basename(t))).toBe(4242);
    expect(tempFilePid('fix.md')).toBeNull();
  });
});
