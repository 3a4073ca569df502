// Child-process roles for the crew bench, one process each so the crew, the plain script and the
// HTTP target never share an event loop or a heap with the bench itself:
//   node crew-driver.js target PORTFILE          a loopback HTTP target (GET /t/N → "ok\n"; GET /count)
//   node crew-driver.js script PORT N C          N GETs at concurrency C, like the http tool sends them
//   node crew-driver.js crew WS N C              runCrewThreads --once in-process on workspace WS
// `script` and `crew` print one JSON line on stdout: {wallMs, ...}.
import { writeFileSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..', '..');

function serveTarget(portFile: string): void {
  let hits = 0;
  const server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    if (url.startsWith('/t/')) {
      hits += 1;
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end('ok\n');
      return;
    }
    if (url === '/count') {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end(`${hits}\n`);
      return;
    }
    res.writeHead(404);
    res.end('not found\n');
  });
  // The bench ends this process with SIGTERM (runProcess abort); nothing to flush.
  server.listen(0, '127.0.0.1', () => {
    writeFileSync(portFile, String((server.address() as AddressInfo).port));
  });
}

/**
 * One GET the way tools/http-client.ts sends it for `curl -fsS URL`: a fresh connection per
 * request (`agent: false`, no keep-alive), the same request headers, the body read in full.
 */
export function plainGet(port: number, path: string): Promise<void> {
  return new Promise((res, rej) => {
    const opts: http.RequestOptions & { autoSelectFamily?: boolean } = {
      hostname: '127.0.0.1',
      port,
      path,
      method: 'GET',
      headers: { 'User-Agent': 'opscrew-http/1', Accept: '*/*' },
      agent: false,
      autoSelectFamily: true,
    };
    const req = http.request(opts, (r) => {
      const chunks: Buffer[] = [];
      r.on('data', (c: Buffer) => chunks.push(c));
      r.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        if (r.statusCode !== 200 || !body.includes('ok')) rej(new Error(`GET ${path}: ${r.statusCode} ${body}`));
        else res();
      });
      r.on('error', rej);
    });
    req.on('error', rej);
    req.end();
  });
}

async function runScript(port: number, n: number, c: number): Promise<void> {
  const t0 = process.hrtime.bigint();
  let next = 1;
  const worker = async (): Promise<void> => {
    while (next <= n) {
      const i = next++;
      await plainGet(port, `/t/${i}`);
    }
  };
  await Promise.all(Array.from({ length: c }, () => worker()));
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  process.stdout.write(`${JSON.stringify({ wallMs, n, c })}\n`);
}

async function runCrewOnce(ws: string, n: number, c: number): Promise<void> {
  const tImport = process.hrtime.bigint();
  const [{ runCrewThreads, defaultCrewThreads }, { loadSpecialists }] = await Promise.all([
    import('../agents/runtime/crew-threads.js'),
    import('../mcp-server/core/specialists.js'),
  ]);
  const loaded = loadSpecialists(join(ROOT, 'agents', 'specialists'));
  if (!loaded.ok) throw new Error(loaded.message);
  // The shipped per-specialist caps (devops-specialist: 2) would hold every run at ≤ 2 workers;
  // raising them measures the crew's engine at the concurrency asked for. The CLI run in the
  // bench shows the shipped caps.
  const specialists = loaded.value.map((s) => ({ ...s, maxConcurrency: Math.max(s.maxConcurrency, c) }));
  const importMs = Number(process.hrtime.bigint() - tImport) / 1e6;
  const t0 = process.hrtime.bigint();
  // CPU of the whole process (every thread, user + system) over the crew's wall: how much of the
  // machine this concurrency already uses, which bounds what a higher one can add.
  const cpu0 = process.cpuUsage();
  // The threads `opscrew run` uses by default for this concurrency (one per core, ≤ one per two workers).
  const threads = defaultCrewThreads(c);
  const summary = await runCrewThreads({ workspace: ws, specialists, once: true, concurrency: c, threads, env: { ...process.env } });
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const cpu = process.cpuUsage(cpu0);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  const mem = process.memoryUsage();
  process.stdout.write(
    `${JSON.stringify({ wallMs, cpuMs, importMs, n, c, threads, completed: summary.completed.length, blocked: summary.blocked.length, failed: summary.failed.length, firstBlock: summary.blocked[0]?.reason ?? null, rssMiB: mem.rss / 1048576 })}\n`,
  );
}

async function main(argv: readonly string[]): Promise<void> {
  const [role, a, b, c] = argv;
  if (role === 'target' && a) return serveTarget(a);
  if (role === 'script' && a && b && c) return runScript(Number(a), Number(b), Number(c));
  if (role === 'crew' && a && b && c) return runCrewOnce(a, Number(b), Number(c));
  throw new Error('usage: crew-driver.js target PORTFILE | script PORT N C | crew WS N C');
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    process.stderr.write(`crew-driver: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exitCode = 1;
  });
}
