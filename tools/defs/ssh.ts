// ssh: `ssh HOST COMMAND...` for configured hosts only. Like real ssh, the words after HOST
// are joined with spaces and read again as one command line, which is then vetted by the
// same catalogue (so `ssh h 'a; b'` is refused for its `;`). The remote call's filters are
// hoisted into this call's pipeline: they run locally on the output, never remotely.

import { joinWords, quoteWord, type Word } from '../tokenize.js';
import type { ToolCall, ToolName } from '../types.js';
import { list, named, ok, refused, unparseable, type ParseContext, type ParseResult } from './common.js';

/** What may run on a remote host: tool → allowed verbs (undefined = every verb). */
export const SSH_REMOTE_TOOLS: Readonly<Partial<Record<ToolName, readonly string[] | undefined>>> = {
  systemctl: undefined,
  journalctl: undefined,
  files: ['cat', 'ls', 'stat', 'test'],
};

const HOST_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const SAFE_WORD = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** The program words a remote call runs (`systemctl ...`, `cat ...`). */
export function remoteArgv(call: ToolCall): string[] {
  const program = call.tool === 'files' ? call.verb : call.tool;
  return [program, ...call.args];
}

export function parseSsh(words: readonly Word[], ctx: ParseContext): ParseResult<ToolCall> {
  const hostWord = words[1];
  if (hostWord === undefined) return unparseable('ssh: needs `ssh HOST COMMAND...`');
  if (hostWord.text.startsWith('-'))
    return refused(`ssh: option ${named(hostWord)} is refused; ssh options (-o, -F, -i, -p, -L/-R/-D/-W/-J, -t, -A...) come only from the config's host table`);
  const at = hostWord.text.lastIndexOf('@');
  const user = at === -1 ? undefined : hostWord.text.slice(0, at);
  const name = at === -1 ? hostWord.text : hostWord.text.slice(at + 1);
  if (!HOST_NAME.test(name)) return refused(`ssh: ${named(hostWord)} is not a configured host name`);
  const hosts = ctx.env?.ssh?.hosts;
  if (hosts) {
    const h = hosts[name];
    if (h === undefined) return refused(`ssh: host \`${name}\` is not in the config's host table (configured: ${list(Object.keys(hosts)) || 'none'})`);
    if (user !== undefined && user !== h.user) return refused(`ssh: ${named(hostWord)}: user \`${user}\` is not the configured user for ${name}`);
  }
  const remoteWords = words.slice(2);
  if (remoteWords.length === 0) return refused('ssh: interactive ssh (no command) is refused; give the command to run');
  const first = remoteWords[0]!;
  if (first.text.startsWith('-'))
    return refused(`ssh: option ${named(first)} is refused; ssh options come only from the config's host table`);
  if (!ctx.parseRemote) return refused('ssh: ssh inside ssh is refused');

  const joined = remoteWords.map((w) => w.text).join(' ');
  const inner = ctx.parseRemote(joined);
  if (!inner.ok) return { ...inner, message: `ssh ${name}: remote command: ${inner.message}` };
  const remote = inner.value;
  if (!(remote.tool in SSH_REMOTE_TOOLS)) return refused(`ssh ${name}: \`${remote.tool}\` does not run over ssh; remote commands: systemctl, journalctl, cat, ls, stat, test`);
  const verbs = SSH_REMOTE_TOOLS[remote.tool];
  if (verbs && !verbs.includes(remote.verb)) return refused(`ssh ${name}: \`${remote.verb}\` does not run over ssh; remote commands: systemctl, journalctl, cat, ls, stat, test`);

  const argv = remoteArgv(remote);
  const base = joinWords(argv);
  const pipeline = remote.pipeline;
  const innerCall: ToolCall = { ...remote, canonical: base, pipeline: [], scope: { ...remote.scope, host: name } };
  // Safe words survive ssh's join-and-resplit as they are; anything else is quoted once more.
  const remoteText = argv.every((w) => SAFE_WORD.test(w)) ? base : quoteWord(base);
  const call: ToolCall = {
    tool: 'ssh',
    verb: `${remote.tool} ${remote.verb}`,
    args: argv,
    class: remote.class,
    scope: { ...remote.scope, host: name },
    canonical: `ssh ${name} ${remoteText}`,
    pipeline,
    remote: innerCall,
  };
  return ok(call);
}
