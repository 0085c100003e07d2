import type { Platform } from '../shared/protocol';
import type { Logger } from '../node-common/logging';
import type * as ConsoleSessions from '../agent/sessions/darwin/console-sessions';
import type * as LoginctlHints from '../agent/sessions/loginctl-hints';
import { IdCommandGroups } from '../agent/sessions/roles';
import { CommandSessionControl, ObservingSessionControl, type SessionControl, type SignOutCommand } from '../agent/sessions/session-control';
import { loginctlSignOut } from '../agent/sessions/linux/sign-out';
import { logoffSignOut } from '../agent/sessions/win32/sign-out';
import { launchctlSignOut } from '../agent/sessions/darwin/sign-out';
import { LogindSessions, type SessionDirectory, type SignedInUsers } from '../agent/sessions/session-directory';
import type * as WtsSessions from '../agent/sessions/win32/wts-sessions';
import type { CommandRunner } from '../agent/os/command-runner';

/** How each OS ends one session (agent/sessions/<os>/sign-out.ts). */
export const SIGN_OUT_COMMANDS: Readonly<Record<Platform, SignOutCommand>> = { linux: loginctlSignOut, win32: logoffSignOut, darwin: launchctlSignOut };

/**
 * This OS's session adapters, chosen once: logind on Linux (with screen locks,
 * idle hints and groups from `id`), `quser` on Windows (no groups yet: every
 * user has the policy's default role), the console owner and `who` on macOS.
 * Another OS's adapter is never loaded (issue 14: the idle agent's memory).
 */
/* eslint-disable @typescript-eslint/no-require-imports */
export function sessionsFor(platform: Platform, runner: CommandRunner, logger: Logger, mode: 'enforce' | 'observe' = 'enforce') {
  const control: SessionControl = mode === 'enforce' ? new CommandSessionControl(SIGN_OUT_COMMANDS[platform], runner) : new ObservingSessionControl(logger);
  switch (platform) {
    case 'linux': {
      const { LoginctlHints: Hints } = require('../agent/sessions/loginctl-hints') as typeof LoginctlHints;
      const logind = new LogindSessions();
      // One loginctl per tick answers both, for every session.
      const hints = new Hints(runner, logind);
      return {
        directory: logind as SessionDirectory,
        users: logind as SignedInUsers,
        control,
        groups: new IdCommandGroups(runner),
        locks: hints,
        idleHints: hints,
      };
    }
    case 'win32': {
      const wts = new (require('../agent/sessions/win32/wts-sessions') as typeof WtsSessions).WtsSessions({ runner, logger });
      return { directory: wts as SessionDirectory, users: wts as SignedInUsers, control };
    }
    case 'darwin': {
      const console = new (require('../agent/sessions/darwin/console-sessions') as typeof ConsoleSessions).ConsoleSessions({ runner, logger });
      return { directory: console as SessionDirectory, users: console as SignedInUsers, control, groups: new IdCommandGroups(runner) };
    }
  }
}
/* eslint-enable @typescript-eslint/no-require-imports */
