import type { Logger } from '../../node-common/logging';
import type { EventDraft, Recorder } from '../core/events';
import { EventTooLargeError, type Outbox, type OutboxReport } from './outbox';
import { tooLargeStandIn } from './too-large';

/**
 * The agent's `record`: durably in the outbox first, then `recorded` (the link
 * is told, the tray's status updated). An event too large to keep becomes a
 * stand-in, so the rule that recorded it carries on.
 */
export function outboxRecorder(outbox: Outbox, logger: Logger, recorded: (draft: EventDraft) => void): Recorder {
  const log = logger.child({ component: 'agent' });
  return async (draft) => {
    await outbox.append(draft).catch((e: unknown) => {
      if (!(e instanceof EventTooLargeError)) throw e;
      // The collector learns what happened, without the details.
      log.warn('an event is larger than the outbox keeps; recorded a stand-in without its details', {
        type: e.eventType,
        severity: draft.severity,
        bytes: e.bytes,
        maxBytes: e.maxBytes,
      });
      return outbox.append(tooLargeStandIn(draft, e.bytes, e.maxBytes));
    });
    recorded(draft);
  };
}

/** What opening the outbox found (corrupt records, a torn tail) is reported; so is every overflow from now on. */
export async function reportOutboxHealth(outbox: Outbox, report: OutboxReport, capBytes: number, record: Recorder, logger: Logger): Promise<void> {
  const log = logger.child({ component: 'agent' });
  const now = () => new Date().toISOString();
  for (const c of report.corrupt) {
    log.error('outbox record corrupt; skipped', c);
    await record({ type: 'outbox.corrupt', severity: 'warning', time: now(), data: { segment: c.segment, offset: c.offset, bytesSkipped: c.bytesSkipped } });
  }
  if (report.tornBytes > 0) log.warn('outbox had a torn tail from an interrupted write; truncated', { bytes: report.tornBytes });
  outbox.onOverflow = (dropped) => {
    log.warn('outbox full: dropped the least important events', { dropped });
    record({ type: 'outbox.overflow', severity: 'warning', time: now(), data: { capBytes, dropped } }).catch((e: unknown) =>
      log.error('could not record an overflow', { error: String(e) }),
    );
  };
}
