import { InvigilatorError } from '../../../shared/errors';
import { type SignOutCommand, checkedSession } from '../session-control';

/** `logoff <session number>`: a Windows session is a number of up to five digits. */
export const logoffSignOut: SignOutCommand = (session) => {
  const { sessionId } = checkedSession(session);
  if (!/^\d{1,5}$/.test(sessionId)) throw new InvigilatorError('INV_ERR_SESSION_UNKNOWN', 'a Windows session is a number');
  return { file: 'logoff.exe', args: [sessionId] };
};
