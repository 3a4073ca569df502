// The router against the shipped specialist profiles and a real config: explicit agent, keyword
// match, scope cover (keywords never beat scope), default fallback, unknown agent, no specialist.
import { describe, it, expect } from 'vitest';
import { join } from 'node:path';
import { parseConfigText, type Config } from '../../mcp-server/core/config.js';
import { loadSpecialists, type Specialist } from '../../mcp-server/core/specialists.js';
import { parseTask } from '../../mcp-server/core/task-parse.js';
import type { Task } from '../../mcp-server/core/task-types.js';
import { keywordScore, routeTask, taskCommands } from '../runtime/router.js';

const ROOT = join(import.meta.dirname, '..', '..');

function specialists(): Specialist[] {
  const r = loadSpecialists(join(ROOT, 'agents', 'specialists'));
  if (!r.ok) throw new Error(r.message);
  return r.value;
}

function config(): Config {
  const text = [
    'mode: standard',
    'kubernetes:',
    '  default_context: minikube',
    '  contexts:',
    '    minikube: { namespaces: [shop, default] }',
    'compose:',
    '  projects:',
    '    shop: { file: /srv/shop/docker-compose.yml }',
    'vault:',
    '  paths: [kv/deploy]',
    'files:',
    '  roots: [/srv]',
    'http:',
    '  allow: [127.0.0.1]',
  ].join('\n');
  const r = parseConfigText(text, { file: 'opscrew.config.yaml', workspaceDir: '/tmp/ws', env: {} });
  if (!r.ok) throw new Error(r.message);
  return r.value;
}

function task(fm: string, body: string): Task {
  const r = parseTask(`---\n${fm}\n---\n${body}`, 'tasks/backlog/t.md');
  if (!r.ok) throw new Error(JSON.stringify(r.issues));
  return r.task;
}

const fence = (lines: string[]): string => ['```sh', ...lines, '```'].join('\n');

function body(title: string, steps: string[], criterion = 'curl -fsS http://127.0.0.1:8080/health', context = ''): string {
  return [`# ${title}`, '', '## Context', context, '', '## Steps', fence(steps), '', '## Acceptance Criteria', '- [ ] healthy', '  ```sh', `  ${criterion}`, '  ```', ''].join('\n');
}

const S = specialists();
const C = config();

describe('routeTask', () => {
  it('takes an explicit agent as written', () => {
    const r = routeTask(task('id: TASK-001\nagent: secrets-specialist', body('Rotate', ['kubectl -n shop get pods'])), S, C);
    expect(r.ok).toBe(true);
    if (r.ok) {
      expect(r.specialist.name).toBe('secrets-specialist');
      expect(r.via).toBe('explicit');
    }
  });

  it('refuses an unknown agent and lists the known ones', () => {
    const r = routeTask(task('id: TASK-002\nagent: wizard', body('Magic', ['kubectl -n shop get pods'])), S, C);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.code).toBe('unknown-agent');
      expect(r.message).toContain('wizard');
      for (const s of S) expect(r.message).toContain(s.name);
    }
  });

  it('routes by tags and keywords when that specialist can run every command', () => {
    const t = task('id: TASK-003\ntags: [kubernetes]', body('Scale the api deployment', ['kubectl -n shop scale deploy/api --replicas=3']));
    const r = routeTask(t, S, C);
    expect(r.ok && r.specialist.name).toBe('k8s-specialist');
    expect(r.ok && r.via).toBe('keyword');
    const k8s = S.find((s) => s.name === 'k8s-specialist')!;
    const devops = S.find((s) => s.name === 'devops-specialist')!;
    expect(keywordScore(t, k8s)).toBeGreaterThan(keywordScore(t, devops));
  });

  it('passes over a keyword match that cannot run the commands for one that can', () => {
    // "secret" and "rotate" point at secrets-specialist, but the step is a compose restart plus a file copy.
    const t = task(
      'id: TASK-004\ntags: [secrets]',
      body('Rotate the webhook secret file', ['cp /srv/shop/new.env /srv/shop/.env', 'docker compose -p shop restart web']),
    );
    const r = routeTask(t, S, C);
    expect(r.ok).toBe(true);
    if (r.ok) {
      expect(r.specialist.name).toBe('devops-specialist');
      expect(r.reason).toContain('secrets-specialist');
    }
  });

  it('routes by scope cover when no keyword matches and only one specialist can run it', () => {
    const t = task('id: TASK-005', body('Bump it', ['vault kv metadata get kv/deploy/app']));
    const r = routeTask(t, S, C);
    expect(r.ok && r.specialist.name).toBe('secrets-specialist');
    expect(r.ok && r.via).toBe('scope-cover');
  });

  it('falls back to devops-specialist when nothing matches and it can run the task', () => {
    const t = task('id: TASK-006', body('Check it', ['curl -fsS http://127.0.0.1:8080/ready']));
    const r = routeTask(t, S, C);
    expect(r.ok && r.specialist.name).toBe('devops-specialist');
    expect(r.ok && r.via).toBe('fallback');
  });

  it('blocks a task no specialist can run and names the commands outside every scope', () => {
    const t = task('id: TASK-007\ntags: [kubernetes]', body('Wipe', ['kubectl -n kube-system get pods', 'rm -rf /etc/nginx']));
    const r = routeTask(t, S, C);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.code).toBe('no-specialist');
      expect(r.message).toContain('kubectl -n kube-system get pods');
      expect(r.message).toContain('rm -rf /etc/nginx');
      expect(r.message).not.toContain('curl');
    }
  });

  it('blocks a task whose commands need two specialists, saying who lacks what', () => {
    const t = task('id: TASK-008', body('Mixed', ['vault kv metadata get kv/deploy/app', 'kubectl -n shop scale deploy/api --replicas=2']));
    const r = routeTask(t, S, C);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.code).toBe('no-specialist');
      expect(r.message).toMatch(/no single specialist/);
      expect(r.message).toContain('k8s-specialist cannot run `vault kv metadata get kv/deploy/app`');
    }
  });

  it('collects commands of every section with the variables set before them', () => {
    const t = task(
      'id: TASK-009',
      [
        '# Vars',
        '## Preflight',
        fence(['curl -fsS http://127.0.0.1:8080/health']),
        '## Steps',
        fence(['export NS=shop', 'kubectl -n $NS get pods']),
        '## Acceptance Criteria',
        '- [ ] ok',
        '  ```sh',
        '  kubectl -n $NS get deploy',
        '  ```',
        '## Rollback',
        fence(['kubectl -n $NS rollout undo deploy/api']),
      ].join('\n'),
    );
    const cmds = taskCommands(t);
    expect(cmds.map((c) => c.text)).toEqual([
      'curl -fsS http://127.0.0.1:8080/health',
      'kubectl -n $NS get pods',
      'kubectl -n $NS get deploy',
      'kubectl -n $NS rollout undo deploy/api',
    ]);
    expect(cmds[0]?.vars).toEqual({});
    expect(cmds[3]?.vars).toEqual({ NS: 'shop' });
    const r = routeTask(t, S, C);
    expect(r.ok && r.specialist.name).toBe('k8s-specialist');
  });
});
