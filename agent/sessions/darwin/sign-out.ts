import { type SignOutCommand, checkedSession } from '../session-control';

/** `launchctl bootout gui/<uid>`: ends that user's GUI login. */
export const launchctlSignOut: SignOutCommand = (session) => ({ file: '/bin/launchctl', args: ['bootout', `gui/${checkedSession(session).uid}`] });
