import type { EventEnvelope } from '../../shared/protocol';

/*
 * What every capability records with. It lives in the core, not the outbox:
 * a guard names the shape of an event, and must not have to import the disk
 * format that keeps it to do so.
 */

/** An event as the agent makes it: the outbox gives it its id and sequence number; the link adds the device id. */
export type EventDraft = EventEnvelope extends infer E ? (E extends EventEnvelope ? Omit<E, 'id' | 'seq' | 'deviceId'> : never) : never;
/** An event as the outbox keeps it. */
export type StoredEvent = EventEnvelope extends infer E ? (E extends EventEnvelope ? Omit<E, 'deviceId'> : never) : never;

/** Records one event: resolves once the outbox has it (the agent's `record`; tests pass an array's push). */
export type Recorder = (draft: EventDraft) => Promise<void>;
