import { z } from 'zod';
import { clauseCitation, identifier, name, nonNegativeInt, text, timestamp, version } from './primitives';

const msg = <T extends string, S extends z.core.$ZodLooseShape>(type: T, shape: S) => z.strictObject({ v: version, type: z.literal(type), ...shape });

/**
 * The tray has no authority: it shows what the agent sends and reports what
 * only a user session can see. The agent learns who the tray speaks for from
 * the OS (socket credentials, pipe client), never from these messages.
 */

// ---- tray -> agent ---------------------------------------------------------

export const trayHello = msg('tray.hello', {
  trayVersion: name,
  /**
   * The OS session the tray runs in (\`XDG_SESSION_ID\`, the Windows session
   * number). A claim the agent checks: it must be a session of the user the
   * OS says is at the other end, or the connection is refused.
   */
  sessionId: identifier.optional(),
});
export const trayIdle = msg('tray.idle', { idleSeconds: nonNegativeInt });

export const NOTICE_ACTIONS = ['dismiss', 'ask-permission', 'still-here', 'sign-out-here', 'sign-out-other', 'agree', 'decline', 'enter-code'] as const;
export const trayAnswer = msg('tray.answer', {
  noticeId: identifier,
  action: z.enum(NOTICE_ACTIONS),
  /** The reason typed for a permission request. */
  text: text(1000).optional(),
  /** For `sign-out-other`: the session to end. For `enter-code`: the offline exception code. */
  target: identifier.optional(),
});

export const REPORT_KINDS = ['broken', 'virus', 'upsetting'] as const;
export const trayReport = msg('tray.report', {
  kind: z.enum(REPORT_KINDS),
  text: text(4000),
  /**
   * Chosen by the tray, one per report (a UUID): the agent acknowledges it
   * with `tray.report.ack`, and a report sent again under the same id is
   * recorded once. A report without one is recorded but not acknowledged.
   */
  reportId: identifier.optional(),
});

export const TRAY_TO_AGENT = [trayHello, trayIdle, trayAnswer, trayReport] as const;
export const trayToAgent = z.discriminatedUnion('type', TRAY_TO_AGENT);
export type TrayToAgent = z.infer<typeof trayToAgent>;

// ---- agent -> tray ---------------------------------------------------------

export const NOTICE_KINDS = [
  'usb-blocked',
  'device-blocked',
  'software-blocked',
  'logoff-countdown',
  'login-limit',
  'aup-agreement',
  'virus-warning',
  'permission-decision',
  'information',
] as const;

export const trayNotice = msg('tray.notice', {
  noticeId: identifier,
  kind: z.enum(NOTICE_KINDS),
  /** Plain words a seven-year-old can follow. */
  title: text(200),
  body: text(2000),
  /** The school's own words, behind "Why?". */
  clause: clauseCitation.optional(),
  /** What the notice is about (a device name, a program): always rendered as text. */
  subject: text(500).optional(),
  actions: z.array(z.enum(NOTICE_ACTIONS)).max(8),
  /** For a countdown: when the logoff happens. */
  deadline: timestamp.optional(),
  /** For a login-limit notice: the user's other sessions. */
  sessions: z
    .array(z.strictObject({ sessionId: identifier, hostname: name, since: timestamp }))
    .max(10)
    .optional(),
});

export const trayWithdraw = msg('tray.withdraw', { noticeId: identifier });

export const trayStatus = msg('tray.status', {
  state: z.enum(['protected', 'attention', 'disconnected']),
  policyName: name,
  policyRevision: nonNegativeInt,
  connectedSince: timestamp.nullable(),
  lastEvent: z.strictObject({ type: name, time: timestamp }).nullable(),
  policyUrl: z.url({ protocol: /^https?$/ }).optional(),
});

/**
 * What became of a report: `recorded` (durably in the outbox), `repeat` (the
 * same words from the same person already are; counted), `throttled` (more
 * reports than the rate allows; counted). The tray sends none of them again.
 */
export const REPORT_OUTCOMES = ['recorded', 'repeat', 'throttled'] as const;
export const trayReportAck = msg('tray.report.ack', { reportId: identifier, outcome: z.enum(REPORT_OUTCOMES) });

export const AGENT_TO_TRAY = [trayNotice, trayWithdraw, trayStatus, trayReportAck] as const;
export const agentToTray = z.discriminatedUnion('type', AGENT_TO_TRAY);
export type AgentToTray = z.infer<typeof agentToTray>;
export type TrayNotice = z.infer<typeof trayNotice>;
export type TrayStatus = z.infer<typeof trayStatus>;
export type TrayReport = z.infer<typeof trayReport>;
export type ReportOutcome = (typeof REPORT_OUTCOMES)[number];
