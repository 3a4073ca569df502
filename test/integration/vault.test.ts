// runVaultCall against the KV v2 double: values only ever leave as handles.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runVaultCall, parseVaultArgs, vaultPathInScope } from '../../tools/vault-client.js';
import { createSecretBroker } from '../../tools/secret-broker.js';
import { parseCommandLine } from '../../tools/parse-command.js';
import { runToolCall } from '../../tools/run-call.js';
import type { ExecOutcome, ToolCall, ToolContext } from '../../tools/types.js';
import { startVaultDouble } from '../harness/vault-double.js';
import type { VaultDouble } from '../harness/vault-double.js';

const CANARY = 'CANARY-vault-value-7d1e2f3a4b5c';

let vault: VaultDouble;
beforeAll(async () => {
  vault = await startVaultDouble();
});
afterAll(async () => {
  await vault.close();
});

function call(verb: string, args: string[]): ToolCall {
  const path = args.find((a) => !a.startsWith('-') && !a.includes('='));
  return {
    tool: 'vault',
    verb,
    args,
    class: 'read',
    scope: path ? { vaultPath: path } : {},
    canonical: ['vault', ...verb.split(' '), ...args].join(' '),
    pipeline: [],
  };
}

function ctx(over: Partial<ToolContext> = {}): ToolContext {
  return {
    env: { vault: { address: vault.address, token: vault.token, paths: ['kv/deploy', 'kv/app'] } },
    secrets: createSecretBroker(),
    timeoutMs: 5_000,
    outputCap: 64 * 1024,
    ...over,
  };
}

function allText(...outs: ExecOutcome[]): string {
  return outs.map((o) => `${o.stdout}\n${o.stderr}\n${JSON.stringify(o)}`).join('\n');
}

describe('vault kv get', () => {
  it('returns a handle, never the value', async () => {
    vault.seed('kv', 'deploy', { db_password: CANARY, user: 'deployer' });
    const c = ctx();
    const table = await runVaultCall(call('kv get', ['kv/deploy']), c);
    expect(table.exitCode).toBe(0);
    expect(table.stdout).toMatch(/^=+ Secret Path =+\nkv\/data\/deploy\n\n=+ Metadata =+\nKey +Value\n/);
    expect(table.stdout).toMatch(/db_password\s+\{\{secret:vault:kv\/deploy#db_password\}\}/);
    expect(table.stdout).toMatch(/version\s+\d+/);
    const field = await runVaultCall(call('kv get', ['-field=db_password', 'kv/deploy']), c);
    expect(field).toMatchObject({ exitCode: 0, stdout: '{{secret:vault:kv/deploy#db_password}}' });
    const json = await runVaultCall(call('kv get', ['-format=json', 'kv/deploy']), c);
    const parsed = JSON.parse(json.stdout) as { data: { data: Record<string, string>; metadata: { version: number } } };
    expect(parsed.data.data.db_password).toBe('{{secret:vault:kv/deploy#db_password}}');
    expect(parsed.data.metadata.version).toBeGreaterThanOrEqual(1);
    expect(allText(table, field, json)).not.toContain(CANARY);
    // The handle works for later calls in the same run.
    expect(c.secrets.reveal('{{secret:vault:kv/deploy#db_password}}')).toBe(CANARY);
  });

  it('a missing secret is exit 2 "No value found"; a missing field is exit 1', async () => {
    const none = await runVaultCall(call('kv get', ['kv/deploy/none']), ctx());
    expect(none).toMatchObject({ exitCode: 2, stderr: 'No value found at kv/data/deploy/none\n' });
    vault.seed('kv', 'deploy/f', { a: 'b' });
    const field = await runVaultCall(call('kv get', ['-field=zzz', 'kv/deploy/f']), ctx());
    expect(field.exitCode).toBe(1);
    expect(field.stderr).toContain('Field "zzz" not present');
  });

  it('-mount= splits mount and path like the CLI', () => {
    const p = parseVaultArgs('kv get', ['-mount=kv', 'deploy/x']);
    expect(p.ok && p.value).toMatchObject({ mount: 'kv', path: 'deploy/x' });
    const q = parseVaultArgs('kv get', ['kv', 'get', '-field', 'a', 'kv/deploy']);
    expect(q.ok && q.value).toMatchObject({ mount: 'kv', path: 'deploy', flags: { field: 'a' } });
  });
});

describe('vault kv patch / put with generated values', () => {
  it('patch with {{generate:hex32}} creates version 2 and the value appears in no output', async () => {
    vault.seed('kv', 'app', { webhook_secret: 'old-value-1234', keep: 'kept' });
    const c = ctx();
    const patch = await runVaultCall(call('kv patch', ['kv/app', 'webhook_secret={{generate:hex32}}']), c);
    expect(patch.exitCode).toBe(0);
    expect(patch.stdout).toMatch(/version\s+2\n/);
    const stored = vault.current('kv', 'app');
    expect(stored?.version).toBe(2);
    const generated = stored?.data.webhook_secret as string;
    expect(generated).toMatch(/^[0-9a-f]{64}$/);
    expect(stored?.data.keep).toBe('kept');
    // The PATCH was a JSON merge patch with the token from the env.
    const req = vault.requests.find((r) => r.method === 'PATCH');
    expect(req?.headers['content-type']).toBe('application/merge-patch+json');
    expect(req?.headers['x-vault-token']).toBe(vault.token);

    const get = await runVaultCall(call('kv get', ['-format=json', 'kv/app']), c);
    const meta = await runVaultCall(call('kv metadata get', ['kv/app']), c);
    expect(meta.stdout).toMatch(/current_version\s+[2-9]/);
    expect(meta.stdout).toMatch(/=+ Version 1 =+\nKey +Value\n--- +-----\ncreated_time/);
    for (const out of [patch, get, meta]) {
      expect(allText(out)).not.toContain(generated);
      expect(allText(out)).not.toContain(Buffer.from(generated).toString('base64'));
    }
    // Anything that echoes the generated value is scrubbed to the vault handle.
    expect(c.secrets.scrub(`x ${generated}`)).toBe('x {{secret:vault:kv/app#webhook_secret}}');
  });

  it('put sends {data:{...}} revealed from a handle read earlier', async () => {
    vault.seed('kv', 'deploy/src', { token: CANARY });
    const c = ctx();
    await runVaultCall(call('kv get', ['kv/deploy/src']), c);
    const put = await runVaultCall(call('kv put', ['kv/deploy/copy', 'token={{secret:vault:kv/deploy/src#token}}', 'plain=x']), c);
    expect(put.exitCode).toBe(0);
    expect(put.stdout).toMatch(/version\s+1/);
    expect(vault.current('kv', 'deploy/copy')?.data).toEqual({ token: CANARY, plain: 'x' });
    expect(allText(put)).not.toContain(CANARY);
  });

  it('an unknown handle refuses the write and sends nothing', async () => {
    const n = vault.requests.length;
    const r = await runVaultCall(call('kv put', ['kv/deploy/y', 'a={{secret:vault:kv/never#read}}']), ctx());
    expect(r.exitCode).toBeNull();
    expect(r.refused?.code).toBe('unknown-secret-handle');
    expect(vault.requests.length).toBe(n);
  });

  it('patch of a missing secret is exit 2', async () => {
    const r = await runVaultCall(call('kv patch', ['kv/deploy/missing', 'a=b']), ctx());
    expect(r.exitCode).toBe(2);
  });
});

describe('list, delete, destroy, metadata delete', () => {
  it('walks the lifecycle', async () => {
    vault.seed('kv', 'deploy/life/a', { v: 'one-1111' });
    vault.seed('kv', 'deploy/life/a', { v: 'two-2222' });
    vault.seed('kv', 'deploy/life/sub/b', { v: 'x' });
    const c = ctx();
    const list = await runVaultCall(call('kv list', ['kv/deploy/life']), c);
    expect(list).toMatchObject({ exitCode: 0, stdout: 'Keys\n----\na\nsub/\n' });

    const del = await runVaultCall(call('kv delete', ['kv/deploy/life/a']), c);
    expect(del.stdout).toBe('Success! Data deleted (if it existed) at: kv/data/deploy/life/a\n');
    const gone = await runVaultCall(call('kv get', ['kv/deploy/life/a']), c);
    expect(gone.exitCode).toBe(2);
    const v1 = await runVaultCall(call('kv get', ['-version=1', '-field=v', 'kv/deploy/life/a']), c);
    expect(v1.stdout).toBe('{{secret:vault:kv/deploy/life/a#v@v1}}');

    const destroy = await runVaultCall(call('kv destroy', ['-versions=1', 'kv/deploy/life/a']), c);
    expect(destroy.stdout).toBe('Success! Data written to: kv/destroy/deploy/life/a\n');
    const meta = await runVaultCall(call('kv metadata get', ['kv/deploy/life/a']), c);
    expect(meta.stdout).toMatch(/=+ Version 1 =+\n(?:.*\n)*?destroyed\s+true/);

    const mdel = await runVaultCall(call('kv metadata delete', ['kv/deploy/life/a']), c);
    expect(mdel.exitCode).toBe(0);
    expect(vault.current('kv', 'deploy/life/a')).toBeUndefined();
  });
});

describe('address, token and scope come from the env only', () => {
  it('refuses -address / -token flags in the call', async () => {
    const n = vault.requests.length;
    for (const flag of ['-address=http://evil.test:8200', '-token=root', '--namespace=x']) {
      const r = await runVaultCall(call('kv get', [flag, 'kv/deploy']), ctx());
      expect(r.refused?.code).toBe('vault-flag-refused');
    }
    expect(vault.requests.length).toBe(n);
  });

  it('uses the env token: a wrong one gets the 403 error, exit 2', async () => {
    const c = ctx({ env: { vault: { address: vault.address, token: 'wrong', paths: ['kv/deploy'] } } });
    const r = await runVaultCall(call('kv get', ['kv/deploy']), c);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('Code: 403. Errors:\n\n* permission denied');
    expect(vault.requests.at(-1)?.headers['x-vault-token']).toBe('wrong');
  });

  it('refuses without a configured address/token, and outside the configured paths', async () => {
    const none = await runVaultCall(call('kv get', ['kv/deploy']), ctx({ env: { vault: { paths: ['kv/deploy'] } } }));
    expect(none.refused?.code).toBe('vault-not-configured');
    const out = await runVaultCall(call('kv get', ['kv/other']), ctx());
    expect(out.refused?.code).toBe('vault-path-out-of-scope');
    const sneaky = await runVaultCall(call('kv get', ['kv/deployment']), ctx());
    expect(sneaky.refused?.code).toBe('vault-path-out-of-scope');
    expect(vaultPathInScope('kv/deploy/x', ['kv/deploy'])).toBe(true);
  });

  it('a refused connection is exit 2 with the error', async () => {
    const c = ctx({ env: { vault: { address: 'http://127.0.0.1:1', token: 't', paths: ['kv/deploy'] } } });
    const r = await runVaultCall(call('kv get', ['kv/deploy']), c);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('ECONNREFUSED');
  });
});

describe('through parseCommandLine → runToolCall', () => {
  const line = async (text: string, c: ToolContext) => {
    const parsed = parseCommandLine(text, { env: c.env });
    if (!parsed.ok) throw new Error(`${text}: ${parsed.message}`);
    expect(parsed.value.tool).toBe('vault');
    return runToolCall(parsed.value, c);
  };

  it('get -field, patch with a generated value, metadata get', async () => {
    vault.seed('kv', 'deploy/gate', { api_key: CANARY });
    const c = ctx();
    const got = await line('vault kv get -field=api_key kv/deploy/gate', c);
    expect(got).toMatchObject({ exitCode: 0, stdout: '{{secret:vault:kv/deploy/gate#api_key}}' });
    const patch = await line('vault kv patch kv/deploy/gate api_key={{generate:alnum24}}', c);
    expect(patch.exitCode).toBe(0);
    const now = vault.current('kv', 'deploy/gate');
    expect(now?.version).toBe(2);
    expect(now?.data.api_key).toMatch(/^[A-Za-z0-9]{24}$/);
    const meta = await line('vault kv metadata get kv/deploy/gate', c);
    expect(meta.stdout).toMatch(/current_version\s+[2-9]/);
    const everything = allText(got, patch, meta);
    expect(everything).not.toContain(CANARY);
    expect(everything).not.toContain(now?.data.api_key as string);
  });
});
