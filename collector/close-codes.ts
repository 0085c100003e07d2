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

/** Close codes for the errors that have their own; every other refusal of a frame is MALFORMED. */
const CLOSE_FOR: Partial<Record<ErrorCode, CloseCode>> = {
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
  INV_ERR_RATE_LIMITED: CLOSE.RATE_LIMITED,
  INV_ERR_HELLO_TIMEOUT: CLOSE.HELLO_TIMEOUT,
  INV_ERR_BUSY: CLOSE.BUSY,
  INV_ERR_STORE_FAILED: CLOSE.INTERNAL,
  INV_ERR_INTERNAL: CLOSE.INTERNAL,
};

export function closeCodeFor(code: ErrorCode): CloseCode {
  return CLOSE_FOR[code] ?? CLOSE.MALFORMED;
}
