/**
 * Where this session's tray finds the agent, and how it signs the user out:
 * pure functions of the platform and environment, so tests can check each OS.
 */

export interface SessionFacts {
  platform: NodeJS.Platform;
  env: Readonly<Record<string, string | undefined>>;
  /** The user's uid (Linux, macOS). */
  uid?: number;
  /** The Windows session id (Terminal Services session) this process runs in. */
  windowsSessionId?: number;
}

/**
 * Linux and macOS: `/run/invigilator/trays/<uid>.sock`, one socket per user
 * that only that user can open. Windows: `\\.\pipe\invigilator-tray-<session id>`,
 * one pipe per session whose access is limited to that session's user (the
 * agent's Windows end is not built yet: docs/architecture.md).
 * `INVIGILATOR_TRAY_SOCKET` points the tray at another socket (a test's).
 */
export function traySocketPath(facts: SessionFacts): string {
  const override = facts.env.INVIGILATOR_TRAY_SOCKET;
  if (override) return override;
  if (facts.platform === 'win32') {
    if (facts.windowsSessionId === undefined || !Number.isInteger(facts.windowsSessionId) || facts.windowsSessionId < 0) {
      throw new Error('the Windows session id is unknown; set INVIGILATOR_TRAY_SOCKET');
    }
    return `\\\\.\\pipe\\invigilator-tray-${facts.windowsSessionId}`;
  }
  if (facts.uid === undefined || !Number.isInteger(facts.uid) || facts.uid < 0) throw new Error('the user id is unknown; set INVIGILATOR_TRAY_SOCKET');
  return `/run/invigilator/trays/${facts.uid}.sock`;
}

/**
 * The session this tray runs in, as the OS names it, for tray.hello: logind's
 * `XDG_SESSION_ID` on Linux, the session number on Windows, none on macOS
 * (there the user is the session). The agent checks the claim; this only
 * saves it guessing when a user is signed in twice.
 */
export function traySessionId(facts: SessionFacts): string | undefined {
  if (facts.platform === 'win32') return facts.windowsSessionId === undefined ? undefined : String(facts.windowsSessionId);
  if (facts.platform === 'darwin') return undefined;
  const id = facts.env.XDG_SESSION_ID;
  return id && /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/.test(id) ? id : undefined;
}

/** The command that ends this user's session: a program and its arguments, run without a shell. */
export function signOutCommand(facts: SessionFacts): { file: string; args: string[] } {
  if (facts.platform === 'win32') return { file: 'shutdown.exe', args: ['/l'] };
  if (facts.platform === 'darwin') return { file: '/usr/bin/osascript', args: ['-e', 'tell application "System Events" to log out'] };
  const session = facts.env.XDG_SESSION_ID;
  if (session && /^[A-Za-z0-9_-]+$/.test(session)) return { file: 'loginctl', args: ['terminate-session', session] };
  return { file: 'loginctl', args: ['terminate-user', String(facts.uid ?? '')] };
}

/** Parses `tasklist /FI "PID eq <pid>" /FO CSV /NH` output: the fourth column is the session number. */
export function parseTasklistSession(output: string): number | undefined {
  const line = output.split(/\r?\n/).find((l) => l.startsWith('"'));
  const fields = line?.match(/"([^"]*)"/g)?.map((f) => f.slice(1, -1));
  const session = fields?.[3];
  return session !== undefined && /^\d+$/.test(session) ? Number(session) : undefined;
}
