// Resources: task://ID (the task file as written), retro://ID (a retrospective file),
// agent://NAME (a specialist profile). Read-only views of files; nothing here writes.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ResourceTemplate, type McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { Specialist } from './core/specialists.js';

export interface ResourceDeps {
  specialists: readonly Specialist[];
  listTasks: () => Array<{ id: string; title: string }>;
  readTaskText: (id: string) => { file: string; text: string } | null;
  retrospectivesDir: string;
}

const RETRO_ID = /^[A-Za-z0-9._-]{1,200}$/;

function one(v: string | string[] | undefined): string {
  return Array.isArray(v) ? (v[0] ?? '') : (v ?? '');
}

export function listRetros(dir: string): string[] {
  try {
    return readdirSync(dir)
      .filter((n) => n.endsWith('.md'))
      .map((n) => n.slice(0, -3))
      .sort();
  } catch {
    return [];
  }
}

export function registerResources(server: McpServer, deps: ResourceDeps): void {
  server.registerResource(
    'task',
    new ResourceTemplate('task://{id}', {
      list: () => ({
        resources: deps.listTasks().map((t) => ({ uri: `task://${t.id}`, name: t.id, title: t.title, mimeType: 'text/markdown' })),
      }),
    }),
    { title: 'Task file', description: 'A task file as written, with its runner-owned state and evidence.', mimeType: 'text/markdown' },
    (uri, vars) => {
      const id = one(vars.id);
      const t = deps.readTaskText(id);
      if (!t) throw new Error(`no task ${id}: list tasks with task_list`);
      return { contents: [{ uri: uri.href, mimeType: 'text/markdown', text: t.text }] };
    },
  );

  server.registerResource(
    'retro',
    new ResourceTemplate('retro://{id}', {
      list: () => ({
        resources: listRetros(deps.retrospectivesDir).map((id) => ({ uri: `retro://${id}`, name: id, mimeType: 'text/markdown' })),
      }),
    }),
    { title: 'Retrospective', description: 'A run retrospective from retrospectives/.', mimeType: 'text/markdown' },
    (uri, vars) => {
      const id = one(vars.id);
      // The id names a file in one folder; no separators, no `..`.
      if (!RETRO_ID.test(id) || id.includes('..') || !listRetros(deps.retrospectivesDir).includes(id)) {
        throw new Error(`no retrospective ${id}`);
      }
      return { contents: [{ uri: uri.href, mimeType: 'text/markdown', text: readFileSync(join(deps.retrospectivesDir, `${id}.md`), 'utf8') }] };
    },
  );

  server.registerResource(
    'agent',
    new ResourceTemplate('agent://{name}', {
      list: () => ({
        resources: deps.specialists.map((s) => ({ uri: `agent://${s.name}`, name: s.name, description: s.description, mimeType: 'text/markdown' })),
      }),
    }),
    { title: 'Specialist profile', description: 'A specialist profile: tools, scopes and brief.', mimeType: 'text/markdown' },
    (uri, vars) => {
      const name = one(vars.name);
      const s = deps.specialists.find((x) => x.name === name);
      if (!s) throw new Error(`no specialist ${name}`);
      const text = s.source !== '' ? s.source : `---\nname: ${s.name}\ndescription: ${s.description}\n---\n${s.brief}\n`;
      return { contents: [{ uri: uri.href, mimeType: 'text/markdown', text }] };
    },
  );
}
