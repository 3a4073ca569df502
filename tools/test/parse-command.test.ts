import { describe, expect, it } from 'vitest';
import { makeFileWriteCall } from '../defs/files.js';
import { parseCurlArgs } from '../defs/http.js';
import { parseVaultArgs } from '../defs/vault.js';
import { parseCommandLine } from '../parse-command.js';
import type { OpClass, ToolCall, ToolEnv } from '../types.js';

const env: ToolEnv = {
  kubernetes: { contexts: { minikube: { namespaces: ['*'] } }, defaultContext: 'minikube' },
  compose: { projects: { shop: { file: '/srv/shop/docker-compose.yml' } } },
  ssh: { hosts: { 'edge-1': { host: '10.0.0.5', port: 22, user: 'ops' } } },
  files: { roots: ['/srv'] },
};

function parse(line: string, vars: Record<string, string> = {}): ToolCall {
  const r = parseCommandLine(line, { env, vars });
  if (!r.ok) throw new Error(`${line}: ${r.code}: ${r.message}`);
  return r.value;
}

interface Case {
  line: string;
  tool: ToolCall['tool'];
  verb: string;
  cls: OpClass;
  scope?: ToolCall['scope'];
  canonical?: string;
  preflight?: ToolCall['preflight'];
}

function table(name: string, cases: Case[]): void {
  describe(name, () => {
    for (const c of cases) {
      it(`${c.line} → ${c.tool} ${c.verb} ${c.cls}`, () => {
        const call = parse(c.line);
        expect(call.tool).toBe(c.tool);
        expect(call.verb).toBe(c.verb);
        expect(call.class).toBe(c.cls);
        if (c.scope) expect(call.scope).toEqual(c.scope);
        if (c.canonical) expect(call.canonical).toBe(c.canonical);
        expect(call.preflight).toBe(c.preflight);
        // The canonical line parses back to the same call.
        expect(parse(call.canonical)).toEqual(call);
      });
    }
  });
}

table('kubectl', [
  { line: 'kubectl get pods', tool: 'kubectl', verb: 'get', cls: 'read', scope: { context: 'minikube', namespace: 'default' }, canonical: 'kubectl --context minikube -n default get pods' },
  { line: 'kubectl --context=kind -nkube-system get pods -o wide', tool: 'kubectl', verb: 'get', cls: 'read', scope: { context: 'kind', namespace: 'kube-system' }, canonical: 'kubectl --context kind -n kube-system get pods --output=wide' },
  { line: 'kubectl get pods --namespace=ffl --context minikube', tool: 'kubectl', verb: 'get', cls: 'read', canonical: 'kubectl --context minikube -n ffl get pods' },
  { line: 'kubectl get pods -A', tool: 'kubectl', verb: 'get', cls: 'read', scope: { context: 'minikube', namespace: '*' }, canonical: 'kubectl --context minikube get pods --all-namespaces' },
  { line: 'kubectl get secrets', tool: 'kubectl', verb: 'get', cls: 'read' },
  { line: 'kubectl get secret db -o yaml', tool: 'kubectl', verb: 'get', cls: 'sensitive-read' },
  { line: 'kubectl get secret/db -ojsonpath={.data.pw}', tool: 'kubectl', verb: 'get', cls: 'sensitive-read' },
  { line: 'kubectl get cm,secrets --output json', tool: 'kubectl', verb: 'get', cls: 'sensitive-read' },
  { line: 'kubectl get secret db -o name', tool: 'kubectl', verb: 'get', cls: 'read' },
  { line: 'kubectl describe secret db', tool: 'kubectl', verb: 'describe', cls: 'read' },
  { line: 'kubectl logs deploy/x --tail 50 -c app', tool: 'kubectl', verb: 'logs', cls: 'read', canonical: 'kubectl --context minikube -n default logs deploy/x --tail=50 --container=app' },
  { line: 'kubectl rollout status deploy/x --timeout 60s', tool: 'kubectl', verb: 'rollout status', cls: 'read' },
  { line: 'kubectl rollout history deploy/x', tool: 'kubectl', verb: 'rollout history', cls: 'read' },
  { line: 'kubectl auth can-i get pods', tool: 'kubectl', verb: 'auth can-i', cls: 'read' },
  { line: 'kubectl config current-context', tool: 'kubectl', verb: 'config current-context', cls: 'read' },
  { line: 'kubectl config view --minify', tool: 'kubectl', verb: 'config view', cls: 'sensitive-read' },
  { line: 'kubectl exec pod/x -c app -- cat /etc/hostname', tool: 'kubectl', verb: 'exec', cls: 'sensitive-read' },
  { line: 'kubectl top pods', tool: 'kubectl', verb: 'top', cls: 'read' },
  { line: 'kubectl wait --for=condition=Ready pod/x --timeout=60s', tool: 'kubectl', verb: 'wait', cls: 'read' },
  { line: 'kubectl apply -f /srv/k8s/app.yaml', tool: 'kubectl', verb: 'apply', cls: 'mutate', scope: { context: 'minikube', namespace: 'default', paths: ['/srv/k8s/app.yaml'] }, preflight: 'server-dry-run' },
  { line: "kubectl patch deploy x -p '{\"spec\":{}}'", tool: 'kubectl', verb: 'patch', cls: 'mutate', preflight: 'server-dry-run' },
  { line: 'kubectl apply -f /srv/a.yaml --dry-run=server', tool: 'kubectl', verb: 'apply', cls: 'read' },
  { line: 'kubectl scale deploy/x --replicas=3', tool: 'kubectl', verb: 'scale', cls: 'mutate' },
  { line: 'kubectl rollout restart deploy/x', tool: 'kubectl', verb: 'rollout restart', cls: 'mutate' },
  { line: 'kubectl rollout undo deploy/x', tool: 'kubectl', verb: 'rollout undo', cls: 'mutate' },
  { line: 'kubectl set image deploy/x app=nginx:1.27', tool: 'kubectl', verb: 'set image', cls: 'mutate' },
  { line: 'kubectl label ns x team=ops --overwrite', tool: 'kubectl', verb: 'label', cls: 'mutate' },
  { line: 'kubectl cordon node-1', tool: 'kubectl', verb: 'cordon', cls: 'mutate' },
  { line: 'kubectl taint nodes n1 k=v:NoSchedule', tool: 'kubectl', verb: 'taint', cls: 'mutate' },
  { line: 'kubectl replace -f /srv/a.yaml', tool: 'kubectl', verb: 'replace', cls: 'mutate' },
  { line: 'kubectl replace --force -f /srv/a.yaml', tool: 'kubectl', verb: 'replace', cls: 'destructive' },
  { line: 'kubectl --context minikube delete namespace mtg-agents', tool: 'kubectl', verb: 'delete', cls: 'destructive', canonical: 'kubectl --context minikube -n default delete namespace mtg-agents' },
  { line: 'kubectl drain node-1 --ignore-daemonsets', tool: 'kubectl', verb: 'drain', cls: 'destructive' },
]);

table('compose', [
  { line: 'docker compose -p shop ps', tool: 'compose', verb: 'ps', cls: 'read', scope: { project: 'shop' }, canonical: 'docker compose -f /srv/shop/docker-compose.yml -p shop ps' },
  { line: 'docker-compose -p shop ps', tool: 'compose', verb: 'ps', cls: 'read', canonical: 'docker compose -f /srv/shop/docker-compose.yml -p shop ps' },
  { line: 'docker compose -f /srv/shop/docker-compose.yml logs --tail 20 web', tool: 'compose', verb: 'logs', cls: 'read', scope: { project: 'shop' } },
  // config prints the project with its environment interpolated: names only or nothing is a plain read.
  { line: 'docker compose -p shop config', tool: 'compose', verb: 'config', cls: 'sensitive-read' },
  { line: 'docker compose -p shop config --format json', tool: 'compose', verb: 'config', cls: 'sensitive-read' },
  { line: 'docker compose -p shop config -q', tool: 'compose', verb: 'config', cls: 'read' },
  { line: 'docker compose -p shop config --services', tool: 'compose', verb: 'config', cls: 'read' },
  { line: 'docker compose -p shop up -d --wait', tool: 'compose', verb: 'up', cls: 'mutate', preflight: 'compose-config' },
  { line: 'docker compose --project-name shop restart web', tool: 'compose', verb: 'restart', cls: 'mutate' },
  { line: 'docker compose -p shop pull', tool: 'compose', verb: 'pull', cls: 'mutate' },
  { line: 'docker compose -p shop down', tool: 'compose', verb: 'down', cls: 'destructive' },
  { line: 'docker compose -p shop rm -f -s web', tool: 'compose', verb: 'rm', cls: 'destructive' },
  { line: 'docker compose -p shop kill -s SIGTERM web', tool: 'compose', verb: 'kill', cls: 'destructive' },
]);

table('docker', [
  { line: 'docker ps -a', tool: 'docker', verb: 'ps', cls: 'read', canonical: 'docker ps -a' },
  { line: "docker ps --format '{{.Names}}'", tool: 'docker', verb: 'ps', cls: 'read' },
  { line: 'docker logs --tail 20 web', tool: 'docker', verb: 'logs', cls: 'read' },
  // inspect prints Config.Env: a sensitive read, except a -f template reading state, identity or network.
  { line: 'docker inspect web', tool: 'docker', verb: 'inspect', cls: 'sensitive-read' },
  { line: "docker inspect -f '{{.State.Health.Status}}' web", tool: 'docker', verb: 'inspect', cls: 'read' },
  { line: "docker inspect --format '{{.Name}} {{json .NetworkSettings.Ports}}' web", tool: 'docker', verb: 'inspect', cls: 'read' },
  { line: "docker inspect -f '{{.Config.Env}}' web", tool: 'docker', verb: 'inspect', cls: 'sensitive-read' },
  { line: "docker inspect -f '{{json .}}' web", tool: 'docker', verb: 'inspect', cls: 'sensitive-read' },
  { line: "docker inspect -f '{{range .Config.Env}}{{.}}{{end}}' web", tool: 'docker', verb: 'inspect', cls: 'sensitive-read' },
  { line: "docker inspect -f '{{.State.Status}}' -f '{{.Config.Env}}' web", tool: 'docker', verb: 'inspect', cls: 'sensitive-read' },
  { line: "docker inspect -f '{{.State.Status}} {{index .Config.Labels \"x\"}}' web", tool: 'docker', verb: 'inspect', cls: 'sensitive-read' },
  { line: 'docker stats --no-stream', tool: 'docker', verb: 'stats', cls: 'read' },
]);

table('vault', [
  { line: 'vault kv get kv/deploy', tool: 'vault', verb: 'kv get', cls: 'sensitive-read', scope: { vaultPath: 'kv/deploy' }, canonical: 'vault kv get kv/deploy' },
  { line: 'vault kv get -mount=kv -field=webhook_secret deploy/app', tool: 'vault', verb: 'kv get', cls: 'sensitive-read', scope: { vaultPath: 'kv/deploy/app' }, canonical: 'vault kv get -field=webhook_secret kv/deploy/app' },
  { line: 'vault kv list kv/deploy', tool: 'vault', verb: 'kv list', cls: 'read' },
  { line: 'vault kv metadata get kv/deploy', tool: 'vault', verb: 'kv metadata get', cls: 'read' },
  { line: 'vault kv put kv/deploy pw={{generate:hex32}} user=app', tool: 'vault', verb: 'kv put', cls: 'mutate', canonical: "vault kv put kv/deploy 'pw={{generate:hex32}}' user=app" },
  { line: "vault kv patch -cas=3 kv/deploy 'token={{secret:vault:kv/other#token}}'", tool: 'vault', verb: 'kv patch', cls: 'mutate' },
  { line: 'vault kv delete kv/deploy', tool: 'vault', verb: 'kv delete', cls: 'destructive' },
  { line: 'vault kv destroy -versions=1,2 kv/deploy', tool: 'vault', verb: 'kv destroy', cls: 'destructive' },
  { line: 'vault kv metadata delete kv/deploy', tool: 'vault', verb: 'kv metadata delete', cls: 'destructive' },
]);

table('systemctl / journalctl', [
  { line: 'systemctl status nginx --no-pager', tool: 'systemctl', verb: 'status', cls: 'read', scope: {} },
  { line: 'systemctl is-active nginx', tool: 'systemctl', verb: 'is-active', cls: 'read' },
  { line: "systemctl list-units 'nginx*'", tool: 'systemctl', verb: 'list-units', cls: 'read' },
  { line: 'systemctl restart nginx', tool: 'systemctl', verb: 'restart', cls: 'mutate' },
  { line: 'systemctl enable --now nginx', tool: 'systemctl', verb: 'enable', cls: 'mutate' },
  { line: 'systemctl daemon-reload', tool: 'systemctl', verb: 'daemon-reload', cls: 'mutate' },
  { line: 'systemctl stop nginx', tool: 'systemctl', verb: 'stop', cls: 'destructive' },
  { line: 'systemctl mask nginx', tool: 'systemctl', verb: 'mask', cls: 'destructive' },
  { line: 'journalctl -u nginx -n 50 --no-pager', tool: 'journalctl', verb: 'read', cls: 'read' },
  // json and verbose print every field, each process's command line included.
  { line: "journalctl -u nginx --since '1 hour ago' -o json -p err -b -1", tool: 'journalctl', verb: 'read', cls: 'sensitive-read' },
  { line: 'journalctl -u nginx -o verbose', tool: 'journalctl', verb: 'read', cls: 'sensitive-read' },
  { line: 'journalctl -u nginx -o short-iso -n 50', tool: 'journalctl', verb: 'read', cls: 'read' },
  { line: 'journalctl -u nginx -o json -o cat', tool: 'journalctl', verb: 'read', cls: 'read' },
  // show prints Environment=, cat the unit files that set it; one -p list of safe properties is a plain read.
  { line: 'systemctl show nginx', tool: 'systemctl', verb: 'show', cls: 'sensitive-read' },
  { line: 'systemctl show nginx -p ActiveState,SubState,NRestarts', tool: 'systemctl', verb: 'show', cls: 'read' },
  { line: 'systemctl show nginx --property=MainPID --value', tool: 'systemctl', verb: 'show', cls: 'read' },
  { line: 'systemctl show nginx -p ActiveState,Environment', tool: 'systemctl', verb: 'show', cls: 'sensitive-read' },
  { line: 'systemctl show nginx -p ActiveState -p Environment', tool: 'systemctl', verb: 'show', cls: 'sensitive-read' },
  { line: 'systemctl show nginx -ap ActiveState', tool: 'systemctl', verb: 'show', cls: 'read' },
  { line: 'systemctl show nginx -p ActiveState -ap Environment', tool: 'systemctl', verb: 'show', cls: 'sensitive-read' },
  { line: 'systemctl cat nginx', tool: 'systemctl', verb: 'cat', cls: 'sensitive-read' },
]);

table('ssh', [
  { line: 'ssh edge-1 systemctl is-active nginx', tool: 'ssh', verb: 'systemctl is-active', cls: 'read', scope: { host: 'edge-1' }, canonical: 'ssh edge-1 systemctl is-active nginx' },
  { line: "ssh ops@edge-1 'systemctl restart nginx'", tool: 'ssh', verb: 'systemctl restart', cls: 'mutate', canonical: 'ssh edge-1 systemctl restart nginx' },
  { line: 'ssh edge-1 cat /etc/hostname', tool: 'ssh', verb: 'files cat', cls: 'read', scope: { host: 'edge-1', paths: ['/etc/hostname'] } },
  { line: "ssh edge-1 'journalctl -u x --since \"1 hour ago\"' | tail -n 5", tool: 'ssh', verb: 'journalctl read', cls: 'read', canonical: "ssh edge-1 'journalctl -u x --since '\\''1 hour ago'\\''' | tail -n 5" },
  { line: "ssh edge-1 'journalctl -u x | grep -i error' | wc -l", tool: 'ssh', verb: 'journalctl read', cls: 'read', canonical: 'ssh edge-1 journalctl -u x | grep -i error | wc -l' },
]);

table('http', [
  { line: 'curl -fsS http://127.0.0.1:8080/health', tool: 'http', verb: 'GET', cls: 'read', scope: { url: 'http://127.0.0.1:8080/health', method: 'GET' } },
  { line: "curl -s -o /dev/null -w '%{http_code}' https://example.org/", tool: 'http', verb: 'GET', cls: 'read' },
  { line: 'curl -I https://example.org/', tool: 'http', verb: 'HEAD', cls: 'read' },
  { line: 'curl -fsSL --max-time 5 https://example.org/', tool: 'http', verb: 'GET', cls: 'read' },
  { line: "curl -X POST -H 'Content-Type: application/json' -d '{}' http://127.0.0.1/x", tool: 'http', verb: 'POST', cls: 'mutate' },
  { line: 'curl -d a=1 http://127.0.0.1/x', tool: 'http', verb: 'POST', cls: 'mutate' },
  { line: 'curl -X delete http://127.0.0.1/x/1', tool: 'http', verb: 'DELETE', cls: 'mutate' },
]);

table('files', [
  { line: 'cat /srv/app/config.ini', tool: 'files', verb: 'cat', cls: 'read', scope: { paths: ['/srv/app/config.ini'] } },
  { line: 'ls -la /srv//app/./logs', tool: 'files', verb: 'ls', cls: 'read', scope: { paths: ['/srv/app/logs'] }, canonical: 'ls -la /srv/app/logs' },
  { line: "stat -c '%a %U' /srv/app", tool: 'files', verb: 'stat', cls: 'read' },
  { line: 'test -f /srv/app/ready', tool: 'files', verb: 'test', cls: 'read' },
  { line: 'cp -p /srv/a.conf /srv/a.conf.bak', tool: 'files', verb: 'cp', cls: 'mutate', scope: { paths: ['/srv/a.conf', '/srv/a.conf.bak'] } },
  { line: 'mkdir -p -m 0755 /srv/new', tool: 'files', verb: 'mkdir', cls: 'mutate' },
  { line: 'chmod 0640 /srv/a.conf', tool: 'files', verb: 'chmod', cls: 'mutate', scope: { paths: ['/srv/a.conf'] } },
  { line: 'rm -rf /srv/tmp/cache', tool: 'files', verb: 'rm', cls: 'destructive' },
]);

describe('pipelines', () => {
  it('attaches vetted filters in order and puts them in the canonical line', () => {
    const call = parse("kubectl get pods -o json | jq -r '.items[].metadata.name' | sort -u | head -5");
    expect(call.pipeline).toEqual([
      { filter: 'jq', args: ['-r', '.items[].metadata.name'] },
      { filter: 'sort', args: ['-u'] },
      { filter: 'head', args: ['-5'] },
    ]);
    expect(call.canonical).toBe("kubectl --context minikube -n default get pods --output=json | jq -r '.items[].metadata.name' | sort -u | head -5");
  });
  it('accepts grep with several -e patterns and tail +N', () => {
    expect(parse('cat /srv/a | grep -i -e x -e y | tail -n +2').pipeline.map((f) => f.filter)).toEqual(['grep', 'tail']);
  });
});

describe('variables', () => {
  it('expands $NAME from the task variables into the call and its canonical form', () => {
    const call = parse('kubectl -n $NS get sealedsecrets', { NS: 'midwestmtg' });
    expect(call.scope.namespace).toBe('midwestmtg');
    expect(call.canonical).toBe('kubectl --context minikube -n midwestmtg get sealedsecrets');
  });
});

describe('context without env', () => {
  it('leaves the context unset when neither the call nor the config names one', () => {
    const r = parseCommandLine('kubectl get pods');
    expect(r.ok && r.value.scope).toEqual({ namespace: 'default' });
    expect(r.ok && r.value.canonical).toBe('kubectl -n default get pods');
  });
});

describe('executor helpers', () => {
  it('parseCurlArgs reads an http call back into a request', () => {
    const call = parse("curl -fsS -X PUT -H 'A: b' --data-raw @x --max-time 3 -L http://127.0.0.1/p");
    const r = parseCurlArgs(call.args);
    expect(r.ok && r.value).toMatchObject({ method: 'PUT', url: 'http://127.0.0.1/p', headers: [['A', 'b']], data: '@x', fail: true, silent: true, showError: true, maxTimeSeconds: 3, followRedirects: true });
  });
  it('parseVaultArgs reads a vault call back into a request', () => {
    const call = parse('vault kv put -mount=kv deploy/app pw={{generate:hex16}}');
    const r = parseVaultArgs(call.args);
    expect(r.ok && r.value).toMatchObject({ op: 'kv put', mount: 'kv', path: 'deploy/app', vaultPath: 'kv/deploy/app', pairs: [['pw', '{{generate:hex16}}']] });
  });
  it('makeFileWriteCall binds the canonical line to the content digest', () => {
    const a = makeFileWriteCall('/etc/systemd/system/x.service', '[Unit]\n');
    const b = makeFileWriteCall('/etc/systemd/system/x.service', '[Unit]\nX=1\n');
    expect(a.ok && a.value).toMatchObject({ tool: 'files', verb: 'write', class: 'mutate', scope: { paths: ['/etc/systemd/system/x.service'] }, content: '[Unit]\n' });
    expect(a.ok && a.value.canonical).toMatch(/^write \/etc\/systemd\/system\/x\.service sha256=[0-9a-f]{64}$/);
    expect(a.ok && b.ok && a.value.canonical !== b.value.canonical).toBe(true);
    expect(makeFileWriteCall('/srv/../etc/passwd', 'x')).toMatchObject({ ok: false, code: 'refused' });
  });
});
