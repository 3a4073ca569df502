// Pipeline filters: the JS grep/head/tail/wc/sort/uniq are checked against the real GNU
// tools on the same input (the real binaries are the oracle), jq runs through the real jq.
import { describe, expect, it } from 'vitest';
import { baseEnv, runProcess } from '../exec.js';
import { posixToJs, runFilter, runFilters, vetJqArgs, type FilterRunOptions } from '../filters-run.js';
import type { FilterCall, FilterName, SpawnRequest, SpawnResult } from '../types.js';
import { requireBinaries } from '../../test/harness/require.js';

const opts: FilterRunOptions = { spawn: runProcess, env: baseEnv({ LC_ALL: 'C' }), timeoutMs: 10_000, outputCap: 1024 * 1024 };

const INPUT = [
  'nginx-7d9f   1/1   Running   0   3d',
  'api-5c8b     0/1   CrashLoopBackOff   12   3d',
  'worker-1     1/1   Running   2   10h',
  'Api-legacy   1/1   Completed   0   40d',
  'worker-1     1/1   Running   2   10h',
  '',
  'db-0         1/1   Running   0   99d',
  'a.b [x] (y) foo|bar + ?',
].join('\n') + '\n';

async function real(filter: string, args: string[], input: string): Promise<{ exitCode: number | null; stdout: string }> {
  const r = await runProcess({ file: filter, args, env: baseEnv({ LC_ALL: 'C' }), input, timeoutMs: 10_000, outputCap: 1024 * 1024 });
  return { exitCode: r.exitCode, stdout: r.stdout };
}

const CASES: Array<[FilterName, string[]]> = [
  ['grep', ['Running']],
  ['grep', ['-v', 'Running']],
  ['grep', ['-i', 'api']],
  ['grep', ['-c', 'Running']],
  ['grep', ['-n', 'worker']],
  ['grep', ['-E', 'Crash|Completed']],
  ['grep', ['Crash\\|Completed']],
  ['grep', ['-F', 'a.b [x]']],
  ['grep', ['a.b [x] (y) foo|bar + ?']],
  ['grep', ['-w', 'worker']],
  ['grep', ['-x', 'worker-1     1/1   Running   2   10h']],
  ['grep', ['-o', '[0-9]\\+d']],
  ['grep', ['-oE', '[[:digit:]]+/[[:digit:]]']],
  ['grep', ['-e', 'nginx', '-e', 'db-']],
  ['grep', ['-m', '2', 'Running']],
  ['grep', ['-iv', 'API']],
  ['grep', ['nomatch-anywhere']],
  ['grep', ['^$']],
  ['head', []],
  ['head', ['-n', '3']],
  ['head', ['-2']],
  ['head', ['-n', '-3']],
  ['head', ['-c', '20']],
  ['tail', ['-n', '2']],
  ['tail', ['-3']],
  ['tail', ['-n', '+4']],
  ['tail', ['-c', '9']],
  ['wc', ['-l']],
  ['wc', ['-w']],
  ['wc', ['-c']],
  ['wc', []],
  ['wc', ['-lw']],
  ['sort', []],
  ['sort', ['-r']],
  ['sort', ['-u']],
  ['sort', ['-k', '4', '-n']],
  ['sort', ['-k', '1,1']],
  ['sort', ['-t', '-', '-k', '2']],
  ['sort', ['-f']],
  ['sort', ['-k', '2,2n']],
  ['sort', ['-k', '4nr', '-k', '1,1']],
  ['sort', ['-k', '1.2,1.4']],
  ['sort', ['--reverse', '--key=5']],
  ['sort', ['-rn']],
  ['sort', ['-V']],
  ['grep', ['--ignore-case', '--count', 'RUNNING']],
  ['grep', ['--regexp=db', '--line-number']],
  ['grep', ['--max-count', '1', 'worker']],
  ['head', ['--lines=2']],
  ['tail', ['--lines', '+7']],
  ['wc', ['--lines']],
  ['uniq', ['--count']],
  ['uniq', []],
  ['uniq', ['-c']],
  ['uniq', ['-d']],
  ['uniq', ['-u']],
];

describe('JS filters agree with the real tools', () => {
  it.each(CASES)('%s %j', async (filter, args) => {
    const expected = await real(filter, args, INPUT);
    const got = await runFilter({ filter, args }, INPUT, opts);
    expect(got.refused).toBeUndefined();
    expect(got.stdout).toBe(expected.stdout);
    expect(got.exitCode).toBe(expected.exitCode);
  });

  it('sort -h and -M order like the real sort', async () => {
    for (const [args, input] of [
      [['-h'], '10K\n2M\n512\n1G\n3K\n'],
      [['-M'], 'Mar\nJan\nDec\nfeb\n'],
      [['-hr'], '1.5G\n900M\n20K\n'],
    ] as const) {
      const got = await runFilter({ filter: 'sort', args: [...args] }, input, opts);
      expect(got.stdout).toBe((await real('sort', [...args], input)).stdout);
    }
  });

  it('uniq counts only adjacent duplicates, as the real one does', async () => {
    const input = 'a\na\nb\na\n';
    const got = await runFilter({ filter: 'uniq', args: ['-c'] }, input, opts);
    expect(got.stdout).toBe((await real('uniq', ['-c'], input)).stdout);
    expect(got.stdout.split('\n').filter(Boolean)).toHaveLength(3);
  });

  it('head/tail keep a missing final newline like the real ones', async () => {
    const input = 'one\ntwo';
    for (const [f, a] of [['head', ['-n', '5']], ['tail', ['-n', '1']], ['head', ['-n', '1']]] as const) {
      const got = await runFilter({ filter: f, args: [...a] }, input, opts);
      expect(got.stdout).toBe((await real(f, [...a], input)).stdout);
    }
  });
});

describe('filters refuse what they do not run', () => {
  const refused: Array<[FilterName, string[]]> = [
    ['grep', ['root', '/etc/passwd']],
    ['grep', ['-r', 'x']],
    ['grep', ['--include=*', 'x']],
    ['head', ['/etc/shadow']],
    ['sort', ['-o', '/tmp/out']],
    ['wc', ['-l', '/etc/passwd']],
    ['uniq', ['in', 'out']],
    ['jq', ['.', '/etc/passwd']],
    ['jq', ['--rawfile', 'x', '/etc/shadow', '.']],
    ['jq', ['-f', '/tmp/prog.jq']],
    ['jq', ['-L', '/tmp', '.']],
    ['jq', ['import "x" as x; .']],
  ];
  it.each(refused)('%s %j', async (filter, args) => {
    const spawned: SpawnRequest[] = [];
    const spy = async (req: SpawnRequest): Promise<SpawnResult> => {
      spawned.push(req);
      return runProcess(req);
    };
    const r = await runFilter({ filter, args }, 'x\n', { ...opts, spawn: spy });
    expect(r.refused?.code).toBe('filter-args');
    expect(spawned).toHaveLength(0);
  });

  it('vetJqArgs accepts output flags and --arg', () => {
    expect(vetJqArgs(['-r', '.items[].metadata.name'])).toBeNull();
    expect(vetJqArgs(['-rc', '--arg', 'n', 'web', '.[] | select(.name == $n)'])).toBeNull();
    expect(vetJqArgs([])).toMatch(/needs a filter/);
  });

  it('translates POSIX brackets and classes', () => {
    expect(new RegExp(posixToJs('[[:digit:]]\\{2\\}', false)).test('a12')).toBe(true);
    expect(new RegExp(posixToJs('[]x]', true)).test(']')).toBe(true);
  });
});

const jqReq = requireBinaries('jq:jq', 'grep:grep', 'sort:coreutils');

describe.skipIf(jqReq.skip)(`jq through the real binary ${jqReq.reason}`, () => {
  it('extracts fields with -r', async () => {
    const json = JSON.stringify({ items: [{ metadata: { name: 'web' } }, { metadata: { name: 'db' } }] });
    const r = await runFilter({ filter: 'jq', args: ['-r', '.items[].metadata.name'] }, json, opts);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe('web\ndb\n');
  });

  it('reports a jq error with its exit code', async () => {
    const r = await runFilter({ filter: 'jq', args: ['.a'] }, 'not json', opts);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/parse error/i);
  });

  it('sees none of our environment', async () => {
    process.env.OPSCREW_CANARY_JQ = 'canary-value';
    try {
      const r = await runFilter({ filter: 'jq', args: ['-n', '-r', 'env | keys | join(",")'] }, '', opts);
      expect(r.stdout.trim().split(',').sort()).toEqual(Object.keys(opts.env).sort());
    } finally {
      delete process.env.OPSCREW_CANARY_JQ;
    }
  });
});

describe('runFilters pipelines', () => {
  it('chains stages and reports pipefail-style exit codes', async () => {
    const pipeline: FilterCall[] = [
      { filter: 'grep', args: ['Running'] },
      { filter: 'sort', args: ['-u'] },
      { filter: 'wc', args: ['-l'] },
    ];
    const r = await runFilters(INPUT, pipeline, opts);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe('3\n');
    // The producing command failed: `| wc -l` succeeding must not hide that.
    const failed = await runFilters(INPUT, pipeline, opts, 1);
    expect(failed.exitCode).toBe(1);
    // A grep with no match fails the pipeline even when a later stage succeeds.
    const nomatch = await runFilters(INPUT, [{ filter: 'grep', args: ['zzz'] }, { filter: 'wc', args: ['-l'] }], opts);
    expect(nomatch.stdout).toBe('0\n');
    expect(nomatch.exitCode).toBe(1);
  });

  it('jq then grep then head', async () => {
    const json = JSON.stringify([{ n: 'a1' }, { n: 'b' }, { n: 'a2' }, { n: 'a3' }]);
    const r = await runFilters(json, [
      { filter: 'jq', args: ['-r', '.[].n'] },
      { filter: 'grep', args: ['^a'] },
      { filter: 'head', args: ['-n', '2'] },
    ], opts);
    expect(r.stdout).toBe('a1\na2\n');
  });

  it('caps the final output', async () => {
    const r = await runFilters('x'.repeat(5000) + '\n', [{ filter: 'head', args: ['-n', '1'] }], { ...opts, outputCap: 10 });
    expect(r.stdout).toBe('x'.repeat(10));
    expect(r.truncated).toBe(true);
  });
});
