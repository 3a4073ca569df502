// journalctl: reading the journal only; never following it, never maintaining it.

import type { Word } from '../tokenize.js';
import type { OpClass, ToolCall } from '../types.js';
import { makeCall, named, ok, parseFlags, refused, type FlagTable, type ParseContext, type ParseResult } from './common.js';

/** journalctl has one verb: reading. */
export const JOURNALCTL_CLASSES: Readonly<Record<string, OpClass>> = { read: 'read' };

const OUTPUTS = new Set(['short', 'short-iso', 'short-precise', 'short-monotonic', 'cat', 'json', 'json-pretty', 'verbose', 'with-unit']);
const FULL_OUTPUTS = new Set(['json', 'json-pretty', 'verbose']);

const FLAGS: FlagTable = {
  bool: {
    '--no-pager': 'no-pager', '-r': 'reverse', '--reverse': 'reverse', '-x': 'catalog', '--catalog': 'catalog',
    '-e': 'pager-end', '--pager-end': 'pager-end', '-k': 'dmesg', '--dmesg': 'dmesg', '-q': 'quiet', '--quiet': 'quiet',
    '--utc': 'utc', '--no-hostname': 'no-hostname', '-l': 'full', '--full': 'full', '--no-full': 'no-full', '--system': 'system',
    '-b': 'boot', '--list-boots': 'list-boots',
  },
  value: {
    '-u': 'unit', '--unit': 'unit', '-n': 'lines', '--lines': 'lines', '-S': 'since', '--since': 'since', '-U': 'until', '--until': 'until',
    '-p': 'priority', '--priority': 'priority', '-o': 'output', '--output': 'output', '-g': 'grep', '--grep': 'grep',
    '-t': 'identifier', '--identifier': 'identifier', '--boot': 'boot', '--case-sensitive': 'case-sensitive',
  },
  refused: {
    '-f': 'never ends; use -n N or --since', '--follow': 'never ends; use -n N or --since',
    '-D': 'reads another journal directory', '--directory': 'reads another journal directory', '--file': 'reads another journal file',
    '-M': 'redirects to a container', '--machine': 'redirects to a container', '--root': 'redirects to another root',
    '--image': 'reads a disk image', '-m': 'not vetted', '--merge': 'not vetted', '--user': 'not vetted',
    '--flush': 'maintains the journal', '--rotate': 'maintains the journal', '--sync': 'maintains the journal',
    '--vacuum-size': 'deletes journal files', '--vacuum-time': 'deletes journal files', '--vacuum-files': 'deletes journal files',
    '--setup-keys': 'maintains the journal', '--update-catalog': 'maintains the journal', '--relinquish-var': 'maintains the journal',
    '--smart-relinquish-var': 'maintains the journal',
  },
};

/** `FIELD=value` matches are the only positionals journalctl takes here. */
const MATCH = /^[A-Z_][A-Z0-9_]*=.+$/;
const BOOT_ARG = /^(?:[+-]?\d+|[0-9a-f]{32}(?:[+-]\d+)?)$/;

export function parseJournalctl(words: readonly Word[], _ctx: ParseContext): ParseResult<ToolCall> {
  // `-b` takes an optional argument (`-b -1`, `-b 0`); fold it into `--boot=ARG` first.
  const folded: Word[] = [];
  for (let i = 1; i < words.length; i++) {
    const w = words[i]!;
    const next = words[i + 1];
    if ((w.text === '-b' || w.text === '--boot') && next !== undefined && BOOT_ARG.test(next.text)) {
      folded.push({ ...w, text: `--boot=${next.text}` });
      i++;
    } else if (w.text === '--boot') {
      folded.push({ ...w, text: '-b' });
    } else if (/^-b./.test(w.text) && BOOT_ARG.test(w.text.slice(2))) {
      folded.push({ ...w, text: `--boot=${w.text.slice(2)}` });
    } else folded.push(w);
  }
  const parsed = parseFlags('journalctl', folded, FLAGS);
  if (!parsed.ok) return parsed;
  const { flags, positionals } = parsed.value;
  for (const p of positionals) {
    if (!MATCH.test(p.text)) return refused(`journalctl: ${named(p)} is not a FIELD=value match (use -u UNIT for units)`);
  }
  const out = flags.get('output');
  if (typeof out === 'string' && !OUTPUTS.has(out)) return refused(`journalctl: output \`${out}\` is not vetted; use one of ${[...OUTPUTS].join(', ')}`);
  const lines = flags.get('lines');
  if (typeof lines === 'string' && !/^\+?\d{1,9}$/.test(lines)) return refused(`journalctl: \`--lines ${lines}\` is not a line count`);
  const boot = flags.get('boot');
  if (typeof boot === 'string' && !BOOT_ARG.test(boot)) return refused(`journalctl: \`--boot ${boot}\` is not a boot id or offset`);
  // verbose and json print every field of every entry, each process's command line included
  // (where a --password=… would show): sensitive reads. journalctl keeps the last -o, as does this map.
  const cls: OpClass = typeof out === 'string' && FULL_OUTPUTS.has(out) ? 'sensitive-read' : 'read';
  return ok(makeCall({ tool: 'journalctl', verb: 'read', program: ['journalctl'], args: parsed.value.texts, class: cls, scope: {} }));
}
