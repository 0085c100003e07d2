import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { type ErrorCode, ERRORS, InvigilatorError } from '../shared/errors';
import { type UsbAllowlistEntry, usbAllowlistEntry } from '../shared/policy/schema';
import { SEVERITIES, command, identifier, name, text, timestamp } from '../shared/protocol';
import { validate } from '../shared/schema';
import { OFFLINE_CODE_MAX_MINUTES, issueOfflineCode } from '../node-common/offline-code';
import { parseUntrustedJson } from '../shared/untrusted-json';
import type { Logger } from '../node-common/logging';
import type { AgentSocket } from './agent-socket';
import type { CommandBus } from './command-bus';
import { hashToken, newId, newToken } from './device-auth';
import type { Metrics } from './metrics';
import { isCursor, isKeyCursor } from './store/cursor';
import { LEASE_CURSOR } from './store/lease-row';
import { SOFTWARE_CURSOR } from './store/software-row';
import {
  type CollectorStore,
  DEVICE_APPROVALS,
  type EnrollmentApproval,
  type NewCommand,
  PERMISSION_STATUSES,
  type PermissionRequestRecord,
} from './store/store';
import { keyedEntryFor } from './usb-allow-for-all';

export interface HttpApiOptions {
  store: CollectorStore;
  agents: AgentSocket;
  bus: CommandBus;
  /** A device counts as online while a collector process has refreshed its presence within this time. */
  presenceTimeoutMs: number;
  metrics: Metrics;
  logger: Logger;
  now: () => number;
  version: string;
}

const eventQuery = z.strictObject({
  device: identifier.optional(),
  type: name.optional(),
  user: name.optional(),
  severity: z.enum(SEVERITIES).optional(),
  since: timestamp.optional(),
  until: timestamp.optional(),
  cursor: z.string().refine(isCursor, 'not a cursor this collector issued').optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

/** What a token may do unless its maker says otherwise (docs/protocol.md, "Enrollment tokens and devices"). */
export const ENROLLMENT_TOKEN_DEFAULTS = { approval: 'manual', maxUses: 100, perMinute: 10 } as const satisfies Required<EnrollmentTokenOptions>;

const newEnrollmentToken = z.strictObject({
  note: text(500).default(''),
  /** How long the token can enroll devices: a term, by default. */
  expiresInHours: z
    .number()
    .int()
    .min(1)
    .max(24 * 366)
    .default(24 * 90),
  /** `manual`: each device it enrolls waits for approval; `automatic`: counts at once. */
  approval: z.enum(['manual', 'automatic']).default(ENROLLMENT_TOKEN_DEFAULTS.approval),
  maxUses: z.number().int().min(1).max(10_000).default(ENROLLMENT_TOKEN_DEFAULTS.maxUses),
  perMinute: z.number().int().min(1).max(1000).default(ENROLLMENT_TOKEN_DEFAULTS.perMinute),
});

const newCommand = z.strictObject({ command: command.shape.command });

const permissionQuery = z.strictObject({
  status: z.enum(PERMISSION_STATUSES).optional(),
  device: identifier.optional(),
  cursor: z.string().refine(isCursor, 'not a cursor this collector issued').optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

const permissionDecisionBody = z.strictObject({
  decision: z.enum(['approved', 'refused']),
  /** Shown to the user with the decision. */
  note: text(1000).optional(),
  /** When an approval ends: in the future, at most a year ahead. Absent: until removed. */
  expiresAt: timestamp.optional(),
  /** A USB device approved for the requesting computer only (default) or for every computer. */
  scope: z.enum(['device', 'all']).optional(),
});

/** The longest an approval may be given for. */
const MAX_APPROVAL_MS = 365 * 24 * 3_600_000;

const hexId = z
  .string()
  .regex(/^[0-9a-fA-F]{4}$/, 'four hex digits')
  .transform((v) => v.toLowerCase());
const offlineCodeBody = z.strictObject({
  vendorId: hexId,
  productId: hexId,
  serial: name.optional(),
  validMinutes: z.number().int().min(1).max(OFFLINE_CODE_MAX_MINUTES),
});

const ENTRY_NOTE_MAX = 500;

/** Every list is paged alike: `limit` 1–1000 (default 100) and `cursor`, the previous page's `next`, of that list's kind only. */
const pageLimit = z.coerce.number().int().min(1).max(1000).default(100);
const keyCursor = (kind: string, parts: number) => z.string().refine(isKeyCursor(kind, parts), 'not a cursor this collector issued for this list').optional();

const deviceQuery = z.strictObject({ approval: z.enum(DEVICE_APPROVALS).optional(), cursor: keyCursor('device', 1), limit: pageLimit });

const sessionQuery = z.strictObject({
  /** Any case: leases are matched on the user name's lower case. */
  user: name.min(1).optional(),
  device: identifier.optional(),
  cursor: keyCursor(LEASE_CURSOR, 3),
  limit: pageLimit,
});

const softwareQuery = z.strictObject({
  /** Part of the program's name, in any case. */
  q: name.min(1).optional(),
  cursor: keyCursor(SOFTWARE_CURSOR, 1),
  limit: pageLimit,
});

const logoffReason = text(500).optional();
const logoffBody = z.discriminatedUnion('scope', [
  z.strictObject({ scope: z.literal('session'), deviceId: identifier, sessionId: identifier, reason: logoffReason }),
  /** Every device where the user holds a live lease. */
  z.strictObject({ scope: z.literal('user'), user: name.min(1), reason: logoffReason }),
  z.strictObject({ scope: z.literal('device'), deviceId: identifier, reason: logoffReason }),
]);
type LogoffRequest = z.infer<typeof logoffBody>;

const MAX_BODY_BYTES = 64 * 1024;

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    detail?: string,
  ) {
    super(detail ?? ERRORS[code]);
  }
}

/**
 * The network manager's JSON API. Every route but `/health` needs
 * `Authorization: Bearer <token>`; tokens are compared by hash.
 */
export function createHttpApi(options: HttpApiOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const { store, agents, metrics, logger } = options;
  const log = logger.child({ component: 'http-api' });
  metrics.describe('invigilator_http_requests_total', 'HTTP API requests, by route and status');

  /** The caller's API token: its id (who did it, for the record) and its role. */
  async function role(req: IncomingMessage): Promise<{ id: string; role: 'admin' | 'readonly' }> {
    const header = req.headers.authorization ?? '';
    const match = /^Bearer ([A-Za-z0-9_-]{10,200})$/.exec(header);
    const found = match ? await store.apiToken(hashToken(match[1]!)) : undefined;
    if (!found) throw new HttpError(401, 'INV_ERR_API_UNAUTHORIZED');
    return found;
  }

  async function requireAdmin(req: IncomingMessage): Promise<{ id: string; role: 'admin' | 'readonly' }> {
    const token = await role(req);
    if (token.role !== 'admin') throw new HttpError(403, 'INV_ERR_API_FORBIDDEN');
    return token;
  }

  const badBody = (problems: ReadonlyArray<{ path: string; message: string }>) =>
    new HttpError(400, 'INV_ERR_API_BAD_QUERY', problems.map((p) => `${p.path}: ${p.message}`).join('; '));

  /** Tells whichever process holds each device's connection to look for what is waiting; a lost notice only delays it to the next connection. */
  async function announce(deviceIds: readonly string[]): Promise<void> {
    for (const id of deviceIds) {
      await options.bus.publish(id).catch((e: unknown) => log.warn('could not announce to the command bus', { deviceId: id, error: String(e) }));
    }
  }

  async function decide(deviceId: string, requestId: string, by: string, body: unknown): Promise<[number, unknown]> {
    const parsed = validate(permissionDecisionBody, body);
    if (!parsed.ok) throw badBody(parsed.problems);
    const d = parsed.value;
    const nowMs = options.now();
    const now = new Date(nowMs).toISOString();
    if (d.decision === 'refused' && (d.expiresAt !== undefined || d.scope !== undefined))
      throw new HttpError(400, 'INV_ERR_API_BAD_QUERY', '$.expiresAt, $.scope: only for an approval');
    let expiresAt: string | null = null;
    if (d.expiresAt !== undefined) {
      const ms = Date.parse(d.expiresAt);
      if (ms <= nowMs) throw new HttpError(400, 'INV_ERR_API_BAD_QUERY', '$.expiresAt: must be in the future');
      if (ms > nowMs + MAX_APPROVAL_MS) throw new HttpError(400, 'INV_ERR_API_BAD_QUERY', '$.expiresAt: at most 365 days ahead');
      expiresAt = new Date(ms).toISOString();
    }
    const request = await store.getPermissionRequest(deviceId, requestId);
    if (!request) throw new HttpError(404, 'INV_ERR_PERMISSION_NOT_FOUND');
    if (request.status !== 'pending') throw new HttpError(409, 'INV_ERR_PERMISSION_DECIDED', `it was ${request.status}`);

    const scope = d.decision === 'approved' ? (d.scope ?? 'device') : null;
    let entry: UsbAllowlistEntry | null = null;
    const commands: NewCommand[] = [];
    if (d.decision === 'approved' && request.kind === 'usb-device') {
      entry = allowlistEntryFor(request, { by, scope: scope!, expiresAt });
      commands.push({ id: newId('cmd-'), deviceId, command: { kind: 'usb-allow', entry }, createdAt: now });
      if (scope === 'all') {
        // Every other approved computer gets the entry keyed to itself: a digest it can match, not the device's ids.
        const others = (await store.listDevices()).filter((dev) => dev.revokedAt === null && dev.approval === 'approved' && dev.id !== deviceId);
        for (const other of others) {
          const auth = await store.deviceAuth(other.id);
          if (!auth) continue;
          commands.push({
            id: newId('cmd-'),
            deviceId: other.id,
            command: { kind: 'usb-allow', entry: keyedEntryFor(entry, auth.secret, by) },
            createdAt: now,
          });
        }
      }
    }
    let record: PermissionRequestRecord;
    try {
      record = await store.decidePermissionRequest(
        deviceId,
        requestId,
        { decision: d.decision, decidedAt: now, decidedBy: by, note: d.note ?? null, expiresAt, scope },
        commands,
      );
    } catch (e) {
      if (e instanceof InvigilatorError && e.code === 'INV_ERR_PERMISSION_DECIDED') throw new HttpError(409, e.code, e.message);
      if (e instanceof InvigilatorError && e.code === 'INV_ERR_PERMISSION_NOT_FOUND') throw new HttpError(404, e.code, e.message);
      throw e;
    }
    log.info('permission request decided', { deviceId, requestId, decision: d.decision, by, scope, expiresAt, entryId: entry?.id, commands: commands.length });
    // The command(s) and the decision are stored: whichever process holds each device sends them, now or when it next connects.
    await announce([...new Set([deviceId, ...commands.map((c) => c.deviceId)])]);
    return [200, { request: record, entry, commandIds: commands.map((c) => c.id) }];
  }

  /**
   * Queues `logoff` commands through the existing command path (stored, then
   * announced; sent by whichever process holds each device, now or when it
   * next connects; results reported by `command.result`, at /api/commands/ID).
   */
  async function logoff(request: LogoffRequest, by: string): Promise<[number, unknown]> {
    const now = new Date(options.now()).toISOString();
    const reason = request.reason ?? 'signed out by the network manager';
    const commands: NewCommand[] = [];
    if (request.scope === 'user') {
      const leases = await store.liveLeases({ user: request.user, now });
      if (leases.length === 0) throw new HttpError(404, 'INV_ERR_API_NOT_FOUND', `no live session of ${request.user}`);
      // One command per device, naming the user as that device gave the name (in its oldest lease).
      const byDevice = new Map<string, string>();
      for (const l of leases) if (!byDevice.has(l.deviceId)) byDevice.set(l.deviceId, l.user);
      for (const [deviceId, user] of byDevice) {
        commands.push({ id: newId('cmd-'), deviceId, command: { kind: 'logoff', target: { scope: 'user', user }, reason }, createdAt: now });
      }
    } else {
      const auth = await store.deviceAuth(request.deviceId);
      if (!auth) throw new HttpError(404, 'INV_ERR_API_NOT_FOUND', `no device ${request.deviceId}`);
      if (auth.approval === 'pending') throw new HttpError(409, 'INV_ERR_DEVICE_PENDING');
      const target = request.scope === 'session' ? { scope: 'session' as const, sessionId: request.sessionId } : { scope: 'device' as const };
      commands.push({ id: newId('cmd-'), deviceId: request.deviceId, command: { kind: 'logoff', target, reason }, createdAt: now });
    }
    for (const c of commands) await store.createCommand(c);
    log.info('logoff requested', { scope: request.scope, by, commands: commands.map((c) => ({ commandId: c.id, deviceId: c.deviceId })) });
    await announce(commands.map((c) => c.deviceId));
    return [202, { commands: commands.map((c) => ({ commandId: c.id, deviceId: c.deviceId })) }];
  }

  async function route(req: IncomingMessage, url: URL): Promise<[number, unknown] | [number, string, string]> {
    const path = url.pathname;
    const method = req.method ?? 'GET';
    if (method === 'GET' && path === '/health') {
      // Anyone may ask whether it is up; what runs here (the version a scanner would match) is for a valid token only.
      const known = await role(req).then(
        () => true,
        () => false,
      );
      return [200, known ? { status: 'ok', store: store.kind, version: options.version } : { status: 'ok' }];
    }
    if (method === 'GET' && path === '/metrics') {
      await role(req);
      return [200, metrics.render(), 'text/plain; version=0.0.4; charset=utf-8'];
    }
    if (method === 'GET' && path === '/api/devices') {
      await role(req);
      const query = validate(deviceQuery, Object.fromEntries(url.searchParams));
      if (!query.ok) throw badBody(query.problems.map((p) => ({ ...p, path: p.path.replace(/^\$\./, '') })));
      const { devices, next } = await store.listDevicePage(query.value);
      return [
        200,
        {
          devices: devices.map((d) => ({
            id: d.id,
            hostname: d.hostname,
            platform: d.platform,
            lastSeen: d.lastSeen,
            online:
              agents.isOnline(d.id) ||
              (d.connectedTo !== null && d.presenceAt !== null && Date.parse(d.presenceAt) > options.now() - options.presenceTimeoutMs),
            agentVersion: d.agentVersion,
            policyVersion: d.policyRevision,
            revoked: d.revokedAt !== null,
            approval: d.approval,
            enrolledAt: d.enrolledAt,
            enrolledFrom: d.enrolledFrom,
            tokenId: d.tokenId,
            decidedAt: d.decidedAt,
            decidedBy: d.decidedBy,
          })),
          next,
        },
      ];
    }
    if (method === 'GET' && path === '/api/events') {
      await role(req);
      const query = validate(eventQuery, Object.fromEntries(url.searchParams));
      if (!query.ok) throw new HttpError(400, 'INV_ERR_API_BAD_QUERY', query.problems.map((p) => `${p.path.replace(/^\$\./, '')}: ${p.message}`).join('; '));
      return [200, await store.queryEvents(query.value)];
    }
    if (method === 'POST' && path === '/api/enrollment-tokens') {
      await requireAdmin(req);
      const body = validate(newEnrollmentToken, await readJson(req));
      if (!body.ok) throw new HttpError(400, 'INV_ERR_API_BAD_QUERY', body.problems.map((p) => `${p.path}: ${p.message}`).join('; '));
      const { note, expiresInHours, approval, maxUses, perMinute } = body.value;
      return [201, await createEnrollmentToken(store, options.now(), note, expiresInHours, { approval, maxUses, perMinute })];
    }
    if (method === 'GET' && path === '/api/enrollment-tokens') {
      await requireAdmin(req);
      // What each token may still do; never the token, which was shown once, to whoever made it.
      return [200, { tokens: await store.listEnrollmentTokens() }];
    }
    const deviceDecision = /^\/api\/devices\/([A-Za-z0-9_-]{1,64})\/(approve|refuse)$/.exec(path);
    if (method === 'POST' && deviceDecision) {
      const token = await requireAdmin(req);
      const [id, verb] = [deviceDecision[1]!, deviceDecision[2]!];
      const auth = await store.deviceAuth(id);
      if (!auth) throw new HttpError(404, 'INV_ERR_API_NOT_FOUND', `no device ${id}`);
      const decision = verb === 'approve' ? 'approved' : 'refused';
      if (!(await store.decideDevice(id, decision, new Date(options.now()).toISOString(), token.id)))
        throw new HttpError(409, 'INV_ERR_DEVICE_NOT_PENDING', `device ${id} is ${auth.revoked ? 'revoked' : auth.approval}`);
      log.info('device decided', { deviceId: id, decision, by: token.id });
      return [200, { deviceId: id, approval: decision }];
    }
    const revokeToken = /^\/api\/enrollment-tokens\/([A-Za-z0-9_-]{1,64})$/.exec(path);
    if (method === 'DELETE' && revokeToken) {
      await requireAdmin(req);
      if (!(await store.revokeEnrollmentToken(revokeToken[1]!, new Date(options.now()).toISOString()))) throw new HttpError(404, 'INV_ERR_API_NOT_FOUND');
      return [200, { revoked: revokeToken[1] }];
    }
    const deviceCommands = /^\/api\/devices\/([A-Za-z0-9_-]{1,64})\/commands$/.exec(path);
    if (method === 'POST' && deviceCommands) {
      await requireAdmin(req);
      const deviceId = deviceCommands[1]!;
      const body = validate(newCommand, await readJson(req));
      if (!body.ok) throw new HttpError(400, 'INV_ERR_API_BAD_QUERY', body.problems.map((p) => `${p.path}: ${p.message}`).join('; '));
      const auth = await store.deviceAuth(deviceId);
      if (!auth) throw new HttpError(404, 'INV_ERR_API_NOT_FOUND');
      if (auth.approval === 'pending') throw new HttpError(409, 'INV_ERR_DEVICE_PENDING');
      const commandId = newId('cmd-');
      // Stored first, then announced: whichever process holds the device's connection sends it, now or when it next connects.
      await store.createCommand({ id: commandId, deviceId, command: body.value.command, createdAt: new Date(options.now()).toISOString() });
      await options.bus.publish(deviceId);
      return [202, { commandId }];
    }
    const commandStatus = /^\/api\/commands\/([A-Za-z0-9_-]{1,64})$/.exec(path);
    if (method === 'GET' && commandStatus) {
      await role(req);
      const record = await store.getCommand(commandStatus[1]!);
      if (!record) throw new HttpError(404, 'INV_ERR_API_NOT_FOUND');
      return [200, record];
    }
    if (method === 'GET' && path === '/api/permission-requests') {
      await role(req);
      const query = validate(permissionQuery, Object.fromEntries(url.searchParams));
      if (!query.ok) throw badBody(query.problems.map((p) => ({ ...p, path: p.path.replace(/^\$\./, '') })));
      return [200, await store.listPermissionRequests(query.value)];
    }
    const permission = /^\/api\/permission-requests\/([^/]{1,400})\/([^/]{1,400})(\/decision)?$/.exec(path);
    if (permission) {
      const [deviceId, requestId] = [permissionPart(permission[1]!), permissionPart(permission[2]!)];
      if (method === 'GET' && !permission[3]) {
        await role(req);
        const record = deviceId && requestId ? await store.getPermissionRequest(deviceId, requestId) : undefined;
        if (!record) throw new HttpError(404, 'INV_ERR_PERMISSION_NOT_FOUND');
        return [200, record];
      }
      if (method === 'POST' && permission[3]) {
        const token = await requireAdmin(req);
        const body = await readJson(req);
        if (!deviceId || !requestId) throw new HttpError(404, 'INV_ERR_PERMISSION_NOT_FOUND');
        return decide(deviceId, requestId, token.id, body);
      }
    }
    if (method === 'GET' && path === '/api/sessions') {
      await role(req);
      const query = validate(sessionQuery, Object.fromEntries(url.searchParams));
      if (!query.ok) throw badBody(query.problems.map((p) => ({ ...p, path: p.path.replace(/^\$\./, '') })));
      const { user, device, cursor, limit } = query.value;
      const page = await store.listLiveLeasePage({
        now: new Date(options.now()).toISOString(),
        limit,
        ...(user !== undefined ? { user } : {}),
        ...(device !== undefined ? { deviceId: device } : {}),
        ...(cursor !== undefined ? { cursor } : {}),
      });
      return [200, { sessions: page.sessions, next: page.next }];
    }
    if (method === 'POST' && path === '/api/sessions/logoff') {
      const token = await requireAdmin(req);
      const body = validate(logoffBody, await readJson(req));
      if (!body.ok) throw badBody(body.problems);
      return logoff(body.value, token.id);
    }
    const offlineCodes = /^\/api\/devices\/([A-Za-z0-9_-]{1,64})\/offline-codes$/.exec(path);
    if (method === 'POST' && offlineCodes) {
      const token = await requireAdmin(req);
      const deviceId = offlineCodes[1]!;
      const body = validate(offlineCodeBody, await readJson(req));
      if (!body.ok) throw badBody(body.problems);
      const auth = await store.deviceAuth(deviceId);
      if (!auth) throw new HttpError(404, 'INV_ERR_API_NOT_FOUND');
      if (auth.revoked) throw new HttpError(409, 'INV_ERR_DEVICE_REVOKED');
      if (auth.approval === 'pending') throw new HttpError(409, 'INV_ERR_DEVICE_PENDING');
      const { vendorId, productId, serial, validMinutes } = body.value;
      const issued = issueOfflineCode(auth.secret, { deviceId, vendorId, productId, serial }, options.now(), validMinutes);
      // Never the code itself in the log: it is a credential until it expires.
      log.info('offline code issued', { deviceId, vendorId, productId, serial, validMinutes, expiresAt: issued.expiresAt, by: token.id });
      return [201, { code: issued.code, expiresAt: issued.expiresAt, deviceId, vendorId, productId, serial: serial ?? null }];
    }
    const deviceSoftware = /^\/api\/devices\/([A-Za-z0-9_-]{1,64})\/software$/.exec(path);
    if (method === 'GET' && deviceSoftware) {
      await role(req);
      const query = validate(softwareQuery, Object.fromEntries(url.searchParams));
      if (!query.ok) throw badBody(query.problems.map((p) => ({ ...p, path: p.path.replace(/^\$\./, '') })));
      const deviceId = deviceSoftware[1]!;
      if (!(await store.deviceAuth(deviceId))) throw new HttpError(404, 'INV_ERR_API_NOT_FOUND', `no device ${deviceId}`);
      const { q, cursor, limit } = query.value;
      const page = await store.listSoftware(deviceId, { limit, ...(q !== undefined ? { q } : {}), ...(cursor !== undefined ? { cursor } : {}) });
      return [200, { deviceId, software: page.software, next: page.next }];
    }
    const revokeDevice = /^\/api\/devices\/([A-Za-z0-9_-]{1,64})\/revoke$/.exec(path);
    if (method === 'POST' && revokeDevice) {
      await requireAdmin(req);
      const id = revokeDevice[1]!;
      if (!(await store.revokeDevice(id, new Date(options.now()).toISOString()))) throw new HttpError(404, 'INV_ERR_API_NOT_FOUND');
      // Closed here at once, and by whichever other process holds it through the bus. A lost notice only
      // delays the close to that process's next heartbeat: the store already refuses the device's events.
      agents.revoke(id);
      await options.bus.publishRevoked(id).catch((e: unknown) => log.warn('could not announce a revocation', { deviceId: id, error: String(e) }));
      return [200, { revoked: id }];
    }
    throw new HttpError(404, 'INV_ERR_API_NOT_FOUND');
  }

  return (req, res) => {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://collector.invalid');
    } catch {
      return respond(res, 400, { error: { code: 'INV_ERR_API_BAD_QUERY', message: 'bad URL' } });
    }
    route(req, url)
      .then((result) => {
        metrics.inc('invigilator_http_requests_total', { route: routeLabel(url.pathname), status: result[0] });
        if (result.length === 3) respondText(res, result[0], result[1], result[2]);
        else respond(res, result[0], result[1]);
      })
      .catch((e: unknown) => {
        const err = e instanceof HttpError ? e : new HttpError(500, 'INV_ERR_INTERNAL');
        if (!(e instanceof HttpError)) log.error('API request failed', { path: url.pathname, error: String(e) });
        metrics.inc('invigilator_http_requests_total', { route: routeLabel(url.pathname), status: err.status });
        respond(res, err.status, { error: { code: err.code, message: err.message } });
      });
  };
}

export interface EnrollmentTokenOptions {
  approval?: EnrollmentApproval;
  maxUses?: number;
  perMinute?: number;
}

/** A new enrollment token, stored as its hash: the token itself is returned this once. Defaults: ENROLLMENT_TOKEN_DEFAULTS. */
export async function createEnrollmentToken(
  store: CollectorStore,
  nowMs: number,
  note: string,
  expiresInHours: number,
  options: EnrollmentTokenOptions = {},
): Promise<{ id: string; token: string; expiresAt: string; approval: EnrollmentApproval; maxUses: number; perMinute: number }> {
  const token = newToken('inv_enroll_');
  const id = newId('tok-');
  const expiresAt = new Date(nowMs + expiresInHours * 3_600_000).toISOString();
  const limits = { ...ENROLLMENT_TOKEN_DEFAULTS, ...options };
  await store.createEnrollmentToken({ id, tokenHash: hashToken(token), note, createdAt: new Date(nowMs).toISOString(), expiresAt, ...limits });
  return { id, token, expiresAt, ...limits };
}

/** A path segment naming a device or a request: percent-decoded, and an identifier, or undefined. */
function permissionPart(segment: string): string | undefined {
  let decoded: string;
  try {
    decoded = decodeURIComponent(segment);
  } catch {
    return undefined;
  }
  return identifier.safeParse(decoded).success ? decoded : undefined;
}

/**
 * The allowlist entry an approved USB request becomes: the device's ids (as
 * the allowlist spells them, lower-case hex), on the requesting computer only
 * or everywhere, with who approved it and why in the note.
 */
function allowlistEntryFor(request: PermissionRequestRecord, options: { by: string; scope: 'device' | 'all'; expiresAt: string | null }): UsbAllowlistEntry {
  const vendorId = request.subject.vendorId?.toLowerCase();
  const productId = request.subject.productId?.toLowerCase();
  const note = `Approved by ${options.by} for ${request.user.name} (request ${request.requestId} from ${request.deviceId}): ${request.reason}`;
  const entry = {
    id: newId('allow-'),
    vendorId,
    productId,
    ...(request.subject.serial !== undefined && request.subject.serial !== '' ? { serial: request.subject.serial } : {}),
    ...(options.expiresAt !== null ? { expiresAt: options.expiresAt } : {}),
    ...(options.scope === 'device' ? { devices: [request.deviceId] } : {}),
    note: note.length > ENTRY_NOTE_MAX ? `${note.slice(0, ENTRY_NOTE_MAX - 1)}…` : note,
  };
  const checked = validate(usbAllowlistEntry, entry);
  if (!checked.ok)
    throw new HttpError(
      400,
      'INV_ERR_API_BAD_QUERY',
      `the request does not name a USB device the allowlist can hold (${checked.problems.map((p) => `${p.path}: ${p.message}`).join('; ')}); refuse it, or issue an offline code`,
    );
  return checked.value;
}

function routeLabel(path: string): string {
  return ['/health', '/metrics', '/api/devices', '/api/events', '/api/enrollment-tokens', '/api/sessions', '/api/sessions/logoff'].includes(path)
    ? path
    : path.startsWith('/api/')
      ? '/api/other'
      : 'other';
}

function respond(res: ServerResponse, status: number, body: unknown): void {
  respondText(res, status, JSON.stringify(body), 'application/json; charset=utf-8');
}

function respondText(res: ServerResponse, status: number, body: string, type: string): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, 'INV_ERR_INPUT_TOO_LARGE');
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return {};
  const parsed = parseUntrustedJson(Buffer.concat(chunks), { maxBytes: MAX_BODY_BYTES, maxDepth: 8 });
  if (!parsed.ok) throw new HttpError(400, parsed.problems[0]!.code, parsed.problems[0]!.message);
  return parsed.value;
}
