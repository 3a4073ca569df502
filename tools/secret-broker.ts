// The executor's secret broker: the one place secret values live.
// Handles go in and out of every tool; values are substituted only at exec time (reveal) and
// every output is passed through scrub before anyone (model, log, audit, DB) sees it.
import { randomBytes } from 'node:crypto';
import type { SecretBroker } from './types.js';

/** An expected tool-side failure with a stable code (tools/ cannot import the core's OpsError). */
export class ToolError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ToolError';
    this.code = code;
  }
}

/**
 * Kinds of `{{generate:KIND}}`. Like `openssl rand -hex N`, hexN is N random bytes in hex
 * (hex32 → 64 hex chars); base64-32 is 32 random bytes in standard base64 (44 chars);
 * alnum24 is 24 characters from [A-Za-z0-9].
 */
export const GENERATE_KINDS = ['hex32', 'hex16', 'base64-32', 'alnum24'] as const;
export type GenerateKind = (typeof GENERATE_KINDS)[number];

/**
 * Values shorter than this are registered and revealed but never scrubbed: replacing every
 * `ok` or `1` in all output would destroy it, and such values are not secrets worth the name.
 */
export const MIN_SCRUB_LENGTH = 4;

/** Matches `{{secret:REF}}` and `{{generate:KIND}}`. REF may not contain `}` or whitespace. */
export const HANDLE_PATTERN = /\{\{(secret|generate):([^\s{}]+)\}\}/g;

export function secretHandle(ref: string): string {
  return `{{secret:${ref}}}`;
}

/** HANDLE_PATTERN without the global flag: `test` keeps no state between calls. */
const ANY_HANDLE = new RegExp(HANDLE_PATTERN.source);

/** True when text holds at least one secret or generate handle. */
export function hasHandles(text: string): boolean {
  return text.includes('{{') && ANY_HANDLE.test(text);
}

export interface SecretBrokerOptions {
  /** Source of random bytes (tests may pass a deterministic one). */
  random?: (bytes: number) => Buffer;
}

export interface SecretBrokerImpl extends SecretBroker {
  /** Refs currently registered (for diagnostics; never the values). */
  refs(): string[];
}

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function toUrlSafe(b64: string): string {
  return b64.replace(/\+/g, '-').replace(/\//g, '_');
}

/**
 * Base64 of `value` as it appears inside a longer base64 stream (e.g. `user:SECRET` in a
 * Basic auth header): for each of the three byte alignments, the characters that depend only
 * on the value's bytes.
 */
function embeddedBase64Cores(value: Buffer): string[] {
  const cores: string[] = [];
  for (let shift = 1; shift <= 2; shift++) {
    const prefixed = Buffer.concat([Buffer.alloc(shift), value]).toString('base64').replace(/=+$/, '');
    // The first ceil(shift*8/6) chars mix prefix bits; the last chars may mix the unknown suffix.
    const start = Math.ceil((shift * 8) / 6);
    const totalBits = (shift + value.length) * 8;
    const fullChars = Math.floor(totalBits / 6);
    const core = prefixed.slice(start, fullChars);
    if (core.length >= 8) cores.push(core);
  }
  // Aligned at a 3-byte boundary but followed by more data: the last partial group is unreliable.
  const aligned = value.toString('base64').replace(/=+$/, '');
  const alignedFull = aligned.slice(0, Math.floor((value.length * 8) / 6));
  if (alignedFull.length >= 8) cores.push(alignedFull);
  return cores;
}

/** Every form of a value that must be scrubbed, longest first is decided by the caller. */
export function scrubForms(value: string): string[] {
  const forms = new Set<string>([value]);
  const buf = Buffer.from(value, 'utf8');
  const b64 = buf.toString('base64');
  forms.add(b64);
  forms.add(b64.replace(/=+$/, ''));
  forms.add(toUrlSafe(b64));
  forms.add(toUrlSafe(b64).replace(/=+$/, ''));
  if (value.length >= 12) for (const core of embeddedBase64Cores(buf)) {
    forms.add(core);
    forms.add(toUrlSafe(core));
  }
  const uri = encodeURIComponent(value);
  forms.add(uri);
  forms.add(uri.replace(/%20/g, '+'));
  // Lower-case percent-escapes are legal too and some encoders emit them.
  forms.add(uri.replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase()));
  const jsonInner = JSON.stringify(value).slice(1, -1);
  forms.add(jsonInner);
  if (!/^[0-9a-fA-F]+$/.test(value)) {
    const hex = buf.toString('hex');
    forms.add(hex);
    forms.add(hex.toUpperCase());
  }
  return [...forms].filter((f) => f.length >= MIN_SCRUB_LENGTH);
}

function generate(kind: string, random: (n: number) => Buffer): string {
  switch (kind) {
    case 'hex32':
      return random(32).toString('hex');
    case 'hex16':
      return random(16).toString('hex');
    case 'base64-32':
      return random(32).toString('base64');
    case 'alnum24': {
      // Rejection sampling keeps the distribution uniform over the 62 characters.
      let out = '';
      while (out.length < 24) {
        for (const b of random(32)) {
          if (b < 248 && out.length < 24) out += ALNUM[b % 62];
        }
      }
      return out;
    }
    default:
      throw new ToolError(
        'unknown-generate-kind',
        `unknown {{generate:${kind}}}: the kinds are ${GENERATE_KINDS.join(', ')}`,
      );
  }
}

/**
 * A broker holding values in memory for one executor. `reveal` throws `ToolError` with code
 * `unknown-secret-handle` or `unknown-generate-kind` (a handle that silently became '' would
 * write an empty password); callers turn that into a refused outcome.
 */
export function createSecretBroker(options: SecretBrokerOptions = {}): SecretBrokerImpl {
  const random = options.random ?? ((n: number) => randomBytes(n));
  const byRef = new Map<string, string>();
  // value → handle; every value ever registered stays here (an old version is still a secret).
  const handleByValue = new Map<string, string>();
  let generated = 0;
  let matcher: { re: RegExp; handleByForm: Map<string, string> } | null = null;

  function register(ref: string, value: string): string {
    if (!/^[^\s{}]+$/.test(ref)) {
      throw new ToolError('bad-secret-ref', `secret ref ${JSON.stringify(ref)} may not contain spaces or braces`);
    }
    const handle = secretHandle(ref);
    byRef.set(ref, value);
    handleByValue.set(value, handle);
    matcher = null;
    return handle;
  }

  function buildMatcher(): { re: RegExp; handleByForm: Map<string, string> } {
    const handleByForm = new Map<string, string>();
    for (const [value, handle] of handleByValue) {
      if (value.length < MIN_SCRUB_LENGTH) continue;
      for (const form of scrubForms(value)) {
        // The raw value's own handle wins over a coincidental encoded form of another value.
        if (!handleByForm.has(form) || form === value) handleByForm.set(form, handle);
      }
    }
    const forms = [...handleByForm.keys()].sort((a, b) => b.length - a.length);
    // An alternation ordered longest-first takes the longest form at each position.
    const re = forms.length > 0 ? new RegExp(forms.map(escapeRegExp).join('|'), 'g') : /$^/g;
    return { re, handleByForm };
  }

  return {
    register,
    reveal(text: string): string {
      return text.replace(new RegExp(HANDLE_PATTERN.source, 'g'), (_m, type: string, ref: string) => {
        if (type === 'generate') {
          const value = generate(ref, random);
          generated += 1;
          register(`generated:${ref}:${generated}`, value);
          return value;
        }
        const value = byRef.get(ref);
        if (value === undefined) {
          throw new ToolError(
            'unknown-secret-handle',
            `{{secret:${ref}}} is not a known secret: read it first (e.g. vault kv get) in this run`,
          );
        }
        return value;
      });
    },
    scrub(text: string): string {
      if (handleByValue.size === 0 || text.length === 0) return text;
      matcher ??= buildMatcher();
      const { re, handleByForm } = matcher;
      re.lastIndex = 0;
      return text.replace(re, (m) => handleByForm.get(m) ?? m);
    },
    refs(): string[] {
      return [...byRef.keys()];
    },
  };
}
