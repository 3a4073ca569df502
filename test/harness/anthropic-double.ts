// TEST DOUBLE of the Anthropic Messages API (`POST /v1/messages`, non-streaming): the real API
// cannot be called from these machines without a key and a network. Shapes follow the API
// reference: request `{model, max_tokens, system?, messages, tools?}` with the key (`x-api-key`
// or `Authorization: Bearer`) and `anthropic-version` headers; response `{id, type:'message', role:'assistant', model, content,
// stop_reason, stop_sequence, usage}`; errors `{type:'error', error:{type, message}}` with
// 400/401/404/429 (+ `retry-after`)/500/529 statuses and a `request-id` header.
// It is driven by a script: each received request (retries included) consumes the next step,
// a function of the request that returns the response, so tests can assert what was sent.
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface DoubleBlock {
  type: string;
  [k: string]: unknown;
}

/** The request body as the double parsed it. */
export interface MessagesRequest {
  model: string;
  max_tokens: number;
  system?: string | Array<{ type: 'text'; text: string }>;
  messages: Array<{ role: 'user' | 'assistant'; content: string | DoubleBlock[] }>;
  tools?: Array<{ name: string; description?: string; input_schema: Record<string, unknown> }>;
  [k: string]: unknown;
}

export interface ReceivedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  /** Parsed body; undefined when it was not JSON. */
  body: MessagesRequest | undefined;
}

export interface StepResponse {
  status: number;
  headers?: Record<string, string>;
  body: unknown;
}

/** One scripted step: sees the valid request, answers it (a promise delays the answer). */
export type Step = (req: MessagesRequest, index: number) => StepResponse | Promise<StepResponse>;

export interface AnthropicDouble {
  /** Base URL to hand to the SDK, e.g. `http://127.0.0.1:PORT`. */
  url: string;
  /** Every request received, in order (retries included, invalid ones too). */
  requests: ReceivedRequest[];
  /** Errors thrown by steps (failed assertions about what the client sent). */
  failures: unknown[];
  /** Steps not yet consumed. */
  remaining(): number;
  close(): Promise<void>;
}

export interface AnthropicDoubleOptions {
  /** The key the double accepts (any non-empty key when omitted). */
  apiKey?: string;
}

export async function startAnthropicDouble(script: readonly Step[], opts: AnthropicDoubleOptions = {}): Promise<AnthropicDouble> {
  const steps = [...script];
  let used = 0;
  const requests: ReceivedRequest[] = [];
  const failures: unknown[] = [];
  const server: Server = createServer((req, res) => {
    void readBody(req).then((raw) => {
      let body: MessagesRequest | undefined;
      try {
        body = JSON.parse(raw) as MessagesRequest;
      } catch {
        body = undefined;
      }
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      // A step that throws (a failed assertion) answers a non-retryable error, kept in `failures`.
      const failed = (e: unknown): StepResponse => {
        failures.push(e);
        return { ...apiError(400, 'invalid_request_error', `double: step threw: ${String(e)}`), headers: { 'x-should-retry': 'false' } };
      };
      return new Promise<StepResponse>((resolve) => resolve(handle(req, body))).then(
        (r) => send(res, r),
        (e: unknown) => send(res, failed(e)),
      );
    });
  });

  const handle = (req: IncomingMessage, body: MessagesRequest | undefined): StepResponse | Promise<StepResponse> => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/v1/messages') return apiError(404, 'not_found_error', `Not found: ${path}`);
    if (req.method !== 'POST') return apiError(405, 'invalid_request_error', `Method ${req.method} not allowed`);
    // The API takes the key as `x-api-key` or as `Authorization: Bearer` (what SDK 1.x sends).
    const auth = req.headers.authorization;
    const bearer = typeof auth === 'string' && auth.startsWith('Bearer ') ? auth.slice(7) : undefined;
    const key = typeof req.headers['x-api-key'] === 'string' ? req.headers['x-api-key'] : bearer;
    if (key === undefined || key === '' || (opts.apiKey !== undefined && key !== opts.apiKey)) {
      return apiError(401, 'authentication_error', 'invalid x-api-key');
    }
    if (typeof req.headers['anthropic-version'] !== 'string') {
      return apiError(400, 'invalid_request_error', 'anthropic-version: header is required');
    }
    if (body === undefined) return apiError(400, 'invalid_request_error', 'request body is not valid JSON');
    const invalid = validate(body);
    if (invalid) return apiError(400, 'invalid_request_error', invalid);
    const step = steps[used];
    if (!step) {
      // never retried by the SDK: a script that ran out is a test bug, not a transient failure
      return { ...apiError(400, 'invalid_request_error', `double: script exhausted after ${used} steps`), headers: { 'x-should-retry': 'false' } };
    }
    used++;
    return step(body, used - 1);
  };

  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    requests,
    failures,
    remaining: () => steps.length - used,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** The checks the real API makes that a client could get wrong. */
function validate(b: MessagesRequest): string | null {
  if (typeof b.model !== 'string' || b.model === '') return 'model: Field required';
  if (!Number.isInteger(b.max_tokens) || b.max_tokens < 1) return 'max_tokens: must be a positive integer';
  if (!Array.isArray(b.messages) || b.messages.length === 0) return 'messages: at least one message is required';
  if (b.messages[0]?.role !== 'user') return 'messages: first message must use the "user" role';
  for (const t of b.tools ?? []) {
    if (!/^[a-zA-Z0-9_-]{1,128}$/.test(t.name)) return `tools: invalid tool name ${JSON.stringify(t.name)}`;
    if (t.input_schema?.type !== 'object') return `tools.${t.name}.input_schema.type: Input should be 'object'`;
  }
  let prevToolUses = new Set<string>();
  for (let i = 0; i < b.messages.length; i++) {
    const m = b.messages[i]!;
    if (m.role !== 'user' && m.role !== 'assistant') return `messages.${i}.role: must be "user" or "assistant"`;
    if (i > 0 && b.messages[i - 1]!.role === m.role) return `messages: roles must alternate (messages.${i})`;
    const blocks = typeof m.content === 'string' ? [{ type: 'text', text: m.content }] : m.content;
    if (!Array.isArray(blocks) || blocks.length === 0) return `messages.${i}.content: must not be empty`;
    const uses = new Set<string>();
    const results = new Set<string>();
    for (const blk of blocks) {
      if (blk.type === 'tool_use') {
        if (m.role !== 'assistant') return `messages.${i}: tool_use blocks are only allowed in assistant messages`;
        if (typeof blk.id !== 'string' || typeof blk.name !== 'string') return `messages.${i}: tool_use needs id and name`;
        uses.add(String(blk.id));
      } else if (blk.type === 'tool_result') {
        if (m.role !== 'user') return `messages.${i}: tool_result blocks are only allowed in user messages`;
        const id = String(blk.tool_use_id);
        if (!prevToolUses.has(id)) return `messages.${i}: tool_result for unknown tool_use_id ${id}`;
        results.add(id);
      } else if (blk.type === 'text') {
        if (typeof blk.text !== 'string') return `messages.${i}: text block without text`;
      }
    }
    // every tool_use must be answered in the very next user message
    for (const id of prevToolUses) if (!results.has(id)) return `messages.${i}: tool_use ${id} has no tool_result in the next message`;
    prevToolUses = uses;
  }
  if (prevToolUses.size > 0) return 'messages: the last assistant message has unanswered tool_use blocks';
  return null;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', () => resolve(''));
  });
}

function send(res: ServerResponse, r: StepResponse): void {
  if (res.writableEnded || res.destroyed) return; // the client gave up (abort, timeout)
  const body = JSON.stringify(r.body);
  res.writeHead(r.status, {
    'content-type': 'application/json',
    'request-id': `req_double_${randomUUID().replace(/-/g, '').slice(0, 20)}`,
    ...(r.headers ?? {}),
  });
  res.end(body);
}

// ---- response builders -------------------------------------------------------------------

export function apiError(status: number, type: string, message: string): StepResponse {
  return { status, body: { type: 'error', error: { type, message } } };
}

export function rateLimited(retryAfterSeconds: number): StepResponse {
  return { ...apiError(429, 'rate_limit_error', 'Number of request tokens has exceeded your per-minute rate limit'), headers: { 'retry-after': String(retryAfterSeconds) } };
}

export function overloaded(): StepResponse {
  return apiError(529, 'overloaded_error', 'Overloaded');
}

export function serverError(): StepResponse {
  return apiError(500, 'api_error', 'Internal server error');
}

export function text(t: string): DoubleBlock {
  return { type: 'text', text: t };
}

export function toolUse(name: string, input: Record<string, unknown>): DoubleBlock {
  return { type: 'tool_use', id: `toolu_double_${randomUUID().replace(/-/g, '').slice(0, 20)}`, name, input };
}

export interface MessageOpts {
  stop_reason?: 'end_turn' | 'tool_use' | 'max_tokens' | 'stop_sequence' | 'refusal';
  usage?: { input_tokens: number; output_tokens: number };
}

/** A 200 message; stop_reason is `tool_use` when any block is one, else `end_turn`. */
export function message(req: MessagesRequest, content: DoubleBlock[], o: MessageOpts = {}): StepResponse {
  const stop = o.stop_reason ?? (content.some((b) => b.type === 'tool_use') ? 'tool_use' : 'end_turn');
  return {
    status: 200,
    body: {
      id: `msg_double_${randomUUID().replace(/-/g, '').slice(0, 24)}`,
      type: 'message',
      role: 'assistant',
      model: req.model,
      content,
      stop_reason: stop,
      stop_sequence: null,
      usage: o.usage ?? { input_tokens: 100, output_tokens: 20 },
    },
  };
}

/** The blocks of the last user message (where tool_results come back). */
export function lastUserBlocks(req: MessagesRequest): DoubleBlock[] {
  const m = req.messages[req.messages.length - 1];
  if (!m || m.role !== 'user') return [];
  return typeof m.content === 'string' ? [{ type: 'text', text: m.content }] : m.content;
}
