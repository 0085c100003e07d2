import { type SignOutCommand, checkedSession } from '../session-control';

/** `loginctl terminate-session <id>`: logind ends the session and kills its processes. */
export const loginctlSignOut: SignOutCommand = (session) => ({ file: 'loginctl', args: ['terminate-session', checkedSession(session).sessionId] });
