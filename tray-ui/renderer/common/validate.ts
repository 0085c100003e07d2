/**
 * Checks a payload before any of it reaches the page. The main process already
 * validated it against the shared zod schema; this is the window's own guard,
 * written without zod (no bundler): wrong shape, wrong kind, too long: refused.
 */
import type { ClausePayload, NoticeAction, NoticeKind, NoticePayload, SessionPayload, StatusPayload, StatusState } from '../api.js';

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
] as const satisfies readonly NoticeKind[];

export const NOTICE_ACTIONS = [
  'dismiss',
  'ask-permission',
  'still-here',
  'sign-out-here',
  'sign-out-other',
  'agree',
  'decline',
  'enter-code',
] as const satisfies readonly NoticeAction[];

const STATES = ['protected', 'attention', 'disconnected'] as const satisfies readonly StatusState[];

// Every member of each union is listed above: a new kind or action must be added here too.
const _allKinds: Exclude<NoticeKind, (typeof NOTICE_KINDS)[number]> extends never ? true : never = true;
const _allActions: Exclude<NoticeAction, (typeof NOTICE_ACTIONS)[number]> extends never ? true : never = true;
void _allKinds;
void _allActions;

/** The protocol's identifier: letters, digits and . _ : @ - only. */
export const IDENTIFIER = /^[A-Za-z0-9][A-Za-z0-9._:@-]*$/;
const ID_MAX = 128;
const NAME_MAX = 256;
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown, max: number): v is string => typeof v === 'string' && v.length <= max;
const id = (v: unknown): v is string => str(v, ID_MAX) && IDENTIFIER.test(v);
const time = (v: unknown): v is string => str(v, 64) && ISO_TIME.test(v) && !Number.isNaN(Date.parse(v));
const oneOf = <T extends string>(list: readonly T[], v: unknown): v is T => typeof v === 'string' && (list as readonly string[]).includes(v);
const onlyKeys = (o: Obj, keys: readonly string[]): boolean => Object.keys(o).every((k) => keys.includes(k));

function clause(v: unknown): ClausePayload | undefined {
  if (!isObj(v) || !onlyKeys(v, ['id', 'document', 'section', 'quote'])) return undefined;
  if (!id(v.id) || !str(v.document, NAME_MAX) || !str(v.section, NAME_MAX) || !str(v.quote, 2000)) return undefined;
  return { id: v.id, document: v.document, section: v.section, quote: v.quote };
}

function session(v: unknown): SessionPayload | undefined {
  if (!isObj(v) || !onlyKeys(v, ['sessionId', 'hostname', 'since'])) return undefined;
  if (!id(v.sessionId) || !str(v.hostname, NAME_MAX) || !time(v.since)) return undefined;
  return { sessionId: v.sessionId, hostname: v.hostname, since: v.since };
}

const NOTICE_KEYS = ['v', 'type', 'noticeId', 'kind', 'title', 'body', 'clause', 'subject', 'actions', 'deadline', 'sessions'];

/** A `tray.notice` of one of `kinds`, or undefined. */
export function parseNotice(payload: unknown, kinds: readonly NoticeKind[]): NoticePayload | undefined {
  const p = payload;
  if (!isObj(p) || !onlyKeys(p, NOTICE_KEYS) || p.v !== 1 || p.type !== 'tray.notice') return undefined;
  if (!id(p.noticeId) || !oneOf(NOTICE_KINDS, p.kind) || !kinds.includes(p.kind)) return undefined;
  if (!str(p.title, 200) || !str(p.body, 2000)) return undefined;
  if (!Array.isArray(p.actions) || p.actions.length > 8 || !p.actions.every((a) => oneOf(NOTICE_ACTIONS, a))) return undefined;
  const notice: NoticePayload = { v: 1, type: 'tray.notice', noticeId: p.noticeId, kind: p.kind, title: p.title, body: p.body, actions: [...p.actions] };
  if (p.clause !== undefined) {
    const c = clause(p.clause);
    if (!c) return undefined;
    notice.clause = c;
  }
  if (p.subject !== undefined) {
    if (!str(p.subject, 500)) return undefined;
    notice.subject = p.subject;
  }
  if (p.deadline !== undefined) {
    if (!time(p.deadline)) return undefined;
    notice.deadline = p.deadline;
  }
  if (p.sessions !== undefined) {
    if (!Array.isArray(p.sessions) || p.sessions.length > 10) return undefined;
    const sessions = p.sessions.map(session);
    if (sessions.some((s) => s === undefined)) return undefined;
    notice.sessions = sessions as SessionPayload[];
  }
  return notice;
}

const STATUS_KEYS = ['v', 'type', 'state', 'policyName', 'policyRevision', 'connectedSince', 'lastEvent', 'policyUrl'];

/** A `tray.status`, or undefined. */
export function parseStatus(payload: unknown): StatusPayload | undefined {
  const p = payload;
  if (!isObj(p) || !onlyKeys(p, STATUS_KEYS) || p.v !== 1 || p.type !== 'tray.status') return undefined;
  if (!oneOf(STATES, p.state) || !str(p.policyName, NAME_MAX)) return undefined;
  if (typeof p.policyRevision !== 'number' || !Number.isSafeInteger(p.policyRevision) || p.policyRevision < 0) return undefined;
  if (p.connectedSince !== null && !time(p.connectedSince)) return undefined;
  let lastEvent: StatusPayload['lastEvent'] = null;
  if (p.lastEvent !== null) {
    const e = p.lastEvent;
    if (!isObj(e) || !onlyKeys(e, ['type', 'time']) || !str(e.type, NAME_MAX) || !time(e.time)) return undefined;
    lastEvent = { type: e.type, time: e.time };
  }
  const status: StatusPayload = {
    v: 1,
    type: 'tray.status',
    state: p.state,
    policyName: p.policyName,
    policyRevision: p.policyRevision,
    connectedSince: p.connectedSince,
    lastEvent,
  };
  if (p.policyUrl !== undefined) {
    if (!str(p.policyUrl, 2048) || !/^https?:\/\//.test(p.policyUrl)) return undefined;
    status.policyUrl = p.policyUrl;
  }
  return status;
}
