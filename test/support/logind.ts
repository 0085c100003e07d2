import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The shape of a logind session file, as systemd-logind's session_save()
 * writes it (src/login/logind-session.c, systemd 252 in Debian 12); the
 * values are Amy's desktop on a lab PC.
 */
export const AMY_DESKTOP = `# This is private data. Do not parse.
UID=1000
USER=amy
ACTIVE=1
IS_DISPLAY=1
STATE=active
REMOTE=0
TYPE=x11
ORIGINAL_TYPE=x11
CLASS=user
SCOPE=session-3.scope
FIFO=/run/systemd/sessions/3.ref
SEAT=seat0
DISPLAY=:0
SERVICE=lightdm
DESKTOP=xfce
VTNR=7
LEADER=1234
REALTIME=1795420800000000
MONOTONIC=12345678
`;

/** A logind session file, as systemd-logind writes it, for a local desktop session of `user`. */
export function logindDesktop(dir: string, sessionId: string, uid: number, user: string): void {
  writeFileSync(join(dir, sessionId), `UID=${uid}\nUSER=${user}\nACTIVE=1\nREMOTE=0\nTYPE=x11\nCLASS=user\n`);
}

/** logind's hints for one session, as `loginctl show-session` prints them. */
export interface LoginctlHintValues {
  LockedHint?: 'yes' | 'no';
  IdleHint?: 'yes' | 'no';
  /** Microseconds since the epoch; `0` when unset. */
  IdleSinceHint?: string;
}

/**
 * What `loginctl show-session ID... -p NAME...` prints and how it exits, as
 * systemd 252's loginctl does: for each id in order, the properties asked
 * for in logind's own order (Id, IdleHint, IdleSinceHint, LockedHint), an
 * empty line between sessions; at the first id logind does not know it
 * stops, printing nothing for it or those after, and exits 1.
 */
export function loginctlShowSession(args: readonly string[], sessions: Readonly<Record<string, LoginctlHintValues>>): { stdout: string; code: number } {
  if (args[0] !== 'show-session') return { stdout: '', code: 1 };
  const ids: string[] = [];
  const wanted = new Set<string>();
  for (let i = 1; i < args.length; i++) {
    if (args[i] === '-p') wanted.add(args[++i]!);
    else if (args[i]!.startsWith('--property=')) wanted.add(args[i]!.slice('--property='.length));
    else ids.push(args[i]!);
  }
  const blocks: string[] = [];
  for (const id of ids) {
    const values = sessions[id];
    if (!values) return { stdout: blocks.join('\n'), code: 1 };
    const all: Array<[string, string | undefined]> = [
      ['Id', id],
      ['IdleHint', values.IdleHint],
      ['IdleSinceHint', values.IdleSinceHint],
      ['LockedHint', values.LockedHint],
    ];
    blocks.push(
      all
        .filter(([name, value]) => value !== undefined && (wanted.size === 0 || wanted.has(name)))
        .map(([name, value]) => `${name}=${value}\n`)
        .join(''),
    );
  }
  return { stdout: blocks.join('\n'), code: 0 };
}
