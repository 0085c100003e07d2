import { InvigilatorError } from '../../shared/errors';
import type { Platform } from '../../shared/protocol';
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
 * SYSTEM), never through a shell:
 * - Linux: `loginctl terminate-session <id>` (logind kills the session's processes);
 * - Windows: `logoff <session number>`;
 * - macOS: `launchctl bootout gui/<uid>`, which ends that user's GUI login.
 */
export function signOutCommand(platform: Platform, session: SessionRef): { file: string; args: string[] } {
  if (!SAFE_SESSION_ID.test(session.sessionId) || !Number.isInteger(session.uid) || session.uid < 0) {
    throw new InvigilatorError('INV_ERR_SESSION_UNKNOWN', 'not a session this computer could have');
  }
  switch (platform) {
    case 'win32':
      if (!/^\d{1,5}$/.test(session.sessionId)) throw new InvigilatorError('INV_ERR_SESSION_UNKNOWN', 'a Windows session is a number');
      return { file: 'logoff.exe', args: [session.sessionId] };
    case 'darwin':
      return { file: '/bin/launchctl', args: ['bootout', `gui/${session.uid}`] };
    case 'linux':
      return { file: 'loginctl', args: ['terminate-session', session.sessionId] };
  }
}

export class CommandSessionControl implements SessionControl {
  constructor(
    private readonly platform: Platform,
    private readonly runner: CommandRunner,
  ) {}

  async signOut(session: SessionRef): Promise<void> {
    const { file, args } = signOutCommand(this.platform, session);
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
