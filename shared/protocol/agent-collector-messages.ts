/**
 * Every message between the agent and the collector but the event batch,
 * whose schema is the whole event catalogue: the agent, which sends batches
 * and never decodes one, loads only this (issue 14: the idle agent's memory).
 * `agent-collector.ts` adds the batch and the agent-to-collector union.
 */

import { z } from 'zod';
import { deviceUsbAllowlistEntry, policySchema } from '../policy/schema';
import {
  PROTOCOL_LIMITS,
  base64url,
  codedError,
  identifier,
  name,
  nonNegativeInt,
  platform,
  roleId,
  sequence,
  text,
  timestamp,
  user,
  version,
} from './primitives';

const msg = <T extends string, S extends z.core.$ZodLooseShape>(type: T, shape: S) => z.strictObject({ v: version, type: z.literal(type), ...shape });

// ---- agent -> collector ----------------------------------------------------

/** First frame on a connection. Either enrolls with a token, or names the device and waits for a challenge. */
export const hello = msg('hello', {
  agentVersion: name,
  hostname: name,
  platform,
  /** The policy the agent enforces now: the collector pushes its own when either differs (two presets can share a revision number). */
  policyId: identifier.optional(),
  policyRevision: nonNegativeInt.optional(),
  auth: z.discriminatedUnion('kind', [
    /**
     * `installationId` is random, written to disk by the agent before its first
     * hello: enrolling again with it (after a crash before the identity was
     * saved) gets the same device back instead of a second one.
     */
    z.strictObject({ kind: z.literal('enroll'), token: base64url, installationId: identifier }),
    z.strictObject({ kind: z.literal('device'), deviceId: identifier }),
  ]),
});

/** Answer to a challenge: HMAC-SHA256(deviceSecret, nonce), so the secret itself never crosses the wire again. */
export const authProof = msg('auth.proof', { deviceId: identifier, nonce: base64url, proof: base64url });

export const commandResult = msg('command.result', { commandId: identifier, ok: z.boolean(), error: codedError.optional() });

export const loginClaim = msg('login.claim', { claimId: identifier, user, sessionId: identifier, role: roleId, at: timestamp });
export const loginRenew = msg('login.renew', { sessionIds: z.array(identifier).max(PROTOCOL_LIMITS.maxListLength) });
export const loginRelease = msg('login.release', { sessionId: identifier });
/**
 * A refused user chose, on the login-limit notice, to sign out one of their
 * other sessions: the claim again, with the `ref` the refused verdict gave
 * that session. The collector accepts it only from the device, session and
 * user it refused, once, within the role's `graceSeconds`; it then queues a
 * logoff for that session's device, frees the place and answers with a new
 * `login.verdict` for the claim. Any other reference is the claim alone.
 */
export const loginEvict = msg('login.evict', {
  claimId: identifier,
  user,
  sessionId: identifier,
  role: roleId,
  at: timestamp,
  ref: identifier,
});

export const permissionRequest = msg('permission.request', {
  requestId: identifier,
  kind: z.enum(['usb-device', 'software', 'other']),
  /** What the user asks to use: for a USB device its ids, for software its name or hash. */
  subject: z.strictObject({ vendorId: z.string().max(4).optional(), productId: z.string().max(4).optional(), serial: name.optional(), label: name }),
  user,
  reason: text(),
});

// ---- collector -> agent ----------------------------------------------------

export const enrolled = msg('enrolled', { deviceId: identifier, deviceSecret: base64url });
export const challenge = msg('challenge', { nonce: base64url });
/**
 * What this collector allows a connection, so an agent can pace itself under it instead of being closed
 * with 4429 or 1009. Optional: an agent talking to an older collector keeps its own defaults.
 */
export const connectionLimits = z.strictObject({
  messagesPerSecond: z.number().int().min(1),
  messageBurst: z.number().int().min(1),
  maxFrameBytes: z.number().int().min(1024),
  maxEventsPerBatch: z.number().int().min(1).max(PROTOCOL_LIMITS.maxEventsPerBatch),
});
export type ConnectionLimits = z.infer<typeof connectionLimits>;

export const welcome = msg('welcome', { deviceId: identifier, serverTime: timestamp, lastAckedSeq: nonNegativeInt, limits: connectionLimits.optional() });

/** Everything up to and including `upToSeq` is durably stored; the agent may forget it. */
export const ack = msg('ack', { upToSeq: sequence });

/** Admission control: close and come back no sooner than `retryAfterMs`. */
export const busy = msg('busy', { retryAfterMs: z.number().int().min(0).max(3_600_000) });

export const policyPush = msg('policy.push', { policy: policySchema });

export const command = msg('command', {
  commandId: identifier,
  issuedAt: timestamp,
  command: z.discriminatedUnion('kind', [
    z.strictObject({
      kind: z.literal('logoff'),
      /** One session, one user wherever this device has them, or every session on the device. */
      target: z.discriminatedUnion('scope', [
        z.strictObject({ scope: z.literal('session'), sessionId: identifier }),
        z.strictObject({ scope: z.literal('user'), user: name }),
        z.strictObject({ scope: z.literal('device') }),
      ]),
      reason: text(500).optional(),
    }),
    z.strictObject({ kind: z.literal('refresh-inventory') }),
    z.strictObject({ kind: z.literal('restore-file'), quarantineId: identifier }),
    z.strictObject({ kind: z.literal('usb-allow'), entry: deviceUsbAllowlistEntry }),
    z.strictObject({ kind: z.literal('usb-revoke'), entryId: identifier }),
  ]),
});

/**
 * One of the user's sessions on another computer, as a refused user is shown it: the computer's
 * name and since when, never its device or session id; `ref` names it in a `login.evict`.
 */
const otherSession = z.strictObject({ hostname: name, since: timestamp, ref: identifier.optional() });
export const loginVerdict = msg('login.verdict', {
  claimId: identifier,
  granted: z.boolean(),
  limit: z.number().int().min(1).nullable(),
  /** A refused claim: the user's sessions on other computers (at most 10), so the user can choose which to end. A granted one: empty. */
  others: z.array(otherSession).max(PROTOCOL_LIMITS.maxListLength),
  leaseSeconds: z.number().int().min(1),
});

export const permissionDecision = msg('permission.decision', {
  requestId: identifier,
  decision: z.enum(['approved', 'refused']),
  note: text(1000).optional(),
  expiresAt: timestamp.optional(),
});

/** Sent just before the collector closes a connection for a reason the agent should log. */
export const errorMessage = msg('error', { error: codedError });

export const COLLECTOR_TO_AGENT = [enrolled, challenge, welcome, ack, busy, policyPush, command, loginVerdict, permissionDecision, errorMessage] as const;
export const collectorToAgent = z.discriminatedUnion('type', COLLECTOR_TO_AGENT);
export type CollectorToAgent = z.infer<typeof collectorToAgent>;
export type Command = z.infer<typeof command>['command'];
