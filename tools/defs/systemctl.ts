// systemctl: local, or on a configured host through ssh (the ssh definition sets scope.host).

import type { Word } from '../tokenize.js';
import type { OpClass, ToolCall } from '../types.js';
import { list, makeCall, named, ok, parseFlags, refused, unparseable, type FlagTable, type ParseContext, type ParseResult } from './common.js';

export const SYSTEMCTL_CLASSES: Readonly<Record<string, OpClass>> = {
  status: 'read', 'is-active': 'read', 'is-enabled': 'read', 'is-failed': 'read', show: 'read',
  'list-units': 'read', 'list-unit-files': 'read', 'list-timers': 'read', 'list-sockets': 'read',
  'list-dependencies': 'read', cat: 'read',
  start: 'mutate', restart: 'mutate', reload: 'mutate', 'try-restart': 'mutate', 'reload-or-restart': 'mutate',
  enable: 'mutate', unmask: 'mutate', 'daemon-reload': 'mutate', 'reset-failed': 'mutate',
  stop: 'destructive', disable: 'destructive', mask: 'destructive', kill: 'destructive', isolate: 'destructive',
};

/** Verbs that take no unit. */
const NO_UNITS = new Set(['daemon-reload']);
/** Verbs that need at least one unit. */
const NEED_UNITS = new Set(['start', 'restart', 'reload', 'try-restart', 'reload-or-restart', 'enable', 'unmask', 'stop', 'disable', 'mask', 'kill', 'isolate', 'is-active', 'is-enabled', 'is-failed', 'cat']);

const REFUSED_VERBS: Readonly<Record<string, string>> = {
  edit: 'opens an editor; write the unit with a file block and daemon-reload',
  poweroff: 'powers the machine off', reboot: 'reboots the machine', halt: 'halts the machine',
  'kexec': 'reboots the machine', suspend: 'suspends the machine', hibernate: 'suspends the machine',
  'set-property': 'changes resource controls; not vetted', 'set-environment': 'changes the manager environment; not vetted',
  'import-environment': 'changes the manager environment; not vetted', 'switch-root': 'switches the root file system',
  'link': 'links unit files from arbitrary paths', 'revert': 'drops local unit changes; not vetted', preset: 'not vetted', 'preset-all': 'not vetted',
};

const FLAGS: FlagTable = {
  bool: {
    '--now': 'now', '--no-pager': 'no-pager', '--no-block': 'no-block', '-l': 'full', '--full': 'full', '--plain': 'plain',
    '--no-legend': 'no-legend', '-a': 'all', '--all': 'all', '--value': 'value', '-q': 'quiet', '--quiet': 'quiet',
    '--failed': 'failed', '--no-ask-password': 'no-ask-password', '--system': 'system',
  },
  value: {
    '-t': 'type', '--type': 'type', '--state': 'state', '-p': 'property', '--property': 'property', '-n': 'lines', '--lines': 'lines',
    '-o': 'output', '--output': 'output', '-s': 'signal', '--signal': 'signal', '--kill-whom': 'kill-whom',
  },
  refused: {
    '--user': 'targets a user manager, not the system', '--global': 'changes every user\'s units',
    '-H': 'redirects to another host; use `ssh HOST systemctl ...`', '--host': 'redirects to another host; use `ssh HOST systemctl ...`',
    '-M': 'redirects to a container', '--machine': 'redirects to a container', '--root': 'redirects to another root',
    '--runtime': 'not vetted', '-i': 'not vetted', '--force': 'not vetted', '-f': 'not vetted',
  },
};

const UNIT = /^[A-Za-z0-9@:._\\-]+$/;
const UNIT_PATTERN = /^[A-Za-z0-9@:._\\*?[\]-]+$/;

export function parseSystemctl(words: readonly Word[], _ctx: ParseContext): ParseResult<ToolCall> {
  const parsed = parseFlags('systemctl', words.slice(1), FLAGS);
  if (!parsed.ok) return parsed;
  const [verbWord, ...units] = parsed.value.positionals;
  if (verbWord === undefined) return unparseable(`systemctl: no verb; vetted: ${list(Object.keys(SYSTEMCTL_CLASSES))}`);
  const verb = verbWord.text;
  const why = REFUSED_VERBS[verb];
  if (why !== undefined) return refused(`systemctl: ${named(verbWord)} is refused: it ${why}`);
  const cls = SYSTEMCTL_CLASSES[verb];
  if (cls === undefined) return unparseable(`systemctl: unknown or unvetted verb ${named(verbWord)}; vetted: ${list(Object.keys(SYSTEMCTL_CLASSES))}`);
  if (NO_UNITS.has(verb) && units.length > 0) return refused(`systemctl ${verb}: unexpected argument ${named(units[0])}`);
  if (NEED_UNITS.has(verb) && units.length === 0) return unparseable(`systemctl ${verb}: name a unit`);
  // Patterns only where they select what to show: `stop '*'` would stop everything.
  const pattern = cls === 'read' ? UNIT_PATTERN : UNIT;
  for (const u of units) {
    if (u.text.startsWith('-') || !pattern.test(u.text))
      return refused(`systemctl ${verb}: ${named(u)} is not a unit name${cls === 'read' ? '' : ' (patterns are allowed only for read verbs)'}`);
  }
  return ok(makeCall({ tool: 'systemctl', verb, program: ['systemctl'], args: parsed.value.texts, class: showClass(verb, parsed.value.texts, parsed.value.flags) ?? cls, scope: {} }));
}

// `show` prints every property, the unit's Environment= included, and `cat` prints the unit files
// that set it: sensitive reads, except `show` with one -p list of properties from this set.
const SAFE_PROPERTIES = new Set([
  'Id', 'Names', 'Description', 'LoadState', 'ActiveState', 'SubState', 'UnitFileState', 'Result', 'Type', 'Restart',
  'MainPID', 'ExecMainPID', 'ExecMainCode', 'ExecMainStatus', 'NRestarts', 'FragmentPath',
  'ActiveEnterTimestamp', 'ActiveExitTimestamp', 'InactiveEnterTimestamp', 'InactiveExitTimestamp', 'StateChangeTimestamp',
  'MemoryCurrent', 'CPUUsageNSec', 'TasksCurrent', 'CanStart', 'CanStop', 'CanReload',
]);

function showClass(verb: string, texts: readonly string[], flags: ReadonlyMap<string, string | true>): OpClass | null {
  if (verb === 'cat') return 'sensitive-read';
  if (verb !== 'show') return null;
  // systemctl adds up repeated -p, while the flag map keeps the last: every word that may carry
  // one counts (a short bundle with a p in it too), and more than one is not looked into.
  const spellings = texts.filter((t) => t === '--property' || t.startsWith('--property=') || (/^-[^-]/.test(t) && t.includes('p')));
  const props = flags.get('property');
  if (spellings.length !== 1 || typeof props !== 'string') return 'sensitive-read';
  return props.split(',').every((p) => SAFE_PROPERTIES.has(p.trim())) ? null : 'sensitive-read';
}
