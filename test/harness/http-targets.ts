// Small real HTTP servers on loopback for tests of the http tool and HTTP acceptance checks.
// Not a double of anything: plain endpoints with known behaviour.
//   GET  /health                 200 "ok\n"
//   GET  /counter                200 current count;  POST /counter  increments, 201 new count
//   ANY  /status/NNN             that status, body "status NNN\n"
//   ANY  /redirect?to=URL&code=C redirect (default 302) to URL
//   ANY  /chain/N                redirects to /chain/N-1 until /chain/0 → 200 "end of chain\n"
//   GET  /slow?ms=N              waits N ms, then 200 "slow\n"
//   GET  /big?bytes=N            N bytes of 'x'
//   ANY  /echo[/…]               200 JSON {method, url, headers, body}
//   GET  /text?body=S            200 with body S (to check scrubbing of what servers echo)
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface HttpTargets {
  /** `http://127.0.0.1:PORT` */
  base: string;
  port: number;
  requests: RecordedRequest[];
  counter(): number;
  close(): Promise<void>;
}

export async function startHttpTargets(host = '127.0.0.1'): Promise<HttpTargets> {
  const requests: RecordedRequest[] = [];
  let count = 0;
  const timers = new Set<NodeJS.Timeout>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const method = req.method ?? 'GET';
      const url = new URL(req.url ?? '/', 'http://target.invalid');
      requests.push({ method, url: req.url ?? '/', headers: req.headers, body });
      const text = (status: number, s: string, headers: Record<string, string> = {}): void => {
        res.writeHead(status, { 'Content-Type': 'text/plain', ...headers });
        res.end(method === 'HEAD' ? undefined : s);
      };
      const path = url.pathname;
      if (path === '/health') return text(200, 'ok\n');
      if (path === '/counter') {
        if (method === 'GET') return text(200, `${count}\n`);
        count += 1;
        return text(201, `${count}\n`);
      }
      const status = /^\/status\/(\d{3})$/.exec(path);
      if (status) return text(Number(status[1]), `status ${status[1]}\n`);
      if (path === '/redirect') {
        const to = url.searchParams.get('to') ?? '/health';
        return text(Number(url.searchParams.get('code') ?? 302), 'redirecting\n', { Location: to });
      }
      const chain = /^\/chain\/(\d+)$/.exec(path);
      if (chain) {
        const n = Number(chain[1]);
        return n === 0 ? text(200, 'end of chain\n') : text(302, 'next\n', { Location: `/chain/${n - 1}` });
      }
      if (path === '/slow') {
        const t = setTimeout(() => {
          timers.delete(t);
          text(200, 'slow\n');
        }, Number(url.searchParams.get('ms') ?? 1000));
        timers.add(t);
        return;
      }
      if (path === '/big') return text(200, 'x'.repeat(Number(url.searchParams.get('bytes') ?? 1000)));
      if (path === '/echo' || path.startsWith('/echo/')) {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ method, url: req.url, headers: req.headers, body }));
        return;
      }
      if (path === '/text') return text(200, url.searchParams.get('body') ?? '');
      return text(404, 'not found\n');
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    base: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    requests,
    counter: () => count,
    close: async () => {
      for (const t of timers) clearTimeout(t);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
