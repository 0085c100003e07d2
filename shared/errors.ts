/**
 * The one error catalogue. Every failure that crosses a boundary (a frame, an
 * IPC message, a policy file, a configuration, a CLI argument) carries one of
 * these codes. Tests assert on codes, never on message text, so wording can be
 * improved without breaking anything.
 */
export const ERRORS = {
  // Untrusted input: bytes and JSON before any schema is applied.
  INV_ERR_INPUT_TOO_LARGE: 'the input is larger than allowed',
  INV_ERR_INVALID_UTF8: 'the input is not valid UTF-8',
  INV_ERR_INVALID_JSON: 'the input is not valid JSON',
  INV_ERR_TOO_DEEP: 'the input is nested deeper than allowed',
  INV_ERR_FORBIDDEN_KEY: 'the input uses a forbidden key (__proto__, constructor or prototype)',
  // Schema validation: one of these per problem, each with a JSON path.
  INV_ERR_SCHEMA_TYPE: 'a value has the wrong type',
  INV_ERR_SCHEMA_REQUIRED: 'a required field is missing',
  INV_ERR_SCHEMA_UNKNOWN_FIELD: 'a field is not part of the schema',
  INV_ERR_SCHEMA_VALUE: 'a value is not one of those allowed',
  INV_ERR_SCHEMA_RANGE: 'a value is too small, too large, too short or too long',
  INV_ERR_SCHEMA_FORMAT: 'a value does not have the required format',
  INV_ERR_SCHEMA_INVALID: 'a value is not valid',
  // Protocol.
  INV_ERR_PROTOCOL_VERSION: 'the message uses a protocol version this program does not speak',
  INV_ERR_UNKNOWN_MESSAGE: 'the message type is not known',
  // Policy documents: consistency beyond the schema.
  INV_ERR_POLICY_UNKNOWN_CLAUSE: 'a rule cites a clause the policy does not define',
  INV_ERR_POLICY_UNKNOWN_ROLE: 'a setting names a role the policy does not define',
  INV_ERR_POLICY_DUPLICATE: 'an identifier is defined twice',
  INV_ERR_POLICY_NOT_FOUND: 'no policy preset has that name',
  INV_ERR_POLICY_REVISION_STALE: 'the policy differs from the one it replaces but its revision was not raised (a warning)',
  // Configuration and command line.
  INV_ERR_CONFIG_INVALID: 'the configuration is not valid',
  INV_ERR_CONFIG_UNREADABLE: 'the configuration file cannot be read',
  INV_ERR_USAGE: 'the command line is not valid',
  INV_ERR_FILE_UNREADABLE: 'the file cannot be read',
  INV_ERR_DATA_DIR_NOT_A_FOLDER: 'the data folder cannot be made there: a file is in the way',
  INV_ERR_DATA_DIR_UNWRITABLE: 'the data folder cannot be created or written by the user this runs as',
  INV_ERR_DATA_DIR_UNSAFE: "the data folder is not private: another user owns it, it is shared, or it holds other programs' files",
  INV_ERR_TLS_INVALID: 'a TLS certificate or key file is not a PEM certificate and its private key',
  // Runtime.
  INV_ERR_STORE_FAILED: 'the event store failed',
  INV_ERR_STORE_UNWRITABLE: 'the SQLite database cannot be created or written at that path',
  INV_ERR_STORE_CORRUPT: 'the SQLite database file is not a database, or is damaged',
  INV_ERR_LISTEN_FAILED: 'the server could not listen on its address',
  INV_ERR_PORT_IN_USE: 'another program is already listening on that port',
  INV_ERR_AUTH_FAILED: 'the peer could not be authenticated',
  INV_ERR_ENROLL_TOKEN_INVALID: 'the enrollment token is unknown, expired or revoked',
  INV_ERR_ENROLL_TOKEN_USED_UP: 'the enrollment token has enrolled as many devices as it may',
  INV_ERR_ENROLL_RATE_LIMITED: 'the enrollment token has enrolled as many devices as it may in one minute; retry later',
  INV_ERR_DEVICE_REVOKED: 'the device has been revoked',
  INV_ERR_DEVICE_PENDING: 'the device is waiting for the network manager to approve it; retry later',
  INV_ERR_DEVICE_NOT_PENDING: 'the device is not waiting for approval',
  INV_ERR_NOT_AUTHENTICATED: 'the peer sent a message before authenticating',
  INV_ERR_UNEXPECTED_MESSAGE: 'the message is not allowed at this point of the conversation',
  INV_ERR_FORGED_DEVICE: 'the message speaks for a device other than the one authenticated',
  INV_ERR_RATE_LIMITED: 'the peer sent more than its rate allows',
  INV_ERR_BUSY: 'the server is busy; retry later',
  INV_ERR_HELLO_TIMEOUT: 'the peer did not say hello in time',
  INV_ERR_EVENT_TOO_LARGE: 'the event is larger than the outbox keeps; a stand-in saying what it was is kept instead',
  INV_ERR_SUPERSEDED: 'a newer connection for this device replaced this one',
  INV_ERR_BINARY_FRAME: 'frames are JSON text; a binary frame is not accepted',
  INV_ERR_BATCH_NOT_ASCENDING: 'the events of a batch are not in strictly ascending seq order',
  INV_ERR_SEQ_CONFLICT: 'a sequence number in the batch is already stored for another event',
  INV_ERR_NOT_SUPPORTED: 'this server does not handle that request yet',
  INV_ERR_API_UNAUTHORIZED: 'the request has no valid API token',
  INV_ERR_API_FORBIDDEN: 'the API token does not allow this request',
  INV_ERR_API_NOT_FOUND: 'no such resource',
  INV_ERR_API_BAD_QUERY: 'a query parameter is not valid',
  INV_ERR_VOLUME_TOO_SMALL: 'the volume is empty or too small to hold any known format',
  INV_ERR_VOLUME_UNREADABLE: 'the volume could not be read within the limits',
  // Operating-system programs the agent runs (agent/os/command-runner.ts, the PowerShell session). The detail names the program.
  INV_ERR_OS_COMMAND_NOT_STARTED:
    'an operating-system program could not be started: check that it is installed where the agent looks and that the account the agent runs as may run it',
  INV_ERR_OS_COMMAND_TIMEOUT:
    'an operating-system program did not finish in time and was stopped: if the computer was very busy this passes by itself; if it keeps happening, the program is hanging',
  INV_ERR_OS_COMMAND_OVERFLOW:
    'an operating-system program printed more than the agent reads, so its answer was not used: the computer has far more devices, sessions or programs than expected; report it with the program named',
  INV_ERR_OS_COMMAND_KILLED:
    'an operating-system program was ended by a signal before it finished: something else on the computer stopped it (security software, a shutdown, an administrator)',
  INV_ERR_OS_COMMAND_FAILED:
    "an operating-system program ran and reported a failure: the detail says which program and how it ended; run it by hand as the agent's account to see why",
  // USB control: the OS adapters, permission requests and offline exception codes.
  INV_ERR_USB_OS_COMMAND_FAILED: 'an operating-system command for USB control failed',
  INV_ERR_USB_OS_OUTPUT_INVALID: 'an operating-system command printed something that could not be understood',
  INV_ERR_USB_DEVICE_GONE: 'the USB device was removed before the action finished',
  INV_ERR_USB_READONLY_UNSUPPORTED: 'this operating system cannot make that device read-only',
  INV_ERR_PERMISSION_NOT_FOUND: 'no such permission request',
  INV_ERR_PERMISSION_DECIDED: 'the permission request has already been decided',
  INV_ERR_OFFLINE_CODE_INVALID: 'the offline code is not valid for this device and this computer',
  INV_ERR_OFFLINE_CODE_EXPIRED: 'the offline code has expired',
  INV_ERR_OFFLINE_CODE_USED: 'the offline code has been used already',
  INV_ERR_OFFLINE_CODE_THROTTLED: 'too many wrong offline codes; wait before trying again',
  INV_ERR_PERMISSION_REQUESTS_FULL: 'you have asked many times already; please wait for an answer before you ask again',
  INV_ERR_SESSION_UNKNOWN: 'no such session of this user on this computer',
  INV_ERR_SIGN_OUT_FAILED: 'the operating system did not end the session',
  // Login limit.
  INV_ERR_LEASE_NOT_FOUND: 'this device holds no live login lease for that session; claim it again',
  INV_ERR_LOGIN_DEVICE_FULL: 'this computer already holds login places for as many users as one computer may',
  INV_ERR_LOGIN_CLAIMS_THROTTLED: 'this computer has claimed for too many new users, or ended too many other sessions, in the last hour',
  INV_ERR_LOGOFF_NOT_CANCELLABLE: 'the policy does not let this logoff be put off',
  // Software control: files and the quarantine.
  INV_ERR_QUARANTINE_FAILED: 'the file could not be moved into quarantine; it was left where it was',
  INV_ERR_QUARANTINE_UNKNOWN: 'no quarantined file has that id on this computer',
  INV_ERR_QUARANTINE_RESTORED: 'that quarantined file has already been restored',
  INV_ERR_QUARANTINE_DAMAGED: 'the quarantined file or its record is not what was quarantined',
  INV_ERR_RESTORE_TARGET_EXISTS: 'something already exists where the file would be restored',
  INV_ERR_RESTORE_FOLDER_MISSING: 'the folder the file came from no longer exists',
  INV_ERR_RESTORE_UNSAFE_PATH: 'the file cannot be restored there safely (the path goes through a link, or its owner cannot write there)',
  INV_ERR_RESTORE_FAILED: 'the file could not be restored; it is still in quarantine',
  // Software inventory.
  INV_ERR_INVENTORY_UNREADABLE: 'the list of installed software could not be read',
  INV_ERR_INVENTORY_TOO_LARGE: 'the device reported more installed programs than the collector keeps for one device',
  // Collector store.
  INV_ERR_SECRET_KEY_MISMATCH: "the database's device secrets are sealed under another key than this collector's",
  INV_ERR_INTERNAL: 'an internal error occurred',
} as const;

export type ErrorCode = keyof typeof ERRORS;

export const ERROR_CODES = Object.keys(ERRORS) as ErrorCode[];

/** A problem found in untrusted input, located by a JSON path such as `$.usbStorage.mode`. */
export interface InputProblem {
  readonly code: ErrorCode;
  readonly path: string;
  readonly message: string;
}

/** An error that knows its catalogue code. Thrown only inside a program, never across a boundary. */
export class InvigilatorError extends Error {
  readonly code: ErrorCode;
  readonly problems: readonly InputProblem[];

  constructor(code: ErrorCode, detail?: string, problems: readonly InputProblem[] = []) {
    super(detail ? `${ERRORS[code]}: ${detail}` : ERRORS[code]);
    this.name = 'InvigilatorError';
    this.code = code;
    this.problems = problems;
  }
}

/** The outcome of decoding untrusted input: never throws, always says why. */
export type Decoded<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly problems: readonly InputProblem[] };

export function problem(code: ErrorCode, path = '$', detail?: string): InputProblem {
  return { code, path, message: detail ?? ERRORS[code] };
}

export function failure(...problems: InputProblem[]): { ok: false; problems: InputProblem[] } {
  return { ok: false, problems };
}

/** One line per problem, for terminals and logs: `INV_ERR_X at $.a.b: message`. */
export function formatProblems(problems: readonly InputProblem[]): string {
  return problems.map((p) => `${p.code} at ${p.path}: ${p.message}`).join('\n');
}
