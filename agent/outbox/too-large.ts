import type { EventDraft } from '../core/events';

/**
 * What an event too large to keep or to send becomes: an `outbox.too-large`
 * event with the original's time, severity and user, saying what it was and
 * how big. The network manager learns that it happened and why its details are
 * missing; the rule that recorded it carries on. The clause citation is left
 * out: its quote alone can be kilobytes.
 */
export function tooLargeStandIn<E extends Pick<EventDraft, 'type' | 'severity' | 'time' | 'user'>>(
  event: E,
  bytes: number,
  maxBytes: number,
): Extract<EventDraft, { type: 'outbox.too-large' }> {
  return {
    type: 'outbox.too-large',
    severity: event.severity,
    time: event.time,
    ...(event.user ? { user: event.user } : {}),
    data: { eventType: event.type.slice(0, 256), bytes, maxBytes },
  };
}
