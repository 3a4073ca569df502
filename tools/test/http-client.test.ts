import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expandIPv6, hostAllowed, runHttpCall, vetAddress } from '../http-client.js';
import type { HttpDeps } from '../http-client.js';
import { createSecretBroker } from '../secret-broker.js';
import type { ToolCall, ToolContext, ToolEnv } from '../types.js';
import { parseCommandLine } from '../parse-command.js';
import { runToolCall } from '../run-call.js';
import { startHttpTargets } from '../../test/harness/http-targets.js';
import type { HttpTargets } from '../../test/harness/http-targets.js';

let srv: HttpTargets;
beforeAll(async () => {
  srv = await startHttpTargets();
});
afterAll(async () => {
  await srv.close();
});

function call(args: string[]): ToolCall {
  const url = args.find((a) => /^https?:\/\//.test(a)) ?? '';
  return {
    tool: 'http',
    verb: 'GET',
    args,
    class: 'read',
    scope: { url },
    canonical: ['curl', ...args].join(' '),
    pipeline: [],
  };
}

function ctx(over: Partial<ToolContext> = {}, env: ToolEnv = { http: { allow: ['127.0.0.1'] } }): ToolContext {
  return { env, secrets: createSecretBroker(), timeoutMs: 5_000, outputCap: 64 * 1024, ...over };
}

async function run(args: string[], c: ToolContext = ctx(), deps?: HttpDeps) {
  return runHttpCall(call(args), c, deps);
}

describe('curl semantics', () => {
  it('GET prints the body and exits 0', async () => {
    const r = await run(['-s', `${srv.base}/health`]);
    expect(r).toMatchObject({ exitCode: 0, stdout: 'ok\n', timedOut: false, truncated: false });
  });

  it('-o /dev/null -w %{http_code} prints only the code', async () => {
    const r = await run(['-sf', '-o', '/dev/null', '-w', '%{http_code}', `${srv.base}/health`]);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe('200');
  });

  it('-f turns >=400 into exit 22, no body, but -w still writes', async () => {
    const r = await run(['-sf', '-w', '%{http_code}\\n', `${srv.base}/status/404`]);
    expect(r.exitCode).toBe(22);
    expect(r.stdout).toBe('404\n');
    expect(r.stderr).toBe('');
    const shown = await run(['-fsS', `${srv.base}/status/503`]);
    expect(shown.exitCode).toBe(22);
    expect(shown.stderr).toContain('curl: (22) The requested URL returned error: 503');
  });

  it('without -f an error status is just output, exit 0', async () => {
    const r = await run(['-s', `${srv.base}/status/500`]);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe('status 500\n');
  });

  it('-X POST -d -H reach the server as given', async () => {
    const before = srv.counter();
    const r = await run(['-s', '-X', 'POST', '-H', 'X-Trace: abc', '-d', 'n=1', `${srv.base}/counter`]);
    expect(r.exitCode).toBe(0);
    expect(srv.counter()).toBe(before + 1);
    const last = srv.requests.at(-1);
    expect(last?.method).toBe('POST');
    expect(last?.body).toBe('n=1');
    expect(last?.headers['x-trace']).toBe('abc');
    expect(last?.headers['content-type']).toBe('application/x-www-form-urlencoded');
  });

  it('-d without -X means POST; clustered -sXPUT works', async () => {
    await run(['-s', '-d', 'a=1', '-d', 'b=2', `${srv.base}/echo`]);
    expect(srv.requests.at(-1)).toMatchObject({ method: 'POST', body: 'a=1&b=2' });
    await run(['-sXPUT', `${srv.base}/echo`]);
    expect(srv.requests.at(-1)?.method).toBe('PUT');
  });

  it('-L follows redirects; without -L the 302 itself is the answer', async () => {
    const followed = await run(['-sL', '-w', ' %{url_effective}', `${srv.base}/chain/3`]);
    expect(followed.stdout).toBe(`end of chain\n ${srv.base}/chain/0`);
    const notFollowed = await run(['-s', '-w', '%{http_code}', `${srv.base}/chain/3`]);
    expect(notFollowed).toMatchObject({ exitCode: 0, stdout: 'next\n302' });
  });

  it('more than 5 redirects is exit 47', async () => {
    const ok5 = await run(['-sL', `${srv.base}/chain/5`]);
    expect(ok5.exitCode).toBe(0);
    const r = await run(['-sSL', `${srv.base}/chain/6`]);
    expect(r.exitCode).toBe(47);
    expect(r.stderr).toContain('curl: (47) Maximum (5) redirects followed');
  });

  it('connection refused is exit 7', async () => {
    const s = createServer();
    await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
    const port = (s.address() as AddressInfo).port;
    await new Promise<void>((resolve) => s.close(() => resolve()));
    const r = await run(['-sS', `http://127.0.0.1:${port}/`]);
    expect(r.exitCode).toBe(7);
    expect(r.stderr).toContain('curl: (7) Failed to connect to 127.0.0.1 port');
  });

  it('an unresolvable host is exit 6', async () => {
    const lookup: HttpDeps['lookup'] = () => Promise.reject(Object.assign(new Error('nope'), { code: 'ENOTFOUND' }));
    const r = await run(['-sS', 'http://no-such-host.test/'], ctx(), { lookup });
    expect(r.exitCode).toBe(6);
    expect(r.stderr).toContain('Could not resolve host: no-such-host.test');
  });

  it('--max-time is exit 28 and bounded', async () => {
    const t0 = Date.now();
    const r = await run(['-sS', '--max-time', '0.3', `${srv.base}/slow?ms=3000`]);
    expect(r.exitCode).toBe(28);
    expect(r.timedOut).toBe(true);
    expect(r.stderr).toContain('curl: (28) Operation timed out');
    expect(Date.now() - t0).toBeLessThan(2_000);
  });

  it('ctx.timeoutMs caps a longer --max-time', async () => {
    const r = await run(['-s', '--max-time', '60', `${srv.base}/slow?ms=3000`], ctx({ timeoutMs: 300 }));
    expect(r.exitCode).toBe(28);
    expect(r.durationMs).toBeLessThan(2_000);
  });

  it('an abort signal ends the request: exit null, not a timeout', async () => {
    const ac = new AbortController();
    const t0 = Date.now();
    setTimeout(() => ac.abort(), 100);
    const r = await run(['-s', `${srv.base}/slow?ms=3000`], ctx({ signal: ac.signal }));
    expect(r).toMatchObject({ exitCode: null, timedOut: false, stderr: 'aborted\n' });
    expect(Date.now() - t0).toBeLessThan(2_000);
  });

  it('the body is cut at the output cap', async () => {
    const r = await run(['-s', `${srv.base}/big?bytes=200000`], ctx({ outputCap: 1000 }));
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe('x'.repeat(1000));
    expect(r.truncated).toBe(true);
  });

  it('unsupported flags and -o to a file are refused before any request', async () => {
    const n = srv.requests.length;
    const k = await run(['-k', `${srv.base}/health`]);
    expect(k.exitCode).toBeNull();
    expect(k.refused?.code).toBe('http-bad-args');
    expect(k.refused?.message).toContain('-k');
    const o = await run(['-o', '/tmp/out', `${srv.base}/health`]);
    expect(o.refused?.code).toBe('http-bad-args');
    const file = await run(['-d', '@/etc/passwd', `${srv.base}/echo`]);
    expect(file.refused?.code).toBe('http-bad-args');
    expect(srv.requests.length).toBe(n);
  });
});

describe('address and host safety', () => {
  it('refuses a redirect to the metadata address', async () => {
    const n = srv.requests.length;
    const to = encodeURIComponent('http://169.254.169.254/latest/meta-data');
    const r = await run(['-sL', `${srv.base}/redirect?to=${to}`]);
    expect(r.exitCode).toBeNull();
    expect(r.refused?.code).toBe('http-metadata-address');
    expect(r.stderr).toContain('redirect 1');
    expect(r.stdout).toBe('');
    expect(srv.requests.length).toBe(n + 1);
  });

  it('refuses a redirect to a name that resolves to link-local', async () => {
    const lookup: HttpDeps['lookup'] = async (h) =>
      h === 'evil.test' ? [{ address: '169.254.10.1', family: 4 }] : [{ address: '127.0.0.1', family: 4 }];
    const r = await run(['-sL', `${srv.base}/redirect?to=${encodeURIComponent('http://evil.test/')}`], ctx(), { lookup });
    expect(r.refused?.code).toBe('http-link-local-address');
  });

  it("holds every redirect hop to the caller's own http hosts (a specialist's http_hosts)", async () => {
    // other.test resolves to the same loopback server: only the name is out of this caller's scope.
    const lookup: HttpDeps['lookup'] = async () => [{ address: '127.0.0.1', family: 4 }];
    const port = new URL(srv.base).port;
    const to = encodeURIComponent(`http://other.test:${port}/health`);
    const n = srv.requests.length;
    const scoped = await run(['-sL', `${srv.base}/redirect?to=${to}`], ctx({ httpHosts: ['127.0.0.1'] }), { lookup });
    expect(scoped.exitCode).toBeNull();
    expect(scoped.refused?.code).toBe('http-host-out-of-scope');
    expect(scoped.stderr).toContain('redirect 1');
    expect(scoped.stderr).toContain("other.test is not one of this agent's http hosts (127.0.0.1)");
    expect(srv.requests.length).toBe(n + 1);
    // Without a host list (a person), or with the name in it, the redirect is followed.
    expect((await run(['-sL', `${srv.base}/redirect?to=${to}`], ctx(), { lookup })).exitCode).toBe(0);
    expect((await run(['-sL', `${srv.base}/redirect?to=${to}`], ctx({ httpHosts: ['127.0.0.1', '*.test'] }), { lookup })).exitCode).toBe(0);
  });

  it('refuses unspecified, metadata and link-local addresses in every spelling', async () => {
    const cases: Array<[string, string]> = [
      [`http://0.0.0.0:${srv.port}/health`, 'http-unspecified-address'],
      [`http://[::]:${srv.port}/health`, 'http-unspecified-address'],
      ['http://169.254.169.254/latest/meta-data', 'http-metadata-address'],
      ['http://2852039166/', 'http-metadata-address'],
      ['http://0xa9.0xfe.0xa9.0xfe/', 'http-metadata-address'],
      ['http://[::ffff:169.254.169.254]/', 'http-metadata-address'],
      ['http://[fd00:ec2::254]/', 'http-metadata-address'],
      ['http://[fe80::1]/', 'http-link-local-address'],
      ['http://metadata.google.internal/computeMetadata/v1/', 'http-metadata-address'],
      ['http://169.254.1.1/', 'http-link-local-address'],
    ];
    let lookups = 0;
    const lookup: HttpDeps['lookup'] = async () => {
      lookups += 1;
      return [{ address: '127.0.0.1', family: 4 }];
    };
    for (const [url, code] of cases) {
      const r = await run(['-s', url], ctx(), { lookup });
      expect({ url, code: r.refused?.code, exit: r.exitCode }).toEqual({ url, code, exit: null });
    }
    expect(lookups).toBe(0);
  });

  it('refuses a name whose answers include a forbidden address', async () => {
    const lookup: HttpDeps['lookup'] = async () => [
      { address: '127.0.0.1', family: 4 },
      { address: '169.254.169.254', family: 4 },
    ];
    const r = await run(['-s', `http://mixed.test:${srv.port}/health`], ctx(), { lookup });
    expect(r.refused?.code).toBe('http-metadata-address');
  });

  it('connects to the vetted address (pinned), resolving once per hop', async () => {
    let lookups = 0;
    const lookup: HttpDeps['lookup'] = async () => {
      lookups += 1;
      // A rebinding resolver: safe first, metadata afterwards. Only the first answer may be used.
      return lookups === 1 ? [{ address: '127.0.0.1', family: 4 }] : [{ address: '169.254.169.254', family: 4 }];
    };
    const r = await run(['-s', `http://pinned.test:${srv.port}/echo`], ctx(), { lookup });
    expect(r.exitCode).toBe(0);
    expect(JSON.parse(r.stdout).headers.host).toBe(`pinned.test:${srv.port}`);
    expect(lookups).toBe(1);
  });

  it('refuses POST to a host not in http.allow, and sends nothing', async () => {
    const n = srv.requests.length;
    const r = await run(['-s', '-X', 'POST', `${srv.base}/counter`], ctx({}, { http: { allow: ['10.0.0.1', '*.example.org'] } }));
    expect(r.exitCode).toBeNull();
    expect(r.refused?.code).toBe('http-host-not-allowed');
    expect(srv.requests.length).toBe(n);
    const get = await run(['-s', `${srv.base}/health`], ctx({}, { http: { allow: [] } }));
    expect(get.exitCode).toBe(0);
  });

  it('re-checks the allowlist on a 307 redirect that keeps POST', async () => {
    const before = srv.counter();
    const to = encodeURIComponent(`http://localhost:${srv.port}/counter`);
    const r = await run(['-sL', '-X', 'POST', '-d', 'x', `${srv.base}/redirect?code=307&to=${to}`]);
    expect(r.refused?.code).toBe('http-host-not-allowed');
    expect(srv.counter()).toBe(before);
  });

  it('a 303 turns POST into GET, which may go anywhere safe', async () => {
    const to = encodeURIComponent(`http://localhost:${srv.port}/echo`);
    const r = await run(['-sL', '-d', 'x=1', `${srv.base}/redirect?code=303&to=${to}`]);
    expect(r.exitCode).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ method: 'GET', body: '' });
  });

  it('does not replay Authorization to another host after a redirect', async () => {
    const to = encodeURIComponent(`http://localhost:${srv.port}/echo`);
    const r = await run(['-sL', '-H', 'Authorization: Bearer abcdef', '-H', 'X-Keep: 1', `${srv.base}/redirect?to=${to}`]);
    const echoed = JSON.parse(r.stdout) as { headers: Record<string, string> };
    expect(echoed.headers.authorization).toBeUndefined();
    expect(echoed.headers['x-keep']).toBe('1');
  });

  it('hostAllowed: exact, wildcard subdomains only, IPv6 literal', () => {
    expect(hostAllowed('api.example.org', ['*.example.org'])).toBe(true);
    expect(hostAllowed('example.org', ['*.example.org'])).toBe(false);
    expect(hostAllowed('evilexample.org', ['*.example.org'])).toBe(false);
    expect(hostAllowed('API.Example.org.', ['api.example.org'])).toBe(true);
    expect(hostAllowed('[::1]', ['0:0::1'])).toBe(true);
    expect(hostAllowed('127.0.0.2', ['127.0.0.1'])).toBe(false);
  });

  it('vetAddress and expandIPv6 edge cases', () => {
    expect(vetAddress('127.0.0.1')).toBeNull();
    expect(vetAddress('::1')).toBeNull();
    expect(vetAddress('0.1.2.3')?.code).toBe('http-unspecified-address');
    expect(vetAddress('64:ff9b::169.254.169.254')?.code).toBe('http-metadata-address');
    expect(vetAddress('febf::1')?.code).toBe('http-link-local-address');
    expect(vetAddress('fec0::1')).toBeNull();
    expect(expandIPv6('1::2')).toEqual([1, 0, 0, 0, 0, 0, 0, 2]);
    expect(expandIPv6('1:2:3')).toBeNull();
  });
});

describe('secrets', () => {
  it('reveals handles at send time and scrubs them from the response', async () => {
    const c = ctx();
    const handle = c.secrets.register('vault:kv/app#token', 'tok-canary-9f8e7d6c');
    const r = await run(['-s', '-H', `Authorization: Bearer ${handle}`, `${srv.base}/echo?t=${handle}`], c);
    expect(srv.requests.at(-1)?.headers.authorization).toBe('Bearer tok-canary-9f8e7d6c');
    expect(srv.requests.at(-1)?.url).toContain('t=tok-canary-9f8e7d6c');
    expect(r.stdout).not.toContain('tok-canary-9f8e7d6c');
    expect(r.stdout).toContain(handle);
  });

  it('scrubs base64 and URL-encoded echoes of a secret in the body', async () => {
    const c = ctx();
    c.secrets.register('vault:kv/app#pw', 'p@ss word/+=canary');
    const b64 = Buffer.from('p@ss word/+=canary').toString('base64');
    const body = encodeURIComponent(`${b64} ${encodeURIComponent('p@ss word/+=canary')}`);
    const r = await run(['-s', `${srv.base}/text?body=${body}`], c);
    expect(r.stdout).not.toContain(b64);
    expect(r.stdout).not.toContain('canary');
    expect(r.stdout).toBe('{{secret:vault:kv/app#pw}} {{secret:vault:kv/app#pw}}');
  });

  it('an unknown handle is refused and nothing is sent', async () => {
    const n = srv.requests.length;
    const r = await run(['-s', '-H', 'X-T: {{secret:vault:kv/nope#x}}', `${srv.base}/echo`]);
    expect(r.exitCode).toBeNull();
    expect(r.refused?.code).toBe('unknown-secret-handle');
    expect(srv.requests.length).toBe(n);
  });
});

describe('curl extras the gate accepts', () => {
  it('-I prints the response head, --connect-timeout bounds only the connect', async () => {
    const r = await run(['-sI', '--connect-timeout', '2', `${srv.base}/health`]);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(r.stdout).toMatch(/Content-Type: text\/plain\r\n/);
    expect(r.stdout).not.toContain('ok\n');
    expect(srv.requests.at(-1)?.method).toBe('HEAD');
  });

  it('a handle in the URL path is revealed even though URL parsing encoded its braces', async () => {
    const c = ctx();
    const h = c.secrets.register('vault:kv/app#seg', 'path-secret-42');
    const r = await run(['-s', `${srv.base}/echo/${h}`], c);
    expect(srv.requests.at(-1)?.url).toBe('/echo/path-secret-42');
    expect(r.stdout).not.toContain('path-secret-42');
  });
});

describe('through parseCommandLine → runToolCall', () => {
  const line = async (text: string, c: ToolContext = ctx()) => {
    const parsed = parseCommandLine(text, { env: c.env });
    if (!parsed.ok) throw new Error(`${text}: ${parsed.message}`);
    expect(parsed.value.tool).toBe('http');
    return runToolCall(parsed.value, c);
  };

  it('a health check line prints the code', async () => {
    const r = await line(`curl -sf -o /dev/null -w '%{http_code}' ${srv.base}/health`);
    expect(r).toMatchObject({ exitCode: 0, stdout: '200' });
  });

  it('-f on a failing endpoint is exit 22 like curl', async () => {
    const r = await line(`curl -sf ${srv.base}/status/500`);
    expect(r.exitCode).toBe(22);
  });

  it('a redirect to the metadata address is refused', async () => {
    const to = encodeURIComponent('http://169.254.169.254/latest/meta-data');
    const r = await line(`curl -sL '${srv.base}/redirect?to=${to}'`);
    expect(r.exitCode).toBeNull();
    expect(r.refused?.code).toBe('http-metadata-address');
  });

  it('POST to a host outside http.allow is refused by the tool itself', async () => {
    const before = srv.counter();
    const r = await line(`curl -s -X POST ${srv.base}/counter`, ctx({}, { http: { allow: ['*.example.org'] } }));
    expect(r.refused?.code).toBe('http-host-not-allowed');
    expect(srv.counter()).toBe(before);
  });

  it('a secret handle in a header is revealed only on the wire', async () => {
    const c = ctx();
    c.secrets.register('vault:kv/app#api_token', 'gate-canary-0a1b2c3d');
    const r = await line(`curl -s -H 'Authorization: Bearer {{secret:vault:kv/app#api_token}}' ${srv.base}/echo`, c);
    expect(srv.requests.at(-1)?.headers.authorization).toBe('Bearer gate-canary-0a1b2c3d');
    expect(JSON.stringify(r)).not.toContain('gate-canary-0a1b2c3d');
    expect(r.stdout).toContain('Bearer {{secret:vault:kv/app#api_token}}');
  });
});
