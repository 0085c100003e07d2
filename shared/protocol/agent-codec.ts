import type { z } from 'zod';
import { type Decoded, failure, problem } from '../errors';
import { fastValidator } from '../schema-fast-path';
import { DEFAULT_JSON_LIMITS, type JsonLimits, parseUntrustedJson } from '../untrusted-json';
import type { agentToCollector } from './agent-collector';
import { collectorToAgent } from './agent-collector-messages';
import { type agentToTray, trayToAgent } from './agent-tray';
import { PROTOCOL_VERSION } from './primitives';

/*
 * What the agent decodes (the collector's and the trays' messages) and how
 * every side encodes, without the schemas only the collector and the tray
 * decode with: the event batch's is the whole event catalogue, which the
 * agent would otherwise build and keep for months for nothing (issue 14).
 * `codec.ts` adds the collector's and the tray's decoders.
 */

type Union = typeof agentToCollector | typeof collectorToAgent | typeof trayToAgent | typeof agentToTray;

/** Each union's validator with its fast path (shared/schema-fast-path.ts), built the first time a message of that direction is decoded. */
const validators = new Map<Union, (value: unknown) => Decoded<unknown>>();
function validatorOf<U extends Union>(union: U): (value: unknown) => Decoded<z.output<U>> {
  let v = validators.get(union);
  if (!v) validators.set(union, (v = fastValidator(union)));
  return v as (value: unknown) => Decoded<z.output<U>>;
}

/**
 * Decodes one message from a peer. Checks the version and type first, so an
 * old or new peer gets a precise code instead of a wall of schema errors.
 * A message the fast path vouches for is zod's output without zod's cost;
 * any other goes through zod, so every refusal is zod's own.
 */
export function decodeWith<U extends Union>(union: U, input: string | Uint8Array, limits: JsonLimits): Decoded<z.output<U>> {
  const parsed = parseUntrustedJson(input, limits);
  if (!parsed.ok) return parsed;
  const value = parsed.value;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return failure(problem('INV_ERR_SCHEMA_TYPE', '$', 'a message is a JSON object'));
  const { v, type } = value as { v?: unknown; type?: unknown };
  if (v !== PROTOCOL_VERSION)
    return failure(problem('INV_ERR_PROTOCOL_VERSION', '$.v', `expected v ${PROTOCOL_VERSION}, got ${JSON.stringify(v) ?? 'nothing'}`));
  if (typeof type !== 'string' || !union.options.some((o) => o.shape.type.value === type)) {
    return failure(problem('INV_ERR_UNKNOWN_MESSAGE', '$.type', `unknown message type ${JSON.stringify(type)?.slice(0, 80) ?? 'nothing'}`));
  }
  return validatorOf(union)(value);
}

export const decodeCollectorToAgent = (input: string | Uint8Array, limits = DEFAULT_JSON_LIMITS) => decodeWith(collectorToAgent, input, limits);
export const decodeTrayToAgent = (input: string | Uint8Array, limits = DEFAULT_JSON_LIMITS) => decodeWith(trayToAgent, input, limits);

/**
 * Serialises a message we are about to send. Our own messages are typed, so
 * this does not validate again on the hot path; tests round-trip every type.
 */
export function encode(message: z.input<Union>): string {
  return JSON.stringify(message);
}
