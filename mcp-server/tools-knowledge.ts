// Knowledge tools: knowledge_search (FTS with citations), knowledge_query (read-only SQL on a
// read-only connection, row and time limits), knowledge_entity (an entity and its edges),
// lessons_for (lessons and retrospectives related to a task). All read-only.
import { z } from 'zod';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { ENTITY_KINDS } from './core/knowledge-extract.js';
import { knowledgeQuery, DEFAULT_QUERY_TIMEOUT_MS, MAX_ROWS_CAP } from './core/knowledge-query.js';
import { knowledgeSearch } from './core/knowledge-search.js';
import { knowledgeEntity, lessonsFor } from './core/knowledge.js';
import type { Db } from './core/store.js';
import { errorResult, jsonResult } from './tool-result.js';

export interface KnowledgeDeps {
  db: Db;
  /** The database file: knowledge_query opens its own read-only connection to it. */
  dbPath: string;
}

const READ = { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false } as const;
const TASK_ID = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/);
/** Upper bound a caller may ask for; the default is lower. */
const MAX_QUERY_TIMEOUT_MS = 10_000;

export function registerKnowledgeTools(server: McpServer, deps: KnowledgeDeps): void {
  server.registerTool(
    'knowledge_search',
    {
      title: 'Search retrospectives, lessons, tasks and observations',
      description:
        'Full-text search (ranked) over retrospectives, lessons, task text and audit observations. Words are matched as words (a trailing * makes a prefix); operators are not interpreted. Every hit cites its task id, run id and retro file.',
      inputSchema: {
        query: z.string().min(1).max(1000),
        limit: z.number().int().min(1).max(50).default(10),
        kinds: z.array(z.enum(['retro', 'lesson', 'task', 'observation'])).max(4).optional().describe('only these document kinds'),
      },
      annotations: READ,
    },
    ({ query, limit, kinds }) => {
      const r = knowledgeSearch(deps.db, query, { limit, ...(kinds ? { kinds } : {}) });
      return jsonResult({ query: r.query, mode: r.mode, ranking: r.ranking, hits: r.hits, truncated_prefixes: r.truncatedPrefixes });
    },
  );

  server.registerTool(
    'knowledge_query',
    {
      title: 'Read-only SQL over the knowledge store',
      description:
        'One SELECT (or WITH ... SELECT) statement on a read-only connection. Tables: tasks, runs, events, tool_calls, verifications, approvals, entities, edges, retrospectives, lessons, kdocs (kfts is the FTS index). Rows and time are limited; writes, ATTACH, PRAGMA and multiple statements are refused.',
      inputSchema: {
        sql: z.string().min(1).max(20_000),
        max_rows: z.number().int().min(1).max(MAX_ROWS_CAP).default(200),
        timeout_ms: z.number().int().min(10).max(MAX_QUERY_TIMEOUT_MS).default(DEFAULT_QUERY_TIMEOUT_MS),
      },
      annotations: READ,
    },
    ({ sql, max_rows, timeout_ms }) => {
      const r = knowledgeQuery(deps.dbPath, sql, { maxRows: max_rows, timeoutMs: timeout_ms });
      if (!r.ok) {
        return errorResult(r.code, r.message, r.code === 'query-refused' ? 'send one read-only SELECT; use the task and knowledge tools for changes' : undefined);
      }
      return jsonResult({ ...r.value });
    },
  );

  server.registerTool(
    'knowledge_entity',
    {
      title: 'An entity and its edges',
      description: `An entity of the knowledge graph (kinds: ${ENTITY_KINDS.join(', ')}) with its edges in both directions.`,
      inputSchema: {
        kind: z.enum(ENTITY_KINDS),
        name: z.string().min(1).max(300),
        limit: z.number().int().min(1).max(500).default(200),
      },
      annotations: READ,
    },
    ({ kind, name, limit }) => {
      const e = knowledgeEntity(deps.db, kind, name, { limit });
      if (!e) return errorResult('not-found', `no ${kind} named ${JSON.stringify(name)} in the knowledge graph`, 'try knowledge_search with the name');
      return jsonResult({ ...e });
    },
  );

  server.registerTool(
    'lessons_for',
    {
      title: 'Lessons related to a task',
      description:
        'Lessons and retrospectives of past runs related to a task through shared hosts, namespaces, projects, services, error signatures and tags; best first, with what they share.',
      inputSchema: { task_id: TASK_ID, limit: z.number().int().min(1).max(50).default(10) },
      annotations: READ,
    },
    ({ task_id, limit }) => {
      const r = lessonsFor(deps.db, task_id, { limit });
      return jsonResult({ ...r });
    },
  );
}
