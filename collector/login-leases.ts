import type { ErrorCode } from '../shared/errors';
import { settingsFor } from '../shared/policy/resolve';
import type { LoginLimitSettings, Policy } from '../shared/policy/schema';
import { type AgentToCollector, type CollectorToAgent, PROTOCOL_VERSION } from '../shared/protocol';
import type { Logger } from '../node-common/logging';
import type { CommandBus } from './command-bus';
import { newId } from './device-auth';
import type { Metrics } from './metrics';
import { userKey } from './store/lease-row';
import type { CollectorStore, LeaseVerdict } from './store/store';

/**
 * What one computer may do in the login limit, whoever it says is signed in
 * (docs/architecture.md, "Login limit: who may speak for a user"). A school
 * computer has one person at the screen and perhaps a few more sessions; an
 * approved rogue device claiming for many pupils is held to these.
 */
export interface LoginLeaseLimits {
  /** Distinct users one computer may hold login places for at once. */
  maxUsersPerDevice: number;
  /** Users a computer may claim for in an hour that it had not already claimed for in that hour. */
  newUsersPerDevicePerHour: number;
  /** Other sessions a computer may end (an accepted `login.evict`) in an hour. */
  evictionsPerDevicePerHour: number;
}

export const DEFAULT_LOGIN_LEASE_LIMITS: LoginLeaseLimits = {
  maxUsersPerDevice: 4,
  newUsersPerDevicePerHour: 20,
  evictionsPerDevicePerHour: 6,
};

const HOUR_MS = 3_600_000;

export interface LoginLeasesOptions {
  store: CollectorStore;
  bus: CommandBus;
  policy: () => Policy;
  logger: Logger;
  metrics: Metrics;
  now: () => number;
  limits: LoginLeaseLimits;
}

/** The device a login message came over: the authenticated connection's, never a field of the message. */
export interface ClaimingDevice {
  deviceId: string;
  /** As the device named itself in this connection's hello. */
  hostname: string;
}

/** A request that gets no verdict: a coded `error` on the connection, which stays open. */
export interface LoginRefusal {
  code: ErrorCode;
  detail: string;
}

type Claim = Extract<AgentToCollector, { type: 'login.claim' | 'login.evict' }>;
type Verdict = Extract<CollectorToAgent, { type: 'login.verdict' }>;

/** What one device did in the last hour, in this process: the users it claimed for and the sessions it ended. */
interface DeviceHour {
  /** User key → when this device first claimed for the user within the hour. */
  users: Map<string, number>;
  evictions: number[];
}

/**
 * The login limit's service: decides claims by the policy in force (through
 * the store's atomic `claimLease`), renews and releases leases, and turns an
 * accepted eviction into a `logoff` for the evicted session's device. The
 * transport (`agent-socket.ts`) only sends what it returns.
 */
export class LoginLeases {
  private readonly log: Logger;
  private readonly hours = new Map<string, DeviceHour>();

  constructor(private readonly options: LoginLeasesOptions) {
    this.log = options.logger.child({ component: 'login-leases' });
    options.metrics.describe('invigilator_login_claims_total', 'login claims decided, by outcome');
  }

  /**
   * At most `maxDevices` devices per login (the policy's `loginLimit` for the
   * claim's role; an unknown role gets the policy's default role). Answers a
   * `login.verdict`, or a refusal when the claim cannot or may not be decided
   * (so the agent applies its offline rule). A `login.evict` is the claim with
   * a reference from an earlier refusal of the same device, session and user:
   * the session it names is ended in the same decision and its device sent a `logoff`.
   */
  async claim(device: ClaimingDevice, claim: Claim): Promise<{ verdict: Verdict } | { refused: LoginRefusal }> {
    const user = claim.user.name;
    if (user.trim() === '') return { refused: { code: 'INV_ERR_SCHEMA_RANGE', detail: '$.user.name: a login claim needs the user name' } };
    const nowMs = this.options.now();
    const throttled = this.throttle(device.deviceId, userKey(user), claim.type === 'login.evict', nowMs);
    if (throttled) {
      this.options.metrics.inc('invigilator_login_claims_total', { outcome: 'throttled' });
      this.log.warn('login claim throttled', { deviceId: device.deviceId, claimId: claim.claimId, user, why: throttled });
      return { refused: { code: 'INV_ERR_LOGIN_CLAIMS_THROTTLED', detail: `login claim ${claim.claimId}: ${throttled}` } };
    }
    const { role, settings } = this.loginSettings(claim.role);
    let verdict: LeaseVerdict;
    try {
      verdict = await this.options.store.claimLease({
        deviceId: device.deviceId,
        hostname: device.hostname,
        user,
        sessionId: claim.sessionId,
        role,
        now: new Date(nowMs).toISOString(),
        leaseSeconds: settings.leaseSeconds,
        limit: settings.maxDevices,
        maxUsersPerDevice: this.options.limits.maxUsersPerDevice,
        ...(settings.graceSeconds > 0 ? { refSeconds: settings.graceSeconds } : {}),
        ...(claim.type === 'login.evict' ? { evict: { ref: claim.ref } } : {}),
      });
    } catch (e) {
      this.log.error('could not decide a login claim', { claimId: claim.claimId, error: String(e) });
      return { refused: { code: 'INV_ERR_STORE_FAILED', detail: `login claim ${claim.claimId} could not be decided` } };
    }
    this.remember(device.deviceId, userKey(user), nowMs);
    if (verdict.deviceFull) {
      this.options.metrics.inc('invigilator_login_claims_total', { outcome: 'device-full' });
      this.log.warn('login claim refused: this computer holds places for as many users as it may', {
        deviceId: device.deviceId,
        claimId: claim.claimId,
        user,
        maxUsersPerDevice: this.options.limits.maxUsersPerDevice,
      });
      return {
        refused: { code: 'INV_ERR_LOGIN_DEVICE_FULL', detail: `at most ${this.options.limits.maxUsersPerDevice} users on one computer at once` },
      };
    }
    this.options.metrics.inc('invigilator_login_claims_total', { outcome: verdict.granted ? 'granted' : 'refused' });
    if (!verdict.granted) {
      this.log.info('login refused: over the limit', { claimId: claim.claimId, user, role, limit: settings.maxDevices, others: verdict.leases.length });
    }
    if (verdict.evicted) {
      this.hourOf(device.deviceId).evictions.push(nowMs);
      await this.queueEvictionLogoff(verdict.evicted, device, user);
    }
    return {
      verdict: {
        v: PROTOCOL_VERSION,
        type: 'login.verdict',
        claimId: claim.claimId,
        granted: verdict.granted,
        limit: settings.maxDevices,
        // Only a refused user needs to know where else they are, and only the computer's name and since when.
        others: verdict.granted ? [] : verdict.leases.map((l) => ({ hostname: l.hostname, since: l.since, ...(l.ref ? { ref: l.ref } : {}) })),
        leaseSeconds: settings.leaseSeconds,
      },
    };
  }

  /**
   * Extends this device's live leases for the listed sessions by their role's
   * `leaseSeconds`. A session without a live lease here (expired, released,
   * another device's, never claimed) is not renewed: the refusal names it
   * (INV_ERR_LEASE_NOT_FOUND) and the agent must claim again.
   */
  async renew(deviceId: string, sessionIds: readonly string[]): Promise<LoginRefusal | undefined> {
    const wanted = new Set(sessionIds);
    if (wanted.size === 0) return undefined;
    const { store } = this.options;
    const now = new Date(this.options.now()).toISOString();
    const renewed = new Set<string>();
    try {
      const bySeconds = new Map<number, string[]>();
      for (const lease of await store.liveLeases({ deviceId, now })) {
        if (!wanted.has(lease.sessionId)) continue;
        const seconds = this.loginSettings(lease.role).settings.leaseSeconds;
        bySeconds.set(seconds, [...(bySeconds.get(seconds) ?? []), lease.sessionId]);
      }
      for (const [seconds, ids] of bySeconds) for (const id of await store.renewLeases(deviceId, ids, now, seconds)) renewed.add(id);
    } catch (e) {
      this.log.error('could not renew login leases', { error: String(e) });
      return { code: 'INV_ERR_STORE_FAILED', detail: 'login leases could not be renewed' };
    }
    const missing = [...wanted].filter((id) => !renewed.has(id));
    if (missing.length === 0) return undefined;
    return { code: 'INV_ERR_LEASE_NOT_FOUND', detail: `session ${missing.slice(0, 20).join(', ')}${missing.length > 20 ? ', …' : ''}` };
  }

  /** The session ended. Only this device's lease for it can be released; releasing one it does not hold changes nothing. */
  async release(deviceId: string, sessionId: string): Promise<LoginRefusal | undefined> {
    try {
      await this.options.store.releaseLease(deviceId, sessionId);
      return undefined;
    } catch (e) {
      this.log.error('could not release a login lease', { sessionId, error: String(e) });
      return { code: 'INV_ERR_STORE_FAILED', detail: `the lease of session ${sessionId} could not be released` };
    }
  }

  /** Forgets what devices did more than an hour ago. Called with the minute's sweep of dead leases. */
  sweep(): void {
    const since = this.options.now() - HOUR_MS;
    for (const [deviceId, hour] of this.hours) {
      this.prune(hour, since);
      if (hour.users.size === 0 && hour.evictions.length === 0) this.hours.delete(deviceId);
    }
  }

  /** Why this claim may not go ahead now, or undefined. A user the device already claimed for this hour is not new. */
  private throttle(deviceId: string, key: string, evicting: boolean, nowMs: number): string | undefined {
    const hour = this.hours.get(deviceId);
    if (!hour) return undefined;
    this.prune(hour, nowMs - HOUR_MS);
    const { newUsersPerDevicePerHour, evictionsPerDevicePerHour } = this.options.limits;
    if (!hour.users.has(key) && hour.users.size >= newUsersPerDevicePerHour) return `more than ${newUsersPerDevicePerHour} new users in an hour`;
    if (evicting && hour.evictions.length >= evictionsPerDevicePerHour) return `more than ${evictionsPerDevicePerHour} other sessions ended in an hour`;
    return undefined;
  }

  private remember(deviceId: string, key: string, nowMs: number): void {
    const users = this.hourOf(deviceId).users;
    if (!users.has(key)) users.set(key, nowMs);
  }

  private hourOf(deviceId: string): DeviceHour {
    let hour = this.hours.get(deviceId);
    if (!hour) this.hours.set(deviceId, (hour = { users: new Map(), evictions: [] }));
    return hour;
  }

  private prune(hour: DeviceHour, since: number): void {
    for (const [key, first] of hour.users) if (first <= since) hour.users.delete(key);
    hour.evictions = hour.evictions.filter((t) => t > since);
  }

  /** The evicted lease is gone; its session is ended by a `logoff`, sent as any other command is. */
  private async queueEvictionLogoff(evicted: { deviceId: string; sessionId: string; hostname: string }, by: ClaimingDevice, user: string): Promise<void> {
    const commandId = newId('cmd-');
    try {
      await this.options.store.createCommand({
        id: commandId,
        deviceId: evicted.deviceId,
        command: {
          kind: 'logoff',
          target: { scope: 'session', sessionId: evicted.sessionId },
          reason: `${user} chose to sign in on ${by.hostname} instead`.slice(0, 500),
        },
        createdAt: new Date(this.options.now()).toISOString(),
      });
      await this.options.bus.publish(evicted.deviceId);
      // Who ended whose session, for the record: the one thing a rogue device's eviction leaves behind.
      this.log.info('login lease evicted; logoff queued', { evicted, by: by.deviceId, byHostname: by.hostname, user, commandId });
    } catch (e) {
      this.log.error('could not queue the logoff for an evicted login lease', { evicted, error: String(e) });
    }
  }

  /** The role the policy knows (else its default role) and that role's login limit settings, from the policy in force now. */
  private loginSettings(claimedRole: string): { role: string; settings: LoginLimitSettings } {
    const policy = this.options.policy();
    const role = policy.roles.definitions.some((d) => d.id === claimedRole) ? claimedRole : policy.roles.default;
    return { role, settings: settingsFor(policy, 'loginLimit', role) };
  }
}
