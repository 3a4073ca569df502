// Specialist profiles: data files (agents/specialists/*.md) read from a directory passed in.
// The front matter is validated here; the body is the specialist's brief.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { TOOL_NAMES } from '../../tools/types.js';
import { fail, formatIssue, ok, type Issue, type Result } from './errors.js';
import { readFrontMatter } from './frontmatter.js';
import { toolsScopeSchema, type AgentScope, type ToolScope } from './scope.js';
import type { ToolName } from '../../tools/types.js';

export interface Specialist {
  name: string;
  description: string;
  keywords: string[];
  tags: string[];
  tools: Partial<Record<ToolName, ToolScope>>;
  model?: string;
  maxTurns: number;
  maxConcurrency: number;
  /** The body: the specialist's brief (system prompt). */
  brief: string;
  /** Where it was read from; '' for built-ins. */
  file: string;
  /** The profile file as written (served as agent://NAME). */
  source: string;
}

export const OBSERVER_NAME = 'observer';

const profileSchema = z.looseObject({
  name: z.string().regex(/^[a-z][a-z0-9-]{0,63}$/, 'use lower-case letters, digits and dashes'),
  description: z.string().min(1),
  keywords: z.array(z.string()).default([]),
  tags: z.array(z.string()).default([]),
  tools: toolsScopeSchema.default({}),
  model: z.string().optional(),
  max_turns: z.number().int().positive().default(30),
  max_concurrency: z.number().int().positive().default(1),
});

/** Loads every `*.md` profile in `dir`, sorted by name. All problems are reported together. */
export function loadSpecialists(dir: string): Result<Specialist[]> {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.md')).sort();
  } catch (cause) {
    return fail('specialists-dir', `cannot read the specialist profiles folder ${dir}: ${String(cause)}`, cause);
  }
  const out: Specialist[] = [];
  const issues: Issue[] = [];
  for (const n of names) {
    const file = join(dir, n);
    const r = parseSpecialist(readFileSync(file, 'utf8'), file);
    if (r.ok) out.push(r.value);
    else issues.push(...r.issues);
  }
  const seen = new Set<string>();
  for (const s of out) {
    if (s.name === OBSERVER_NAME) {
      issues.push({ file: s.file, line: 0, field: 'name', message: `"${OBSERVER_NAME}" is the built-in read-only identity`, fix: 'choose another name' });
    } else if (seen.has(s.name)) {
      issues.push({ file: s.file, line: 0, field: 'name', message: `another profile is already named "${s.name}"`, fix: 'give each profile a unique name' });
    }
    seen.add(s.name);
  }
  if (issues.length > 0) {
    return fail('specialist-invalid', issues.map(formatIssue).join('\n'), issues);
  }
  return ok(out.sort((a, b) => a.name.localeCompare(b.name)));
}

export function parseSpecialist(text: string, file: string): { ok: true; value: Specialist } | { ok: false; issues: Issue[] } {
  const read = readFrontMatter(text, file);
  if (!read.ok) return { ok: false, issues: read.issues };
  const fm = read.value;
  if (!fm.block.present) {
    return { ok: false, issues: [{ file, line: 1, message: 'a specialist profile needs front matter', fix: 'start the file with `---`, then name, description and tools, then `---`' }] };
  }
  const parsed = profileSchema.safeParse(fm.data);
  if (!parsed.success) {
    return {
      ok: false,
      issues: parsed.error.issues.map((i) => {
        const field = i.path.map(String).join('.');
        return { file, line: fm.keyLines[String(i.path[0] ?? '')] ?? 1, field, message: i.message, fix: fixFor(field, i.code) };
      }),
    };
  }
  const p = parsed.data;
  return {
    ok: true,
    value: {
      name: p.name,
      description: p.description,
      keywords: p.keywords,
      tags: p.tags,
      tools: p.tools as Partial<Record<ToolName, ToolScope>>,
      ...(p.model !== undefined ? { model: p.model } : {}),
      maxTurns: p.max_turns,
      maxConcurrency: p.max_concurrency,
      brief: text.slice(fm.bodyOffset).trim(),
      file,
      source: text,
    },
  };
}

function fixFor(field: string, code: string): string {
  if (field.startsWith('tools.') && code === 'unrecognized_keys') {
    return `use only mode, contexts, namespaces, projects, hosts, paths, vault_paths, http_hosts`;
  }
  if (field === 'tools' && code === 'unrecognized_keys') return `tool names are: ${TOOL_NAMES.join(', ')}`;
  if (field.endsWith('.mode')) return 'mode is read, mutate or destructive';
  if (field === 'name') return 'name: lower-case-with-dashes, matching the file name';
  if (field === 'description') return 'add a one-line description: what this specialist does';
  if (field === 'max_turns' || field === 'max_concurrency') return 'a positive whole number';
  return 'see agents/specialists/devops-specialist.md for a valid profile';
}

/** The scope the policy engine enforces for a specialist. */
export function specialistScope(s: Specialist): AgentScope {
  return { name: s.name, tools: s.tools };
}

/** The built-in observer: every tool, read-only. The `--no-auth` default identity. */
export function observerSpecialist(): Specialist {
  const tools: Partial<Record<ToolName, ToolScope>> = {};
  for (const t of TOOL_NAMES) tools[t] = { mode: 'read' };
  return {
    name: OBSERVER_NAME,
    description: 'Read-only observer: looks at tasks and infrastructure, changes nothing.',
    keywords: [],
    tags: [],
    tools,
    maxTurns: 30,
    maxConcurrency: 1,
    brief:
      'You are a read-only observer of the opscrew crew. You may read tasks, messages and approvals, ' +
      'and run read-only checks through the vetted tools. You cannot change infrastructure or tasks.',
    file: '',
    source: '',
  };
}

/** A specialist by name among the loaded ones, or the built-in observer. */
export function findSpecialist(list: readonly Specialist[], name: string): Specialist | undefined {
  if (name === OBSERVER_NAME) return observerSpecialist();
  return list.find((s) => s.name === name);
}
