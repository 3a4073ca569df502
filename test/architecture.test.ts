// Pins the import structure: layers point one way (agents → mcp-server → tools), each
// external library has exactly one owning module, and nothing spawns a shell.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve, dirname, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const LAYERS = ['tools', 'mcp-server', 'agents'] as const;
type Layer = (typeof LAYERS)[number];
const RANK: Record<Layer, number> = { tools: 0, 'mcp-server': 1, agents: 2 };

/** External library → the only module (path relative to the root) allowed to import it. */
const OWNERS: Record<string, string[]> = {
  execa: ['tools/exec.ts'],
  'better-sqlite3': ['mcp-server/core/store.ts'],
  'gray-matter': ['mcp-server/core/frontmatter.ts'],
  yaml: ['mcp-server/core/yaml.ts'],
};
/** Libraries owned by a folder rather than one file. */
const FOLDER_OWNERS: Record<string, string> = {
  '@anthropic-ai/sdk': 'agents/runtime/anthropic',
  commander: 'agents/cli/',
};

function walk(dir: string, out: string[] = []): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of names) {
    if (name === 'node_modules' || name === 'dist' || name.startsWith('.')) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (/\.(ts|mts)$/.test(name) && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

interface SourceFile {
  rel: string;
  layer: Layer;
  isTest: boolean;
  imports: string[];
  text: string;
}

const IMPORT_RE = /(?:^|\n)\s*(?:import|export)\s[^'"`;]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|(?:^|\n)\s*import\s*['"]([^'"]+)['"]/g;

export function importsOf(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(IMPORT_RE)) {
    const spec = m[1] ?? m[2] ?? m[3];
    if (spec) out.push(spec);
  }
  return out;
}

function load(): SourceFile[] {
  const files: SourceFile[] = [];
  for (const layer of LAYERS) {
    for (const abs of walk(join(ROOT, layer))) {
      const rel = relative(ROOT, abs).split(sep).join('/');
      const text = readFileSync(abs, 'utf8');
      files.push({ rel, layer, isTest: rel.includes('/test/'), imports: importsOf(text), text });
    }
  }
  return files;
}

function layerOf(rel: string): Layer | null {
  const top = rel.split('/')[0];
  return (LAYERS as readonly string[]).includes(top ?? '') ? (top as Layer) : null;
}

function packageName(spec: string): string {
  if (spec.startsWith('@')) return spec.split('/').slice(0, 2).join('/');
  return spec.split('/')[0] ?? spec;
}

const files = load();
const sources = files.filter((f) => !f.isTest);

describe('architecture', () => {
  it('finds the layers it is guarding', () => {
    expect(sources.some((f) => f.layer === 'tools')).toBe(true);
    expect(sources.some((f) => f.layer === 'mcp-server')).toBe(true);
  });

  it('the import scanner sees every import form', () => {
    const text = `import a from 'x';\nimport { b } from "y";\nexport * from './z.js';\nconst c = await import('w');\nimport 'side';\nimport type { T } from 't';`;
    expect(importsOf(text).sort()).toEqual(['side', 't', 'w', 'x', 'y', './z.js'].sort());
  });

  it('imports point one way: agents → mcp-server → tools', () => {
    const violations: string[] = [];
    for (const f of files) {
      for (const spec of f.imports) {
        if (!spec.startsWith('.')) continue;
        const target = relative(ROOT, resolve(ROOT, dirname(f.rel), spec)).split(sep).join('/');
        const tl = layerOf(target);
        if (!tl) continue;
        // Tests may import their own layer and lower ones, never a higher layer.
        if (RANK[tl] > RANK[f.layer]) violations.push(`${f.rel} imports ${spec} (${tl} is above ${f.layer})`);
      }
    }
    expect(violations).toEqual([]);
  });

  it('mcp-server/core imports no MCP or Anthropic SDK', () => {
    const bad = sources
      .filter((f) => f.rel.startsWith('mcp-server/core/'))
      .flatMap((f) => f.imports.filter((s) => s.startsWith('@modelcontextprotocol/') || s.startsWith('@anthropic-ai/')).map((s) => `${f.rel}: ${s}`));
    expect(bad).toEqual([]);
  });

  it('each external library is imported by its one owning module', () => {
    const violations: string[] = [];
    for (const f of sources) {
      for (const spec of f.imports) {
        if (spec.startsWith('.') || spec.startsWith('node:')) continue;
        const pkg = packageName(spec);
        const owners = OWNERS[pkg];
        if (owners && !owners.includes(f.rel)) violations.push(`${f.rel} imports ${pkg} (owner: ${owners.join(', ')})`);
        const folder = FOLDER_OWNERS[pkg];
        if (folder && !f.rel.startsWith(folder)) violations.push(`${f.rel} imports ${pkg} (owner: ${folder})`);
      }
    }
    expect(violations).toEqual([]);
  });

  it('tests do not bypass the owners of the database, front matter and yaml libraries', () => {
    const violations: string[] = [];
    for (const f of files.filter((x) => x.isTest)) {
      for (const spec of f.imports) {
        const pkg = packageName(spec);
        if (pkg === 'better-sqlite3' || pkg === 'gray-matter' || pkg === 'yaml') violations.push(`${f.rel} imports ${pkg}`);
      }
    }
    expect(violations).toEqual([]);
  });

  it('no shell and no child_process outside the one execa wrapper', () => {
    const violations: string[] = [];
    for (const f of sources) {
      if (/shell\s*:\s*true/.test(f.text)) violations.push(`${f.rel}: shell: true`);
      for (const spec of f.imports) {
        if (spec === 'child_process' || spec === 'node:child_process') violations.push(`${f.rel}: imports ${spec}`);
      }
    }
    expect(violations).toEqual([]);
  });

  it('mcp-server writes nothing to stdout (stdio belongs to the protocol)', () => {
    const bad = sources
      .filter((f) => f.layer === 'mcp-server')
      .filter((f) => /console\.log\(|process\.stdout\.write\(/.test(f.text))
      .map((f) => f.rel);
    expect(bad).toEqual([]);
  });

  it('no top-level await outside entry files (no work at import time)', () => {
    const bad = sources.filter((f) => /^(?:const [^=]+=\s*)?await\s/m.test(f.text)).map((f) => f.rel);
    expect(bad).toEqual([]);
  });
});
