import { z } from 'zod';
import { hello, authProof, commandResult, loginClaim, loginRenew, loginRelease, loginEvict, permissionRequest } from './agent-collector-messages';
import { eventEnvelope } from './events';
import { PROTOCOL_LIMITS, version } from './primitives';

export * from './agent-collector-messages';

const msg = <T extends string, S extends z.core.$ZodLooseShape>(type: T, shape: S) => z.strictObject({ v: version, type: z.literal(type), ...shape });

// ---- agent -> collector ----------------------------------------------------

export const eventBatch = msg('event.batch', { events: z.array(eventEnvelope).min(1).max(PROTOCOL_LIMITS.maxEventsPerBatch) });

export const AGENT_TO_COLLECTOR = [hello, authProof, eventBatch, commandResult, loginClaim, loginRenew, loginRelease, loginEvict, permissionRequest] as const;
export const agentToCollector = z.discriminatedUnion('type', AGENT_TO_COLLECTOR);
export type AgentToCollector = z.infer<typeof agentToCollector>;
