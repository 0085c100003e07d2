import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { type ErrorCode, ERRORS } from '../shared/errors';
import { SEVERITIES, command, identifier, name, timestamp } from '../shared/protocol';
import { validate } from '../shared/schema';
import { parseUntrustedJson } from '../shared/untrusted-json';
import type { Logger } from '../node-common/logging';
import type { AgentSocket } from './agent-socket';
import type { CommandBus } from './command-bus';
import { hashToken, newId, newToken } from './device-auth';
import type { Metrics } from './metrics';
import { isCursor } from './store/cursor';
import type { CollectorStore } from './store/store';

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

const newEnrollmentToken = z.strictObject({
  note: z.string().max(500).default(''),
  /** How long the token can enroll devices: a term, by default. */
  expiresInHours: z
    .number()
    .int()
    .min(1)
    .max(24 * 366)
    .default(24 * 90),
});

const newCommand = z.strictObject({ command: command.shape.command });

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

  async function role(req: IncomingMessage): Promise<'admin' | 'readonly'> {
    const header = req.headers.authorization ?? '';
    const match = /^Bearer ([A-Za-z0-9_-]{10,200})$/.exec(header);
    const found = match ? await store.apiTokenRole(hashToken(match[1]!)) : undefined;
    if (!found) throw new HttpError(401, 'INV_ERR_API_UNAUTHORIZED');
    return found;
  }

  async function requireAdmin(req: IncomingMessage): Promise<void> {
    if ((await role(req)) !== 'admin') throw new HttpError(403, 'INV_ERR_API_FORBIDDEN');
  }

  async function route(req: IncomingMessage, url: URL): Promise<[number, unknown] | [number, string, string]> {
    const path = url.pathname;
    const method = req.method ?? 'GET';
    if (method === 'GET' && path === '/health') return [200, { status: 'ok', store: store.kind, version: options.version }];
    if (method === 'GET' && path === '/metrics') {
      await role(req);
      return [200, metrics.render(), 'text/plain; version=0.0.4; charset=utf-8'];
    }
    if (method === 'GET' && path === '/api/devices') {
      await role(req);
      const devices = await store.listDevices();
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
          })),
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
      return [201, await createEnrollmentToken(store, options.now(), body.value.note, body.value.expiresInHours)];
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
    const revokeDevice = /^\/api\/devices\/([A-Za-z0-9_-]{1,64})\/revoke$/.exec(path);
    if (method === 'POST' && revokeDevice) {
      await requireAdmin(req);
      const id = revokeDevice[1]!;
      if (!(await store.revokeDevice(id, new Date(options.now()).toISOString()))) throw new HttpError(404, 'INV_ERR_API_NOT_FOUND');
      agents.send(id, { v: 1, type: 'error', error: { code: 'INV_ERR_DEVICE_REVOKED', message: ERRORS.INV_ERR_DEVICE_REVOKED } });
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

export async function createEnrollmentToken(
  store: CollectorStore,
  nowMs: number,
  note: string,
  expiresInHours: number,
): Promise<{ id: string; token: string; expiresAt: string }> {
  const token = newToken('inv_enroll_');
  const id = newId('tok-');
  const expiresAt = new Date(nowMs + expiresInHours * 3_600_000).toISOString();
  await store.createEnrollmentToken({ id, tokenHash: hashToken(token), note, createdAt: new Date(nowMs).toISOString(), expiresAt });
  return { id, token, expiresAt };
}

function routeLabel(path: string): string {
  return ['/health', '/metrics', '/api/devices', '/api/events', '/api/enrollment-tokens'].includes(path)
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
