import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Issue } from '../core/errors.js';
import { TOOL_NAMES } from '../../tools/types.js';
import { findSpecialist, loadSpecialists, observerSpecialist, specialistScope } from '../core/specialists.js';

const SHIPPED = resolve(dirname(fileURLToPath(import.meta.url)), '../../agents/specialists');
let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'opscrew-spec-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('specialist profiles', () => {
  it('loads the shipped profiles with their scopes and briefs', () => {
    const r = loadSpecialists(SHIPPED);
    if (!r.ok) throw new Error(r.message);
    const names = r.value.map((s) => s.name);
    expect(names).toEqual(expect.arrayContaining(['devops-specialist', 'k8s-specialist', 'secrets-specialist']));
    const k8s = r.value.find((s) => s.name === 'k8s-specialist')!;
    expect(Object.keys(k8s.tools).sort()).toEqual(['http', 'kubectl']);
    expect(k8s.tools.kubectl?.mode).toBe('mutate');
    expect(k8s.brief).toMatch(/^You are the Kubernetes specialist/);
    expect(specialistScope(k8s)).toEqual({ name: 'k8s-specialist', tools: k8s.tools });
  });

  it('names the file, the field and the fix for a bad profile', () => {
    writeFileSync(join(dir, 'bad.md'), '---\nname: bad-one\ndescription: x\ntools:\n  kubectl: { mode: everything }\n  terraform: { mode: read }\n---\nbrief\n');
    writeFileSync(join(dir, 'nodesc.md'), '---\nname: nodesc\n---\nbrief\n');
    const r = loadSpecialists(dir);
    if (r.ok) throw new Error('expected failure');
    expect(r.code).toBe('specialist-invalid');
    const issues = r.cause as Issue[];
    const mode = issues.find((i) => i.field === 'tools.kubectl.mode');
    expect(mode).toMatchObject({ file: join(dir, 'bad.md'), line: 4, fix: 'mode is read, mutate or destructive' });
    const unknown = issues.find((i) => i.file.endsWith('bad.md') && i.field === 'tools');
    expect(unknown?.fix).toContain('kubectl, compose');
    expect(issues.find((i) => i.file.endsWith('nodesc.md'))).toMatchObject({ field: 'description' });
    expect(r.message).toContain('nodesc.md');
  });

  it('refuses duplicate names and the reserved observer name', () => {
    writeFileSync(join(dir, 'a.md'), '---\nname: same\ndescription: a\n---\n');
    writeFileSync(join(dir, 'b.md'), '---\nname: same\ndescription: b\n---\n');
    writeFileSync(join(dir, 'c.md'), '---\nname: observer\ndescription: c\n---\n');
    const r = loadSpecialists(dir);
    expect(r.ok).toBe(false);
    expect(r.ok ? '' : r.message).toMatch(/already named "same"/);
    expect(r.ok ? '' : r.message).toMatch(/built-in read-only identity/);
  });

  it('the observer reads every tool and nothing else', () => {
    const o = observerSpecialist();
    expect(Object.keys(o.tools).sort()).toEqual([...TOOL_NAMES].sort());
    expect(Object.values(o.tools).every((t) => t.mode === 'read')).toBe(true);
    expect(findSpecialist([], 'observer')?.name).toBe('observer');
    expect(findSpecialist([], 'nobody')).toBeUndefined();
  });
});
