// The http tool: a curl-compatible subset run in-process (no curl binary, no shell), so every
// hop can be vetted. Exit codes follow curl where tasks can observe them (`# expect exit: N`).
// Safety: every hop's host is resolved here, all its addresses are checked (link-local,
// metadata and unspecified addresses are refused for every method), and the socket is pinned
// to the vetted addresses so a DNS answer cannot change between check and connect. Mutating
// methods go only to hosts in env.http.allow. Secrets are revealed at send time only and the
// response is scrubbed.
import { lookup as dnsLookup } from 'node:dns/promises';
import * as http from 'node:http';
import * as https from 'node:https';
import { isIP } from 'node:net';
import type { LookupAddress } from 'node:dns';
import { parseCurlArgs } from './defs/http.js';
import { hasHandles } from './secret-broker.js';
import type { ExecOutcome, ToolCall, ToolContext } from './types.js';

/** curl's -L limit here (curl's own default is 50). */
export const MAX_REDIRECTS = 5;
/** Bytes read beyond the output cap so a secret cut at the cap is still scrubbed whole. */
const SCRUB_SLACK = 4096;
const READ_METHODS = new Set(['GET', 'HEAD']);
const REDIRECT_CODES = new Set([301, 302, 303, 307, 308]);

/** Host names that are cloud metadata services wherever they resolve. */
export const METADATA_HOSTNAMES = [
  'metadata.google.internal',
  'metadata.goog',
  'metadata',
  'instance-data',
  'instance-data.ec2.internal',
];

export type HttpLookup = (hostname: string) => Promise<LookupAddress[]>;

export interface HttpDeps {
  /** Resolver for host names (default: dns.lookup with all addresses). */
  lookup?: HttpLookup;
}

type Refusal = { code: string; message: string };

// ---------------------------------------------------------------- address vetting

function ipv4ToInt(ip: string): number {
  return ip.split('.').reduce((acc, p) => acc * 256 + Number(p), 0);
}

function inV4(ip: string, base: string, bits: number): boolean {
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return ((ipv4ToInt(ip) & mask) >>> 0) === ((ipv4ToInt(base) & mask) >>> 0);
}

/** Expands an IPv6 literal to 8 groups (handles `::` and a trailing dotted quad). */
export function expandIPv6(ip: string): number[] | null {
  let s = ip.replace(/^\[|\]$/g, '');
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  const quad = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (quad) {
    const n = ipv4ToInt(quad[1] as string);
    s = s.slice(0, quad.index) + `${((n >>> 16) & 0xffff).toString(16)}:${(n & 0xffff).toString(16)}`;
  }
  const halves = s.split('::');
  if (halves.length > 2) return null;
  const head = halves[0] ? (halves[0] as string).split(':') : [];
  const tail = halves.length === 2 && halves[1] ? (halves[1] as string).split(':') : [];
  const fill = halves.length === 2 ? 8 - head.length - tail.length : 0;
  if (fill < 0) return null;
  const groups = [...head, ...Array<string>(fill).fill('0'), ...tail].map((g) => parseInt(g, 16));
  if (groups.length !== 8 || groups.some((g) => !Number.isFinite(g) || g < 0 || g > 0xffff)) return null;
  return groups;
}

function v4FromGroups(hi: number, lo: number): string {
  return [hi >> 8, hi & 0xff, lo >> 8, lo & 0xff].join('.');
}

/** Why an address may not be contacted at all, or null when it may. */
export function vetAddress(address: string): Refusal | null {
  const family = isIP(address.replace(/^\[|\]$/g, '').replace(/%.*$/, ''));
  if (family === 4) {
    if (address === '169.254.169.254' || address === '100.100.100.200') {
      return { code: 'http-metadata-address', message: `${address} is a cloud metadata address` };
    }
    if (inV4(address, '169.254.0.0', 16)) return { code: 'http-link-local-address', message: `${address} is link-local` };
    if (inV4(address, '0.0.0.0', 8)) return { code: 'http-unspecified-address', message: `${address} is the unspecified address` };
    return null;
  }
  if (family === 6) {
    const g = expandIPv6(address);
    if (!g) return { code: 'http-bad-address', message: `cannot parse address ${address}` };
    if (g.every((x) => x === 0)) return { code: 'http-unspecified-address', message: `${address} is the unspecified address` };
    // fd00:ec2::254 — the AWS IPv6 metadata endpoint.
    if (g[0] === 0xfd00 && g[1] === 0xec2 && g.slice(2, 7).every((x) => x === 0) && g[7] === 0x254) {
      return { code: 'http-metadata-address', message: `${address} is a cloud metadata address` };
    }
    if (((g[0] as number) & 0xffc0) === 0xfe80) return { code: 'http-link-local-address', message: `${address} is link-local` };
    // IPv4 inside IPv6: mapped (::ffff:a.b.c.d), compatible (::a.b.c.d) and NAT64 (64:ff9b::a.b.c.d).
    const zero5 = g.slice(0, 5).every((x) => x === 0);
    // The deprecated compatible form only when it cannot be ::1-style (inner >= 0.1.0.0).
    const mapped = zero5 && (g[5] === 0xffff || (g[5] === 0 && g[6] !== 0));
    const nat64 = g[0] === 0x64 && g[1] === 0xff9b && g.slice(2, 6).every((x) => x === 0);
    if (mapped || nat64) {
      const inner = v4FromGroups(g[6] as number, g[7] as number);
      const r = vetAddress(inner);
      if (r) return { code: r.code, message: `${address} embeds ${inner}: ${r.message}` };
    }
    return null;
  }
  return { code: 'http-bad-address', message: `not an IP address: ${address}` };
}

function normalizeHost(hostname: string): string {
  return hostname.replace(/^\[|\]$/g, '').replace(/\.$/, '').toLowerCase();
}

/** Host allowlist for mutating methods: exact host, `*.suffix` (subdomains only), IP literals exactly. */
export function hostAllowed(hostname: string, allow: readonly string[]): boolean {
  const host = normalizeHost(hostname);
  return allow.some((entry) => {
    const e = normalizeHost(entry.trim());
    if (e.startsWith('*.')) return host.endsWith(e.slice(1)) && host.length > e.length - 1;
    if (isIP(e) === 6 && isIP(host) === 6) {
      const a = expandIPv6(e);
      const b = expandIPv6(host);
      return a !== null && b !== null && a.every((x, i) => x === b[i]);
    }
    return e === host;
  });
}

/**
 * Checks a hop's URL before resolution: scheme, metadata names, mutating-method allowlist.
 * `carriesSecrets`: the call holds a secret/generate handle, which goes only to allowed hosts
 * whatever the method (a GET with a secret header to any host, or a redirect, would leak it).
 */
export function vetTarget(url: URL, method: string, allow: readonly string[], carriesSecrets = false): Refusal | null {
  const host = normalizeHost(url.hostname);
  if (METADATA_HOSTNAMES.includes(host)) return { code: 'http-metadata-address', message: `${host} is a cloud metadata host` };
  if ((carriesSecrets || !READ_METHODS.has(method)) && !hostAllowed(host, allow)) {
    const what = carriesSecrets ? 'requests carrying a secret handle' : 'mutating requests';
    return {
      code: 'http-host-not-allowed',
      message: `${method} to ${host} refused: ${what} go only to hosts in http.allow (${allow.length > 0 ? allow.join(', ') : 'empty'})`,
    };
  }
  return null;
}

/** A host outside the caller's own http hosts (a specialist's `http_hosts`), if it has any. */
export function vetCallerHost(url: URL, hosts: readonly string[] | undefined): Refusal | null {
  if (hosts === undefined || hosts.includes('*') || hostAllowed(url.hostname, hosts)) return null;
  return { code: 'http-host-out-of-scope', message: `${normalizeHost(url.hostname)} is not one of this agent's http hosts (${hosts.join(', ') || 'none'})` };
}

// ---------------------------------------------------------------- one request

interface HopResult {
  status: number;
  statusMessage: string;
  httpVersion: string;
  rawHeaders: string[];
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  bodyTruncated: boolean;
}

class CurlFailure {
  constructor(
    readonly exitCode: number,
    readonly message: string,
  ) {}
}

function errCode(e: unknown): string {
  if (e && typeof e === 'object') {
    if ('code' in e && typeof (e as { code: unknown }).code === 'string') return (e as { code: string }).code;
    if (e instanceof AggregateError && e.errors.length > 0) return errCode(e.errors[e.errors.length - 1]);
  }
  return '';
}

function mapSocketError(e: unknown, host: string, port: number, elapsedMs: number, gotResponse: boolean): CurlFailure {
  const code = errCode(e);
  if (['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'ECONNABORTED'].includes(code)) {
    return new CurlFailure(7, `Failed to connect to ${host} port ${port} after ${elapsedMs} ms: Couldn't connect to server`);
  }
  if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ALTNAME/.test(code)) {
    return new CurlFailure(60, `SSL certificate problem: ${e instanceof Error ? e.message : code}`);
  }
  if (code.startsWith('ERR_SSL') || code.startsWith('ERR_TLS')) {
    return new CurlFailure(35, `SSL connect error: ${e instanceof Error ? e.message : code}`);
  }
  if (code.startsWith('HPE_')) return new CurlFailure(8, 'Weird server reply');
  if (code === 'ECONNRESET' && !gotResponse) return new CurlFailure(52, 'Empty reply from server');
  return new CurlFailure(56, `Failure when receiving data from the peer${code ? ` (${code})` : ''}`);
}

function sendOnce(
  url: URL,
  method: string,
  headers: Record<string, string>,
  body: Buffer | undefined,
  addresses: LookupAddress[],
  keepBytes: number,
  deadline: number,
  connectTimeoutMs: number | undefined,
  signal: AbortSignal | undefined,
): Promise<HopResult> {
  return new Promise<HopResult>((resolve, reject) => {
    const started = Date.now();
    const port = url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
    const host = normalizeHost(url.hostname);
    const mod = url.protocol === 'https:' ? https : http;
    let gotResponse = false;
    let settled = false;
    let received = 0;
    const finish = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(connectTimer);
      signal?.removeEventListener('abort', onAbort);
      fn();
    };
    // The socket may only go to the vetted addresses: net/tls call this instead of DNS.
    const pinned = (
      _hostname: string,
      opts: { all?: boolean },
      cb: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
    ): void => {
      const first = addresses[0] as LookupAddress;
      if (opts.all) cb(null, addresses);
      else cb(null, first.address, first.family);
    };
    // autoSelectFamily: try every pinned address (localhost → ::1 and 127.0.0.1) like curl does.
    const reqOpts: https.RequestOptions & { autoSelectFamily?: boolean } = {
      protocol: url.protocol,
      hostname: isIP(host) ? host : url.hostname,
      port,
      path: `${url.pathname}${url.search}`,
      method,
      headers,
      agent: false,
      lookup: pinned as unknown as http.RequestOptions['lookup'],
      autoSelectFamily: true,
      ...(url.protocol === 'https:' && !isIP(host) ? { servername: host } : {}),
    };
    const req = mod.request(reqOpts);
    const timeLeft = Math.max(0, deadline - Date.now());
    const timer = setTimeout(() => {
      finish(() => reject(new CurlFailure(28, `Operation timed out after ${Date.now() - started} milliseconds with ${received} bytes received`)));
      req.destroy();
    }, timeLeft);
    // --connect-timeout: only until the TCP (and TLS) connection is up.
    const connectTimer =
      connectTimeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            finish(() => reject(new CurlFailure(28, `Connection timed out after ${Date.now() - started} milliseconds`)));
            req.destroy();
          }, connectTimeoutMs);
    req.on('socket', (sock) => {
      sock.once(url.protocol === 'https:' ? 'secureConnect' : 'connect', () => clearTimeout(connectTimer));
    });
    const onAbort = (): void => {
      finish(() => reject(new CurlFailure(-1, 'aborted')));
      req.destroy();
    };
    signal?.addEventListener('abort', onAbort, { once: true });

    req.on('error', (e) => finish(() => reject(mapSocketError(e, host, port, Date.now() - started, gotResponse))));
    req.on('response', (res) => {
      gotResponse = true;
      const chunks: Buffer[] = [];
      let kept = 0;
      let truncated = false;
      res.on('data', (chunk: Buffer) => {
        received += chunk.length;
        const room = keepBytes - kept;
        if (room > 0) {
          chunks.push(chunk.length > room ? chunk.subarray(0, room) : chunk);
          kept += Math.min(room, chunk.length);
        }
        if (chunk.length > room) {
          // Past the cap: stop downloading rather than drain an unbounded body.
          truncated = true;
          finish(() => resolve({ ...head(res), body: Buffer.concat(chunks), bodyTruncated: true }));
          res.destroy();
        }
      });
      res.on('end', () =>
        finish(() => resolve({ ...head(res), body: Buffer.concat(chunks), bodyTruncated: truncated })),
      );
      res.on('error', (e) => finish(() => reject(mapSocketError(e, host, port, Date.now() - started, true))));
    });
    if (body !== undefined) req.end(body);
    else req.end();
  });
}

function head(res: http.IncomingMessage): Omit<HopResult, 'body' | 'bodyTruncated'> {
  return {
    status: res.statusCode ?? 0,
    statusMessage: res.statusMessage ?? '',
    httpVersion: res.httpVersion,
    rawHeaders: res.rawHeaders,
    headers: res.headers,
  };
}

// ---------------------------------------------------------------- the tool

function refusedOutcome(r: Refusal, started: number, scrub: (s: string) => string = (s) => s): ExecOutcome {
  const message = scrub(r.message);
  return {
    exitCode: null,
    stdout: '',
    stderr: `refused: ${message}\n`,
    durationMs: Date.now() - started,
    timedOut: false,
    truncated: false,
    refused: { code: r.code, message },
  };
}

function expandWriteOut(fmt: string, vars: Record<string, string>, warnings: string[]): string {
  return fmt
    .replace(/\\([nrt\\])/g, (_m, c: string) => ({ n: '\n', r: '\r', t: '\t', '\\': '\\' })[c] ?? c)
    .replace(/%\{([a-z_]+)\}|%%/g, (m, name: string | undefined) => {
      if (m === '%%') return '%';
      const v = vars[name as string];
      if (v === undefined) {
        warnings.push(`curl: unknown --write-out variable: '${name}'`);
        return '';
      }
      return v;
    });
}

async function defaultLookup(hostname: string): Promise<LookupAddress[]> {
  return dnsLookup(hostname, { all: true, verbatim: true });
}

/** Runs a parsed `curl …` call in-process. Never throws for expected outcomes. */
export async function runHttpCall(call: ToolCall, ctx: ToolContext, deps: HttpDeps = {}): Promise<ExecOutcome> {
  const started = Date.now();
  const scrub = (text: string): string => ctx.secrets.scrub(text);
  // The same parser as the gate (tools/defs/http.ts), so the executor reads what policy saw.
  const gate = parseCurlArgs(call.args);
  if (!gate.ok) return refusedOutcome({ code: 'http-bad-args', message: gate.message }, started);
  // Secrets are revealed word by word before the request is built (a handle's `#` or braces
  // would not survive URL parsing); nothing derived from them leaves unscrubbed.
  let revealed: string[];
  try {
    revealed = call.args.map((a) => ctx.secrets.reveal(a));
  } catch (e) {
    const code = errCode(e) || 'secret-reveal-failed';
    return refusedOutcome({ code, message: e instanceof Error ? e.message : String(e) }, started);
  }
  const parsed = parseCurlArgs(revealed);
  if (!parsed.ok) return refusedOutcome({ code: 'http-bad-args', message: parsed.message }, started, scrub);
  const opts = parsed.value;
  const allow = ctx.env.http?.allow ?? [];
  const carriesSecrets = call.args.some(hasHandles);
  const resolve = deps.lookup ?? defaultLookup;
  const urlText = opts.url;
  const headerPairs = opts.headers;
  const data = opts.data;

  const maxTime = Math.min(opts.maxTimeSeconds !== undefined ? opts.maxTimeSeconds * 1000 : Number.POSITIVE_INFINITY, ctx.timeoutMs);
  const connectTimeoutMs = opts.connectTimeoutSeconds !== undefined ? opts.connectTimeoutSeconds * 1000 : undefined;
  const deadline = started + maxTime;
  const showErrors = !opts.silent || opts.showError;
  const stderrLines: string[] = [];
  let stdout = '';
  let exitCode = 0;
  let timedOut = false;
  let truncated = false;
  let httpCode = '000';
  let contentType = '';
  let sizeDownload = 0;
  let redirects = 0;
  let redirectUrl = '';

  let method = opts.method;
  let body: Buffer | undefined = data === undefined ? undefined : Buffer.from(data, 'utf8');
  let current: URL;
  try {
    current = new URL(urlText);
  } catch {
    return finalize(3, 'URL rejected: Malformed input to a URL function', opts.url);
  }
  const originalHost = normalizeHost(current.hostname);
  const userHeaders = headerPairs;

  function finalize(code: number, message: string | null, effectiveUrl: string): ExecOutcome {
    exitCode = code;
    if (message !== null && showErrors) stderrLines.push(`curl: (${code}) ${message}`);
    const warnings: string[] = [];
    if (opts.writeOut !== undefined) {
      stdout += expandWriteOut(
        opts.writeOut,
        {
          http_code: httpCode,
          response_code: httpCode,
          url_effective: effectiveUrl,
          num_redirects: String(redirects),
          redirect_url: redirectUrl,
          content_type: contentType,
          size_download: String(sizeDownload),
          time_total: ((Date.now() - started) / 1000).toFixed(6),
          method,
          exitcode: String(code),
        },
        warnings,
      );
    }
    const errText = [...warnings, ...stderrLines].map((l) => `${l}\n`).join('');
    let out = ctx.secrets.scrub(stdout);
    if (out.length > ctx.outputCap) {
      out = out.slice(0, ctx.outputCap);
      truncated = true;
    }
    return {
      exitCode,
      stdout: out,
      stderr: ctx.secrets.scrub(errText).slice(0, ctx.outputCap),
      durationMs: Date.now() - started,
      timedOut,
      truncated,
    };
  }

  for (;;) {
    if (current.protocol !== 'http:' && current.protocol !== 'https:') {
      return finalize(1, `Protocol "${current.protocol.replace(/:$/, '')}" not supported`, current.href);
    }
    const targetRefusal = vetTarget(current, method, allow, carriesSecrets) ?? vetCallerHost(current, ctx.httpHosts);
    if (targetRefusal) return refusedOutcome(hopMessage(targetRefusal, redirects, current), started, scrub);

    const host = normalizeHost(current.hostname);
    let addresses: LookupAddress[];
    if (isIP(host)) {
      addresses = [{ address: host, family: isIP(host) }];
    } else {
      try {
        addresses = await resolve(host);
      } catch {
        return finalize(6, `Could not resolve host: ${host}`, current.href);
      }
      if (addresses.length === 0) return finalize(6, `Could not resolve host: ${host}`, current.href);
    }
    // Any forbidden answer refuses the host: a mixed answer is how rebinding attacks start.
    for (const a of addresses) {
      const r = vetAddress(a.address);
      if (r) return refusedOutcome(hopMessage({ code: r.code, message: `${host} resolves to ${r.message}` }, redirects, current), started, scrub);
    }

    const headers: Record<string, string> = { 'User-Agent': 'opscrew-http/1', Accept: '*/*' };
    const sameHost = host === originalHost;
    for (const [k, v] of userHeaders) {
      // Like curl: credentials are not replayed to a different host after a redirect.
      if (!sameHost && /^(authorization|cookie|x-vault-token)$/i.test(k)) continue;
      if (v === '') {
        for (const existing of Object.keys(headers)) if (existing.toLowerCase() === k.toLowerCase()) delete headers[existing];
        continue;
      }
      for (const existing of Object.keys(headers)) if (existing.toLowerCase() === k.toLowerCase()) delete headers[existing];
      headers[k] = v;
    }
    if (body !== undefined) {
      if (!Object.keys(headers).some((k) => k.toLowerCase() === 'content-type')) {
        headers['Content-Type'] = 'application/x-www-form-urlencoded';
      }
      headers['Content-Length'] = String(body.length);
    }

    let hop: HopResult;
    try {
      hop = await sendOnce(current, method, headers, body, addresses, ctx.outputCap + SCRUB_SLACK, deadline, connectTimeoutMs, ctx.signal);
    } catch (e) {
      if (e instanceof CurlFailure) {
        if (e.exitCode === -1) {
          return { ...finalize(0, null, current.href), exitCode: null, stderr: 'aborted\n' };
        }
        if (e.exitCode === 28) timedOut = true;
        return finalize(e.exitCode, e.message, current.href);
      }
      return finalize(56, e instanceof Error ? e.message : String(e), current.href);
    }

    httpCode = String(hop.status).padStart(3, '0');
    contentType = String(hop.headers['content-type'] ?? '');
    sizeDownload = hop.body.length;
    const location = hop.headers.location;
    if (REDIRECT_CODES.has(hop.status) && typeof location === 'string') {
      let next: URL;
      try {
        next = new URL(location, current);
      } catch {
        return finalize(3, 'URL rejected: Malformed redirect Location', current.href);
      }
      redirectUrl = next.href;
      if (opts.followRedirects) {
        if (redirects >= MAX_REDIRECTS) return finalize(47, `Maximum (${MAX_REDIRECTS}) redirects followed`, current.href);
        redirects += 1;
        // curl: 303 turns everything but HEAD into GET; 301/302 turn POST into GET; 307/308 keep all.
        if ((hop.status === 303 && method !== 'HEAD') || ((hop.status === 301 || hop.status === 302) && method === 'POST')) {
          method = 'GET';
          body = undefined;
        }
        current = next;
        continue;
      }
    }

    if (opts.fail && hop.status >= 400) {
      return finalize(22, `The requested URL returned error: ${hop.status}`, current.href);
    }
    if (opts.headOnly && !opts.discardBody) {
      // curl -I prints the response head.
      stdout += `HTTP/${hop.httpVersion} ${hop.status} ${hop.statusMessage}\r\n`;
      for (let i = 0; i + 1 < hop.rawHeaders.length; i += 2) stdout += `${hop.rawHeaders[i]}: ${hop.rawHeaders[i + 1]}\r\n`;
      stdout += '\r\n';
    } else if (!opts.discardBody && method !== 'HEAD') {
      stdout += hop.body.toString('utf8');
      if (hop.bodyTruncated || hop.body.length > ctx.outputCap) truncated = true;
    }
    return finalize(0, null, current.href);
  }
}

function hopMessage(r: Refusal, redirects: number, url: URL): Refusal {
  if (redirects === 0) return r;
  return { code: r.code, message: `redirect ${redirects} to ${url.href} refused: ${r.message}` };
}
