import type { ErrorCode } from '../shared/errors';

/**
 * WebSocket close codes of the agent socket, one per failure, so an agent (and
 * a person reading its log) knows what went wrong without a message body.
 * 4xxx mirror HTTP statuses where one fits. Documented in docs/protocol.md.
 */
export const CLOSE = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  /** Set by ws itself when a frame exceeds maxPayload. */
  TOO_BIG: 1009,
  MALFORMED: 4400,
  AUTH_FAILED: 4401,
  FORBIDDEN: 4403,
  HELLO_TIMEOUT: 4408,
  UNEXPECTED: 4409,
  SUPERSEDED: 4410,
  PROTOCOL_VERSION: 4426,
  RATE_LIMITED: 4429,
  INTERNAL: 4500,
  BUSY: 4503,
} as const;

export type CloseCode = (typeof CLOSE)[keyof typeof CLOSE];

/**
 * The close code of every error the socket closes with. Anything else that ends a connection is
 * MALFORMED. docs/protocol.md's close-code table lists each of these in its row, and a test reads
 * that table back, so the two cannot drift apart.
 */
export const CLOSE_FOR: Readonly<Partial<Record<ErrorCode, CloseCode>>> = {
  INV_ERR_INVALID_UTF8: CLOSE.MALFORMED,
  INV_ERR_INVALID_JSON: CLOSE.MALFORMED,
  INV_ERR_TOO_DEEP: CLOSE.MALFORMED,
  INV_ERR_FORBIDDEN_KEY: CLOSE.MALFORMED,
  INV_ERR_SCHEMA_TYPE: CLOSE.MALFORMED,
  INV_ERR_SCHEMA_REQUIRED: CLOSE.MALFORMED,
  INV_ERR_SCHEMA_UNKNOWN_FIELD: CLOSE.MALFORMED,
  INV_ERR_SCHEMA_VALUE: CLOSE.MALFORMED,
  INV_ERR_SCHEMA_RANGE: CLOSE.MALFORMED,
  INV_ERR_SCHEMA_FORMAT: CLOSE.MALFORMED,
  INV_ERR_SCHEMA_INVALID: CLOSE.MALFORMED,
  INV_ERR_UNKNOWN_MESSAGE: CLOSE.MALFORMED,
  INV_ERR_BINARY_FRAME: CLOSE.MALFORMED,
  INV_ERR_BATCH_NOT_ASCENDING: CLOSE.MALFORMED,
  INV_ERR_PROTOCOL_VERSION: CLOSE.PROTOCOL_VERSION,
  INV_ERR_INPUT_TOO_LARGE: CLOSE.TOO_BIG,
  INV_ERR_AUTH_FAILED: CLOSE.AUTH_FAILED,
  INV_ERR_ENROLL_TOKEN_INVALID: CLOSE.AUTH_FAILED,
  INV_ERR_ENROLL_TOKEN_USED_UP: CLOSE.AUTH_FAILED,
  INV_ERR_ENROLL_RATE_LIMITED: CLOSE.RATE_LIMITED,
  INV_ERR_DEVICE_REVOKED: CLOSE.FORBIDDEN,
  INV_ERR_DEVICE_PENDING: CLOSE.FORBIDDEN,
  INV_ERR_FORGED_DEVICE: CLOSE.FORBIDDEN,
  INV_ERR_NOT_AUTHENTICATED: CLOSE.UNEXPECTED,
  INV_ERR_UNEXPECTED_MESSAGE: CLOSE.UNEXPECTED,
  INV_ERR_SEQ_CONFLICT: CLOSE.UNEXPECTED,
  INV_ERR_SUPERSEDED: CLOSE.SUPERSEDED,
  INV_ERR_RATE_LIMITED: CLOSE.RATE_LIMITED,
  INV_ERR_HELLO_TIMEOUT: CLOSE.HELLO_TIMEOUT,
  INV_ERR_BUSY: CLOSE.BUSY,
  INV_ERR_STORE_FAILED: CLOSE.INTERNAL,
  INV_ERR_INTERNAL: CLOSE.INTERNAL,
  // A stored device secret that does not open under this collector's key: the collector's fault, not the agent's.
  INV_ERR_SECRET_KEY_MISMATCH: CLOSE.INTERNAL,
};

export function closeCodeFor(code: ErrorCode): CloseCode {
  return CLOSE_FOR[code] ?? CLOSE.MALFORMED;
}
