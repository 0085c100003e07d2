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
