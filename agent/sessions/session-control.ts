import { InvigilatorError } from '../../shared/errors';
import type { CommandRunner } from '../os/command-runner';

/** The session to end: the OS's session id and its user. */
export interface SessionRef {
  sessionId: string;
  uid: number;
}

/** Ends a user's session: one implementation per OS, chosen in the composition root. */
export interface SessionControl {
  signOut(session: SessionRef): Promise<void>;
}

const SAFE_SESSION_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

/**
 * The OS's own command for ending one session, run as the agent (root or
 * SYSTEM), never through a shell: one per OS (sessions/<os>/sign-out.ts),
 * chosen in the composition root.
 */
export type SignOutCommand = (session: SessionRef) => { file: string; args: string[] };

/** The session, if it is one this computer could have: anything else never reaches a command line. */
export function checkedSession(session: SessionRef): SessionRef {
  if (!SAFE_SESSION_ID.test(session.sessionId) || !Number.isInteger(session.uid) || session.uid < 0) {
    throw new InvigilatorError('INV_ERR_SESSION_UNKNOWN', 'not a session this computer could have');
  }
  return session;
}

export class CommandSessionControl implements SessionControl {
  constructor(
    private readonly command: SignOutCommand,
    private readonly runner: CommandRunner,
  ) {}

  async signOut(session: SessionRef): Promise<void> {
    const { file, args } = this.command(session);
    const result = await this.runner.run(file, args, 15_000);
    if (result.code !== 0) throw new InvigilatorError('INV_ERR_SIGN_OUT_FAILED', `${file} exited with ${result.code}`);
  }
}

/**
 * `sessions.control: observe`: every decision is made and recorded, nobody is
 * signed out. The sign-out is refused with a code, so each `session.logoff`
 * says `confirmed: false` and nobody reading the events is misled.
 */
export class ObservingSessionControl implements SessionControl {
  constructor(private readonly logger: { info(message: string, fields?: Record<string, unknown>): void }) {}

  async signOut(session: SessionRef): Promise<void> {
    this.logger.info('would sign out a session (sessions.control is observe)', { sessionId: session.sessionId, uid: session.uid });
    throw new InvigilatorError('INV_ERR_SIGN_OUT_FAILED', 'sessions.control is observe: nobody is signed out');
  }
}
