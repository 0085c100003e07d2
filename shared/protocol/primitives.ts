import { z } from 'zod';
import { cleanName, cleanText } from '../untrusted-text';

/** The protocol version spoken by this build. A peer on another version is refused with a coded error. */
export const PROTOCOL_VERSION = 1 as const;

/** Caps that keep one message small; the socket's frame cap sits above them. */
export const PROTOCOL_LIMITS = {
  maxIdLength: 128,
  maxNameLength: 256,
  maxTextLength: 4096,
  maxQuoteLength: 2000,
  maxEventsPerBatch: 500,
  maxListLength: 1000,
  /** Installed programs the collector lists for one device, and the most an agent reports (docs/protocol.md, "Installed software"). */
  maxInstalledPrograms: 20_000,
} as const;

export const version = z.literal(PROTOCOL_VERSION);

/** Identifiers we mint ourselves: letters, digits and a few separators, never markup. */
export const identifier = z
  .string()
  .min(1)
  .max(PROTOCOL_LIMITS.maxIdLength)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:@-]*$/, 'letters, digits and . _ : @ - only');

export const uuid = z.uuid();
export const timestamp = z.iso.datetime({ offset: true });
export const sequence = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);
export const nonNegativeInt = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

/**
 * Free text from people or devices: length-capped, cleaned of control and direction-reversing characters
 * (line breaks and tabs kept: shared/untrusted-text.ts), rendered as text, never as markup.
 */
export const text = (max: number = PROTOCOL_LIMITS.maxTextLength) => z.string().max(max).overwrite(cleanText);
/** A name on one line (a hostname, a user, a label): cleaned as text is, and its white space collapsed. */
export const name = z.string().max(PROTOCOL_LIMITS.maxNameLength).overwrite(cleanName);

export const platform = z.enum(['linux', 'win32', 'darwin']);
export type Platform = z.infer<typeof platform>;

export const hex4 = z.string().regex(/^[0-9a-f]{4}$/, 'four lower-case hex digits');
export const sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'a SHA-256 in lower-case hex');
export const base64url = z
  .string()
  .max(512)
  .regex(/^[A-Za-z0-9_-]+$/, 'base64url');

/** Where a decision came from: the school's own words, quoted so a notice can show them. */
export const clauseCitation = z.strictObject({
  id: identifier,
  document: name,
  section: name,
  quote: text(PROTOCOL_LIMITS.maxQuoteLength),
});
export type ClauseCitation = z.infer<typeof clauseCitation>;

export const roleId = identifier;

export const user = z.strictObject({
  name,
  /** The OS's own id for the account: a uid, a SID or a GUID. */
  osId: name.optional(),
  role: roleId.optional(),
});
export type User = z.infer<typeof user>;

export const codedError = z.strictObject({
  code: z.string().regex(/^INV_ERR_[A-Z0-9_]+$/),
  message: text(),
  path: text(PROTOCOL_LIMITS.maxNameLength).optional(),
});
export type CodedError = z.infer<typeof codedError>;

/**
 * Severity orders events for the outbox's overflow rule: the lowest go first,
 * `alert` (blocks, tamper) last. It also colours the dashboard. Here, apart
 * from the event schemas, so that the agent, which only writes events, need
 * not build them (issue 14).
 */
export const SEVERITIES = ['debug', 'info', 'notice', 'warning', 'alert'] as const;
export type Severity = (typeof SEVERITIES)[number];
