// Coordination and approval views: message_send, message_list, resource_locks, approval_list.
// Read-only except for messages an agent sends under its own name. Nothing here approves.
import { z } from 'zod';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { listApprovals } from './core/approvals.js';
import { APPROVAL_STATES } from './core/policy.js';
import type { Db } from './core/store.js';
import { errorResult, jsonResult } from './tool-result.js';

export const MAX_MESSAGE_CHARS = 8000;
const AGENT = z.string().regex(/^[a-z][a-z0-9-]{0,63}$/);
const TASK_ID = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/);

export interface CoordDeps {
  db: Db;
  agent: string;
  now: () => number;
  /** Names a message may be sent to (loaded specialists, the observer, `person`). */
  knownAgents: () => string[];
}

const READ = { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false } as const;

export function registerCoordTools(server: McpServer, deps: CoordDeps): void {
  server.registerTool(
    'message_send',
    {
      title: 'Send a message to another agent',
      description:
        'Send a short message to another crew member (or `all`), optionally about a task. The sender is always you; messages cannot run anything.',
      inputSchema: {
        to: z.union([AGENT, z.literal('all')]).describe('recipient agent name, or `all`'),
        body: z.string().min(1).max(MAX_MESSAGE_CHARS),
        task_id: TASK_ID.optional(),
      },
      annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
    },
    ({ to, body, task_id }) => {
      if (to !== 'all' && !deps.knownAgents().includes(to)) {
        return errorResult('unknown-agent', `no agent named "${to}"`, `send to one of: ${[...deps.knownAgents(), 'all'].join(', ')}`);
      }
      const r = deps.db.run('INSERT INTO messages (ts_ms, sender, recipient, task_id, body) VALUES (?, ?, ?, ?, ?)', [
        deps.now(),
        deps.agent,
        to,
        task_id ?? null,
        body,
      ]);
      return jsonResult({ id: Number(r.lastInsertRowid), from: deps.agent, to });
    },
  );

  server.registerTool(
    'message_list',
    {
      title: 'List messages',
      description: 'Messages sent to you or to `all` (and, with sent=true, by you), oldest first after `after_id`.',
      inputSchema: {
        after_id: z.number().int().min(0).default(0),
        task_id: TASK_ID.optional(),
        sent: z.boolean().default(false).describe('include messages you sent'),
        limit: z.number().int().min(1).max(200).default(50),
      },
      annotations: READ,
    },
    ({ after_id, task_id, sent, limit }) => {
      const rows = deps.db.all<{ id: number; ts_ms: number; sender: string; recipient: string; task_id: string | null; body: string }>(
        `SELECT id, ts_ms, sender, recipient, task_id, body FROM messages
         WHERE id > ? AND (recipient IN (?, 'all') OR (? = 1 AND sender = ?)) AND (? IS NULL OR task_id = ?)
         ORDER BY id LIMIT ?`,
        [after_id, deps.agent, sent ? 1 : 0, deps.agent, task_id ?? null, task_id ?? null, limit],
      );
      return jsonResult({
        messages: rows.map((r) => ({ id: r.id, at: new Date(r.ts_ms).toISOString(), from: r.sender, to: r.recipient, task_id: r.task_id, body: r.body })),
      });
    },
  );

  server.registerTool(
    'resource_locks',
    {
      title: 'Resource locks',
      description: 'Resources (e.g. k8s:minikube/ns) held by running tasks, with the holder and lease expiry. A ready task never shares one.',
      inputSchema: { resource: z.string().max(200).optional().describe('only this resource') },
      annotations: READ,
    },
    ({ resource }) => {
      const rows = deps.db.all<{ resource: string; task_id: string; agent: string | null; holder: string | null; run_id: string | null; expires_ms: number | null }>(
        `SELECT r.value AS resource, t.id AS task_id, t.agent AS agent, l.holder AS holder, l.run_id AS run_id, l.expires_ms AS expires_ms
         FROM tasks t, json_each(t.resources) r LEFT JOIN leases l ON l.task_id = t.id
         WHERE t.folder = 'active' AND (? IS NULL OR r.value = ?) ORDER BY r.value`,
        [resource ?? null, resource ?? null],
      );
      return jsonResult({
        locks: rows.map((r) => ({
          resource: r.resource,
          task_id: r.task_id,
          agent: r.agent,
          holder: r.holder,
          run_id: r.run_id,
          lease_expires: r.expires_ms === null ? null : new Date(r.expires_ms).toISOString(),
        })),
      });
    },
  );

  server.registerTool(
    'approval_list',
    {
      title: 'List approvals',
      description:
        'Approval requests and grants (pending by default). Read-only: only a person approves, with `opscrew approve <id>`; no tool can approve.',
      inputSchema: {
        state: z.enum(APPROVAL_STATES).optional().describe('default: pending'),
        task_id: TASK_ID.optional(),
        limit: z.number().int().min(1).max(500).default(100),
      },
      annotations: READ,
    },
    ({ state, task_id, limit }) => {
      try {
        const rows = listApprovals(deps.db, { state: state ?? 'pending', ...(task_id !== undefined ? { taskId: task_id } : {}), limit });
        return jsonResult({
          approvals: rows.map((a) => ({
            id: a.id,
            canonical: a.canonical,
            state: a.state,
            source: a.source,
            task_id: a.taskId,
            requested_by: a.requestedBy,
            expires: new Date(a.expiresMs).toISOString(),
          })),
        });
      } catch (e) {
        return errorResult('store-error', `could not read approvals: ${e instanceof Error ? e.message : String(e)}`);
      }
    },
  );
}
