// http: the curl subset runbooks use, executed in-process by the http executor. The parser
// here is shared with that executor (parseCurlArgs) so both read a call the same way.

import { fail, type Result } from '../result.js';
import type { Word } from '../tokenize.js';
import type { OpClass, ToolCall } from '../types.js';
import { makeCall, named, ok, refused, unparseable, type ParseContext, type ParseResult } from './common.js';

export interface CurlRequest {
  method: string;
  url: string;
  headers: Array<[string, string]>;
  /** Request body from -d/--data/--data-raw (several are joined with `&`, as curl does). */
  data?: string;
  /** -f: exit non-zero on HTTP >= 400. */
  fail: boolean;
  silent: boolean;
  showError: boolean;
  /** -o /dev/null discards the body. */
  discardBody: boolean;
  /** -w FORMAT, restricted to the variables in WRITE_OUT_VARIABLES. */
  writeOut?: string;
  maxTimeSeconds?: number;
  connectTimeoutSeconds?: number;
  /** -L: follow redirects (each re-checked by the executor). */
  followRedirects: boolean;
  /** -I/--head. */
  headOnly: boolean;
}

export const HTTP_CLASSES: Readonly<Record<string, OpClass>> = {
  GET: 'read',
  HEAD: 'read',
  OPTIONS: 'read',
  POST: 'mutate',
  PUT: 'mutate',
  PATCH: 'mutate',
  DELETE: 'mutate',
};

export const WRITE_OUT_VARIABLES = ['http_code', 'response_code', 'time_total', 'size_download', 'content_type', 'url_effective'];

type Flag = 'fail' | 'silent' | 'show-error' | 'location' | 'head' | 'compressed' | 'output' | 'write-out' | 'request' | 'header' | 'data' | 'data-raw' | 'max-time' | 'connect-timeout';

const LONG: Readonly<Record<string, Flag>> = {
  fail: 'fail', 'fail-with-body': 'fail', silent: 'silent', 'show-error': 'show-error', location: 'location',
  head: 'head', compressed: 'compressed', output: 'output', 'write-out': 'write-out', request: 'request',
  header: 'header', data: 'data', 'data-raw': 'data-raw', 'data-ascii': 'data', 'max-time': 'max-time',
  'connect-timeout': 'connect-timeout',
};
const SHORT: Readonly<Record<string, Flag>> = {
  f: 'fail', s: 'silent', S: 'show-error', L: 'location', I: 'head', o: 'output', w: 'write-out',
  X: 'request', H: 'header', d: 'data', m: 'max-time',
};
const TAKES_VALUE = new Set<Flag>(['output', 'write-out', 'request', 'header', 'data', 'data-raw', 'max-time', 'connect-timeout']);

const REASONS: Readonly<Record<string, string>> = {
  k: 'turns off TLS verification', insecure: 'turns off TLS verification',
  x: 'redirects through a proxy', proxy: 'redirects through a proxy', 'resolve': 'redirects the target',
  'connect-to': 'redirects the target', u: 'passes credentials; use a header with a secret handle',
  user: 'passes credentials; use a header with a secret handle', K: 'reads a config file', config: 'reads a config file',
  T: 'uploads a local file', 'upload-file': 'uploads a local file', F: 'uploads local files', form: 'uploads local files',
  O: 'writes a local file', 'remote-name': 'writes a local file', unix: 'talks to a local socket',
  'unix-socket': 'talks to a local socket',
};

const METHOD = /^[A-Z]+$/;
const HEADER = /^([A-Za-z0-9!#$%&'*+.^_`|~-]+):[ ]?(.*)$/;

/** Reads curl-subset args (everything after `curl`). Messages name the offending word. */
export function parseCurlWords(words: readonly Word[]): Result<CurlRequest, 'unparseable' | 'refused'> {
  const req: CurlRequest = { method: '', url: '', headers: [], fail: false, silent: false, showError: false, discardBody: false, followRedirects: false, headOnly: false };
  const data: string[] = [];
  let url: Word | undefined;
  let explicitMethod: string | undefined;

  const apply = (flag: Flag, value: string | undefined, w: Word): Result<true, 'unparseable' | 'refused'> => {
    switch (flag) {
      case 'fail': req.fail = true; break;
      case 'silent': req.silent = true; break;
      case 'show-error': req.showError = true; break;
      case 'location': req.followRedirects = true; break;
      case 'head': req.headOnly = true; break;
      case 'compressed': break;
      case 'output':
        if (value !== '/dev/null') return fail('refused', `curl: ${named(w)}: only \`-o /dev/null\` is allowed (output is captured for you)`);
        req.discardBody = true;
        break;
      case 'write-out': {
        const v = value ?? '';
        for (const m of v.matchAll(/%(\{([^}]*)\}|.)/g)) {
          if (m[1] === '%') continue;
          if (m[2] === undefined || !WRITE_OUT_VARIABLES.includes(m[2]))
            return fail('refused', `curl: ${named(w)}: write-out \`${m[0]}\` is not supported (allowed: ${WRITE_OUT_VARIABLES.map((x) => `%{${x}}`).join(' ')})`);
        }
        req.writeOut = v;
        break;
      }
      case 'request': {
        const m = (value ?? '').toUpperCase();
        if (!METHOD.test(m) || !(m in HTTP_CLASSES))
          return fail('refused', `curl: ${named(w)}: method \`${value ?? ''}\` is not supported (allowed: ${Object.keys(HTTP_CLASSES).join(' ')})`);
        explicitMethod = m;
        break;
      }
      case 'header': {
        const m = HEADER.exec(value ?? '');
        if (!m) return fail('refused', `curl: ${named(w)}: a header must read \`Name: value\``);
        const name = m[1]!;
        if (/^(host|proxy-.*|transfer-encoding|content-length|connection)$/i.test(name))
          return fail('refused', `curl: ${named(w)}: header \`${name}\` is set by the client, not the call`);
        req.headers.push([name, m[2]!]);
        break;
      }
      case 'data':
        if ((value ?? '').startsWith('@')) return fail('refused', `curl: ${named(w)}: \`@file\` reads a local file; use --data-raw for a literal @`);
        data.push(value ?? '');
        break;
      case 'data-raw':
        data.push(value ?? '');
        break;
      case 'max-time':
      case 'connect-timeout': {
        const n = Number(value);
        if (!/^\d+(\.\d+)?$/.test(value ?? '') || !(n > 0) || n > 3600)
          return fail('refused', `curl: ${named(w)}: \`${value ?? ''}\` is not a number of seconds between 0 and 3600`);
        if (flag === 'max-time') req.maxTimeSeconds = n;
        else req.connectTimeoutSeconds = n;
        break;
      }
    }
    return { ok: true, value: true };
  };

  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    const text = w.text;
    if (text.startsWith('--') && text.length > 2) {
      const eq = text.indexOf('=');
      const name = eq === -1 ? text.slice(2) : text.slice(2, eq);
      const flag = LONG[name];
      if (flag === undefined)
        return fail('refused', `curl: ${named(w)} is not in the vetted subset${REASONS[name] ? ` (${REASONS[name]})` : ''}; allowed: -f -s -S -L -I -o /dev/null -w FORMAT -X METHOD -H 'K: V' -d DATA --data-raw DATA --max-time N --connect-timeout N`);
      let value: string | undefined;
      if (TAKES_VALUE.has(flag)) {
        if (eq !== -1) value = text.slice(eq + 1);
        else {
          const next = words[i + 1];
          if (next === undefined) return fail('refused', `curl: ${named(w)} needs a value`);
          value = next.text;
          i++;
        }
      } else if (eq !== -1) return fail('refused', `curl: ${named(w)} takes no value`);
      const r = apply(flag, value, w);
      if (!r.ok) return r;
      continue;
    }
    if (text.startsWith('-') && text.length > 1) {
      // Bundled short flags (`-fsSL`, `-so /dev/null`): a value flag takes the rest or the next word.
      for (let j = 1; j < text.length; j++) {
        const letter = text[j]!;
        const flag = SHORT[letter];
        if (flag === undefined)
          return fail('refused', `curl: \`-${letter}\` in ${named(w)} is not in the vetted subset${REASONS[letter] ? ` (${REASONS[letter]})` : ''}; allowed: -f -s -S -L -I -o /dev/null -w -X -H -d -m`);
        if (TAKES_VALUE.has(flag)) {
          let value = text.slice(j + 1);
          if (value === '') {
            const next = words[i + 1];
            if (next === undefined) return fail('refused', `curl: \`-${letter}\` in ${named(w)} needs a value`);
            value = next.text;
            i++;
          }
          const r = apply(flag, value, w);
          if (!r.ok) return r;
          break;
        }
        const r = apply(flag, undefined, w);
        if (!r.ok) return r;
      }
      continue;
    }
    if (url !== undefined) return fail('refused', `curl: a second URL ${named(w)}; one request per line`);
    url = w;
  }
  if (url === undefined) return fail('unparseable', 'curl: no URL given');
  let parsed: URL;
  try {
    parsed = new URL(url.text);
  } catch {
    return fail('unparseable', `curl: ${named(url)} is not an absolute URL`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
    return fail('refused', `curl: ${named(url)}: only http and https URLs are allowed`);
  if (parsed.username !== '' || parsed.password !== '')
    return fail('refused', `curl: ${named(url)}: credentials in the URL are refused; use a header with a secret handle`);
  req.url = parsed.href;
  if (data.length > 0) req.data = data.join('&');
  req.method = explicitMethod ?? (req.headOnly ? 'HEAD' : req.data !== undefined ? 'POST' : 'GET');
  return { ok: true, value: req };
}

/** Re-reads the args of an http ToolCall (as the executor needs them). */
export function parseCurlArgs(args: readonly string[]): Result<CurlRequest, 'unparseable' | 'refused'> {
  return parseCurlWords(args.map((text, i) => ({ text, col: i + 1, quoted: false })));
}

export function parseHttp(words: readonly Word[], _ctx: ParseContext): ParseResult<ToolCall> {
  if (words[0]?.text !== 'curl') return unparseable('http: lines start with `curl`');
  const r = parseCurlWords(words.slice(1));
  if (!r.ok) return r;
  const req = r.value;
  const cls = HTTP_CLASSES[req.method];
  if (cls === undefined) return refused(`curl: method ${req.method} is not supported`);
  return ok(
    makeCall({
      tool: 'http',
      verb: req.method,
      program: ['curl'],
      args: words.slice(1).map((w) => w.text),
      class: cls,
      scope: { url: req.url, method: req.method },
    }),
  );
}
