// Tool results for agents: successes carry text plus structured data; denials and failures are
// `isError` results with a stable code and what the agent may do instead.
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';

export function okResult(text: string, data?: Record<string, unknown>): CallToolResult {
  return data === undefined
    ? { content: [{ type: 'text', text }] }
    : { content: [{ type: 'text', text }], structuredContent: data };
}

/** Data as pretty JSON text plus the same object as structured content. */
export function jsonResult(data: Record<string, unknown>): CallToolResult {
  return okResult(JSON.stringify(data, null, 2), data);
}

export function errorResult(code: string, message: string, instead?: string, data?: Record<string, unknown>): CallToolResult {
  const text = `[${code}] ${message}${instead ? `\nWhat you can do instead: ${instead}` : ''}`;
  return {
    isError: true,
    content: [{ type: 'text', text }],
    structuredContent: { error: { code, message, ...(instead ? { instead } : {}) }, ...(data ?? {}) },
  };
}
