// The one module that imports @anthropic-ai/sdk: the Model interface over the Messages API.
// Retries on 408/409/429/5xx are the SDK's own (exponential backoff with jitter; it honours
// `retry-after-ms` and `retry-after`, seconds or an HTTP date), configured by `maxRetries`.
import {
  Anthropic,
  APIConnectionError,
  APIConnectionTimeoutError,
  APIError,
  APIUserAbortError,
} from '@anthropic-ai/sdk';
import type { MessageCreateParamsNonStreaming, MessageParam, Message, Tool } from '@anthropic-ai/sdk/resources/messages/messages.js';
import { fail, ok, OpsError, type Result } from '../../../mcp-server/core/errors.js';
import type { AssistantBlock, Model, ModelErrorCode, ModelRequest, ModelTurn, StopReason } from '../model.js';

export interface AnthropicModelOptions {
  apiKey: string | undefined;
  /** Defaults to the SDK's own choice: $ANTHROPIC_BASE_URL, else https://api.anthropic.com. */
  baseURL?: string;
  model: string;
  /** Retries after the first attempt on 408/409/429/5xx and connection errors. */
  maxRetries: number;
  /** Per HTTP attempt. */
  timeoutMs: number;
}

export function createAnthropicModel(opts: AnthropicModelOptions): Result<Model> {
  const apiKey = opts.apiKey?.trim();
  if (!apiKey) {
    return fail('claude.no-api-key', 'ANTHROPIC_API_KEY is not set: the Claude brain needs an API key (the runbook brain does not)');
  }
  if (!opts.model.trim()) return fail('claude.no-model', 'no model name given for the Claude brain');
  if (!Number.isInteger(opts.maxRetries) || opts.maxRetries < 0) {
    return fail('claude.bad-option', `maxRetries must be a whole number ≥ 0, got ${opts.maxRetries}`);
  }
  if (!(opts.timeoutMs > 0)) return fail('claude.bad-option', `timeoutMs must be > 0, got ${opts.timeoutMs}`);
  let sdk: Anthropic;
  try {
    sdk = new Anthropic({
      apiKey,
      ...(opts.baseURL ? { baseURL: opts.baseURL } : {}),
      maxRetries: opts.maxRetries,
      timeout: opts.timeoutMs,
    });
  } catch (cause) {
    return fail('claude.client', `cannot create the Anthropic client: ${String(cause)}`, cause);
  }
  const model = opts.model;
  const maxRetries = opts.maxRetries;
  return ok({
    async next(req: ModelRequest): Promise<ModelTurn> {
      let res: Message;
      try {
        res = await sdk.messages.create(toParams(model, req), req.signal ? { signal: req.signal } : {});
      } catch (e) {
        throw toOpsError(e, maxRetries);
      }
      return fromMessage(res);
    },
  });
}

function toParams(model: string, req: ModelRequest): MessageCreateParamsNonStreaming {
  const messages: MessageParam[] = req.messages.map((m) =>
    m.role === 'assistant'
      ? {
          role: 'assistant',
          content: m.content.map((b) => (b.type === 'text' ? { type: 'text', text: b.text } : { type: 'tool_use', id: b.id, name: b.name, input: b.input })),
        }
      : {
          role: 'user',
          content: m.content.map((b) =>
            b.type === 'text' ? { type: 'text', text: b.text } : { type: 'tool_result', tool_use_id: b.tool_use_id, content: b.content, is_error: b.is_error },
          ),
        },
  );
  const tools: Tool[] = req.tools.map((t) => ({
    name: t.name,
    description: t.description,
    // MCP input schemas are JSON Schema objects already; the API insists on type: object.
    input_schema: { ...t.input_schema, type: 'object' },
  }));
  return { model, max_tokens: req.maxTokens, system: req.system, messages, ...(tools.length > 0 ? { tools } : {}) };
}

const STOP_REASONS: readonly StopReason[] = ['end_turn', 'tool_use', 'max_tokens', 'stop_sequence', 'pause_turn', 'refusal'];

function fromMessage(res: Message): ModelTurn {
  const content: AssistantBlock[] = [];
  for (const b of res.content) {
    if (b.type === 'text') content.push({ type: 'text', text: b.text });
    else if (b.type === 'tool_use') {
      const input = typeof b.input === 'object' && b.input !== null && !Array.isArray(b.input) ? (b.input as Record<string, unknown>) : {};
      content.push({ type: 'tool_use', id: b.id, name: b.name, input });
    }
    // other block kinds (thinking, server tools) carry nothing the loop acts on
  }
  const sr = res.stop_reason;
  const stopReason: StopReason = sr !== null && (STOP_REASONS as readonly string[]).includes(sr) ? (sr as StopReason) : 'other';
  return {
    id: res.id,
    model: res.model,
    content,
    stopReason,
    usage: { inputTokens: res.usage?.input_tokens ?? 0, outputTokens: res.usage?.output_tokens ?? 0 },
  };
}

function toOpsError(e: unknown, maxRetries: number): OpsError {
  const make = (code: ModelErrorCode, message: string): OpsError => new OpsError(code, message, { cause: e });
  // Order matters: the abort and connection errors are APIError subclasses.
  if (e instanceof APIUserAbortError) return make('model.aborted', 'the model request was aborted');
  if (e instanceof APIConnectionTimeoutError) return make('model.timeout', `the model request timed out (after ${maxRetries} retries)`);
  if (e instanceof APIConnectionError) return make('model.connection', `cannot reach the Messages API (after ${maxRetries} retries): ${e.message}`);
  if (e instanceof APIError) {
    const status = e.status ?? 0;
    const detail = `${status}${e.type ? ` ${e.type}` : ''}: ${e.apiMessage ?? e.message}${e.requestID ? ` (request ${e.requestID})` : ''}`;
    if (status === 401 || status === 403) return make('model.auth', `the Messages API refused the credentials — ${detail}`);
    if (status === 429) return make('model.rate-limited', `rate limited by the Messages API after ${maxRetries} retries — ${detail}`);
    if (status === 529) return make('model.overloaded', `the Messages API is overloaded after ${maxRetries} retries — ${detail}`);
    if (status >= 500) return make('model.server', `the Messages API failed after ${maxRetries} retries — ${detail}`);
    return make('model.bad-request', `the Messages API rejected the request — ${detail}`);
  }
  return make('model.invalid-response', `unexpected model client failure: ${e instanceof Error ? e.message : String(e)}`);
}
