// The narrow seam between the Claude brain and a language model. The brain knows only this;
// agents/runtime/anthropic/client.ts maps it onto the Messages API, tests may script it.
// Shapes follow the Messages API blocks so the mapping stays one-to-one, but no SDK type leaks.

export interface TextBlock {
  type: 'text';
  text: string;
}

export interface ToolUseBlock {
  type: 'tool_use';
  id: string;
  name: string;
  input: Record<string, unknown>;
}

export interface ToolResultBlock {
  type: 'tool_result';
  tool_use_id: string;
  /** Already wrapped as untrusted data by the brain. */
  content: string;
  is_error: boolean;
}

export type UserBlock = TextBlock | ToolResultBlock;
export type AssistantBlock = TextBlock | ToolUseBlock;

export type Msg = { role: 'user'; content: UserBlock[] } | { role: 'assistant'; content: AssistantBlock[] };

export interface ToolSpec {
  name: string;
  description: string;
  /** JSON Schema of the tool's input (an object schema), passed through from MCP. */
  input_schema: Record<string, unknown>;
}

export type StopReason = 'end_turn' | 'tool_use' | 'max_tokens' | 'stop_sequence' | 'pause_turn' | 'refusal' | 'other';

export interface Usage {
  inputTokens: number;
  outputTokens: number;
}

export interface ModelTurn {
  /** Provider message id, for the record. */
  id: string;
  model: string;
  content: AssistantBlock[];
  stopReason: StopReason;
  usage: Usage;
}

export interface ModelRequest {
  system: string;
  messages: readonly Msg[];
  tools: readonly ToolSpec[];
  /** Output tokens allowed for this one turn. */
  maxTokens: number;
  signal?: AbortSignal;
}

/**
 * One assistant turn per call. Failures (after the implementation's own retries) reject with an
 * `OpsError` whose code starts with `model.`; an abort rejects with code `model.aborted`.
 */
export interface Model {
  next(req: ModelRequest): Promise<ModelTurn>;
}

export const MODEL_ERROR_CODES = [
  'model.auth',
  'model.bad-request',
  'model.rate-limited',
  'model.overloaded',
  'model.server',
  'model.connection',
  'model.timeout',
  'model.aborted',
  'model.invalid-response',
] as const;
export type ModelErrorCode = (typeof MODEL_ERROR_CODES)[number];
