/**
 * What a tray window may do, and what it is shown. Types only: nothing here
 * exists at run time. The preload exposes an object of this shape as
 * `window.invigilator` (contextBridge); the windows use nothing else.
 *
 * The payload types mirror `shared/protocol/agent-tray.ts`. The renderer cannot
 * import them (its compile has rootDir tray-ui/renderer and no bundler), so
 * test/tray-ui/renderer.test.ts checks at compile time that they stay equal.
 */

export type NoticeKind =
  | 'usb-blocked'
  | 'device-blocked'
  | 'software-blocked'
  | 'logoff-countdown'
  | 'login-limit'
  | 'aup-agreement'
  | 'virus-warning'
  | 'permission-decision'
  | 'information';

export type NoticeAction = 'dismiss' | 'ask-permission' | 'still-here' | 'sign-out-here' | 'sign-out-other' | 'agree' | 'decline' | 'enter-code';

export type ReportKind = 'broken' | 'virus' | 'upsetting';

export type StatusState = 'protected' | 'attention' | 'disconnected';

export interface ClausePayload {
  id: string;
  document: string;
  section: string;
  quote: string;
}

export interface SessionPayload {
  sessionId: string;
  hostname: string;
  since: string;
}

/** A `tray.notice` message. */
export interface NoticePayload {
  v: 1;
  type: 'tray.notice';
  noticeId: string;
  kind: NoticeKind;
  title: string;
  body: string;
  clause?: ClausePayload;
  subject?: string;
  actions: NoticeAction[];
  deadline?: string;
  sessions?: SessionPayload[];
}

/** A `tray.status` message. */
export interface StatusPayload {
  v: 1;
  type: 'tray.status';
  state: StatusState;
  policyName: string;
  policyRevision: number;
  connectedSince: string | null;
  lastEvent: { type: string; time: string } | null;
  policyUrl?: string;
}

/**
 * `window.invigilator`, exposed by the preload. Every call is fire-and-forget:
 * the agent decides, and tells the window what happened with a new payload
 * (or takes the notice down with `tray.withdraw`).
 */
export interface TrayWindowApi {
  /**
   * Registers the one callback that receives what to show: a `tray.notice` for
   * the notice, countdown, login-limit and agreement windows, a `tray.status`
   * for the status window, `null` for the report window. May be called again
   * with a newer payload (a new deadline, a new status); the window redraws.
   */
  onShow(callback: (payload: unknown) => void): void;
  /** A `tray.answer`. `text`: the reason for ask-permission. `target`: the session for sign-out-other, the code for enter-code. */
  answer(noticeId: string, action: NoticeAction, text?: string, target?: string): void;
  /** A `tray.report`. */
  report(kind: ReportKind, text: string): void;
  /** Close this window. */
  close(): void;
  /** Open the school's ICT policy (main knows where it is, from the last `tray.status`). */
  openPolicy(): void;
}
