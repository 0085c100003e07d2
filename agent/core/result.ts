import { ERRORS, type ErrorCode } from '../../shared/errors';

/**
 * The one shape of "it did not happen, and why" that the agent's parts answer
 * each other with: a tray answer, an offline code, a restore. The code is the
 * catalogue's (the tray and the collector act on it); the message is words for
 * the log or the person, never parsed.
 */
export interface Refusal {
  ok: false;
  code: ErrorCode;
  message: string;
}

/** Done (with whatever the action gives back), or refused with a code. */
export type Outcome<T extends object = object> = ({ ok: true } & T) | Refusal;

/** A refusal in the catalogue's own words, or in `message` when the person needs more than the code says. */
export function refusal(code: ErrorCode, message: string = ERRORS[code]): Refusal {
  return { ok: false, code, message };
}
