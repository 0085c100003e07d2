import type { Logger } from '../node-common/logging';
import { settlesWithin, waitFor } from './core/bounded-wait';
import type { Recorder } from './core/events';
import type { Link } from './link/link';
import type { Outbox } from './outbox/outbox';
import { markStopped } from './tamper-watch';

/**
 * Stopping is bounded whatever the outbox holds (issue 12: a service manager
 * kills what does not stop). The rules and channels get this long together;
 * the link gets at most this long to deliver what is left, then its own
 * bounded close; every event not acknowledged stays in the outbox.
 */
const STOP_PARTS_MS = 1_500;
const STOP_DELIVERY_MS = 500;

export interface StopSteps {
  reason: string;
  /** The capabilities and the tray channels, stopping. */
  parts: Promise<void>;
  record: Recorder;
  dataDir: string;
  outbox: Outbox;
  link: Link;
  logger: Logger;
}

/** The agent's stop after its timers are cleared: the parts, `agent.stopped`, a last delivery, the link, the outbox. */
export async function stopInTime(steps: StopSteps): Promise<void> {
  const { outbox, link, reason } = steps;
  const log = steps.logger.child({ component: 'agent' });
  if (!(await settlesWithin(steps.parts, STOP_PARTS_MS)))
    log.warn('some parts of the agent did not stop in time; stopping anyway', { waitedMs: STOP_PARTS_MS });
  await settlesWithin(
    steps.record({ type: 'agent.stopped', severity: 'info', time: new Date().toISOString(), data: { reason } }).catch(() => undefined),
    STOP_PARTS_MS,
  );
  await markStopped(steps.dataDir).catch(() => undefined);
  // Give the link a moment to deliver the last events; whatever is left stays in the outbox for next time.
  await waitFor(() => outbox.pendingCount === 0 || link.currentState !== 'ready', STOP_DELIVERY_MS);
  await link.stop();
  await outbox.close();
  log.info('agent stopped', { reason, pending: outbox.pendingCount });
}
