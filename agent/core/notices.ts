import type { TrayNotice, TrayStatus } from '../../shared/protocol';
import type { Outcome } from './result';

/**
 * The one notice port every capability speaks through; the tray channel
 * (agent/tray/) is what implements it. Before, it was declared four times
 * under four names (NoticeSink in the USB guard, PersonalNotices in the
 * agreement keeper, LogoffNotices, SoftwareNotices), each capability
 * importing another's to name it. The agent never waits on a person: showing
 * is fire and forget, and an answer comes back as a tray answer.
 */
export interface Notices {
  /** To every signed-in user's tray: about the computer (a blocked stick). */
  show(notice: TrayNotice): void;
  /** To that user's own trays only: about one person (their agreement, their countdown, their program). */
  showTo(uid: number, notice: TrayNotice): void;
  withdraw(noticeId: string): void;
  /** What the tray icon and status window show; the last one is given to every tray that connects later. */
  status?(status: TrayStatus): void;
}

/** The part that speaks to every tray: all the root-only socket (administrators' tools) can do. */
export type NoticeSink = Pick<Notices, 'show' | 'withdraw' | 'status'>;

/** The part that speaks to one person. */
export type PersonalNotices = Pick<Notices, 'showTo' | 'withdraw'>;

/** Several sinks as one: the root socket for administrators' tools and the users' trays. */
export function bothSinks(a: NoticeSink, b: NoticeSink): NoticeSink {
  return {
    show: (n) => (a.show(n), b.show(n)),
    withdraw: (id) => (a.withdraw(id), b.withdraw(id)),
    status: (s) => (a.status?.(s), b.status?.(s)),
  };
}

/**
 * Who is at the other end of a tray connection, as the OS says: the uid from
 * the socket's owner (only that user can open it), the session checked against
 * the OS's own list. Empty on the root-only socket.
 */
export interface TrayPeer {
  uid?: number;
  sessionId?: string;
}

/** What a capability answers a tray's answer to its notice with. */
export type AnswerResult = Outcome;
