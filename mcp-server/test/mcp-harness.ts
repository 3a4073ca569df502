// Test harness (not a test): a throwaway workspace with a config, the real store, queue,
// specialists and a real local HTTP service, plus real SDK clients connected in memory.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttp, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { createSecretBroker } from '../../tools/secret-broker.js';
import { loadConfig, type Config } from '../core/config.js';
import { createFolderQueue, type TaskQueue } from '../core/queue.js';
import { loadSpecialists, type Specialist } from '../core/specialists.js';
import { openStore, type Store } from '../core/store.js';
import { ensureWorkspace, resolveWorkspace, type Workspace } from '../core/workspace.js';
import { createServer, identityFor, type ServerDeps } from '../server.js';

export const SPECIALISTS_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../agents/specialists');

export const CONFIG_YAML = `mode: standard
kubernetes:
  contexts:
    minikube: { namespaces: [shop] }
vault:
  paths: [kv/deploy]
files:
  roots: [ROOT]
http:
  allow: [127.0.0.1]
`;

export interface Harness {
  ws: Workspace;
  store: Store;
  config: Config;
  queue: TaskQueue;
  specialists: Specialist[];
  /** Base URL of the local HTTP service: /health answers healthy, /broken answers 503. */
  svc: string;
  svcHits: () => number;
  deps: (agent: string) => ServerDeps;
  connect: (agent: string) => Promise<Client>;
  writeTask: (name: string, text: string) => string;
  close: () => Promise<void>;
}

export async function makeHarness(): Promise<Harness> {
  const root = mkdtempSync(join(tmpdir(), 'opscrew-mcp-'));
  const ws = resolveWorkspace(root);
  ensureWorkspace(ws);
  writeFileSync(ws.configPath, CONFIG_YAML.replace('ROOT', root));
  const cfg = loadConfig({ workspaceDir: root, env: {} });
  if (!cfg.ok) throw new Error(cfg.message);
  const store = openStore(ws.dbPath);
  const queue = createFolderQueue({ workspace: ws, store, holder: 'test' });
  const sp = loadSpecialists(SPECIALISTS_DIR);
  if (!sp.ok) throw new Error(sp.message);
  let hits = 0;
  const http: Server = createHttp((req, res) => {
    hits++;
    if (req.url === '/health') {
      res.setHeader('Content-Type', 'application/json');
      res.end('{"status":"healthy"}');
    } else {
      res.statusCode = 503;
      res.end('{"status":"down"}');
    }
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  const svc = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  const clients: Client[] = [];
  const broker = createSecretBroker();
  const deps = (agent: string): ServerDeps => {
    const identity = identityFor(sp.value, agent);
    if (!identity) throw new Error(`no identity ${agent}`);
    return { workspace: ws, store, config: cfg.value, env: {}, broker, queue, specialists: sp.value, identity, now: Date.now, version: '0.0.0-test' };
  };
  return {
    ws,
    store,
    config: cfg.value,
    queue,
    specialists: sp.value,
    svc,
    svcHits: () => hits,
    deps,
    connect: async (agent) => {
      const server = createServer(deps(agent));
      const [a, b] = InMemoryTransport.createLinkedPair();
      const client = new Client({ name: `test-${agent}`, version: '0' });
      await Promise.all([server.connect(b), client.connect(a)]);
      clients.push(client);
      return client;
    },
    writeTask: (name, text) => {
      const f = join(ws.backlog, name);
      writeFileSync(f, text);
      return f;
    },
    close: async () => {
      for (const c of clients) await c.close().catch(() => undefined);
      await new Promise<void>((r) => http.close(() => r()));
      store.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** The text of a tool result (first content block). */
export function textOf(r: unknown): string {
  const c = ((r as { content?: unknown }).content as Array<{ type: string; text?: string }> | undefined)?.[0];
  return c?.text ?? '';
}
