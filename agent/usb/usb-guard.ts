import { createHash, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { z } from 'zod';
import { InvigilatorError, type ErrorCode } from '../../shared/errors';
import { citeClause, settingsFor } from '../../shared/policy/resolve';
import { type DeviceUsbAllowlistEntry, type Policy, deviceUsbAllowlistEntry } from '../../shared/policy/schema';
import { usbAllowDigest, usbAllowKey } from '../../node-common/usb-allow-digest';
import type { AgentToCollector, NOTICE_ACTIONS, User } from '../../shared/protocol';
import { permissionRequest } from '../../shared/protocol/agent-collector-messages';
import { PROTOCOL_VERSION } from '../../shared/protocol/primitives';
import { validate } from '../../shared/schema';
import type { Logger } from '../../node-common/logging';
import { OFFLINE_CODE_MAX_MINUTES, checkOfflineCode } from '../../node-common/offline-code';
import { JsonStateFile } from '../core/state-file';
import type { EventDraft, Recorder } from '../core/events';
import type { NoticeSink } from '../core/notices';
import { type Outcome, refusal } from '../core/result';
import { type StorageAssessment, assessStorage } from './storage-assessment';
import { type UsbDecision, decideUsb } from './usb-decision';
import type { HotplugSignal, ObservedUsbDevice, UsbChange, UsbPlatform } from './usb-platform';

type PermissionRequest = Extract<AgentToCollector, { type: 'permission.request' }>;
type NoticeAction = (typeof NOTICE_ACTIONS)[number];

/** The id of every notice about a device starts so: its answers are this guard's. */
export const USB_NOTICE_PREFIX = 'usb-';

export interface UsbGuardDeps {
  platform: UsbPlatform;
  /** Makes the platform look again as soon as libusb sees a change. */
  hotplug?: HotplugSignal;
  policy: () => Policy;
  /**
   * The person at the screen, when known (agent/core/roster.ts): their role
   * picks the rule's settings, and USB events name them.
   */
  currentUser: () => User | undefined;
  /** A signed-in user by uid, for naming who asked from their own tray; absent: requests name the person at the screen. */
  userOf?: (uid: number) => User | undefined;
  record: Recorder;
  notices: NoticeSink;
  /** Sends a permission request to the collector; false while the link is down (it is sent on reconnect). */
  sendPermissionRequest: (request: PermissionRequest) => boolean;
  /** This computer's collector device id and secret, once enrolled: offline codes are checked against them. */
  deviceIdentity: () => Promise<{ deviceId: string; secret: Buffer } | undefined>;
  dataDir: string;
  logger: Logger;
  /** `observe`: decide and report what would have been done, but leave every device alone (a developer's machine). */
  control?: 'enforce' | 'observe';
  now?: () => number;
  /** Called once per decided arrival, for the benchmark and diagnostics. */
  onDecided?: (info: { key: string; action: UsbDecision['action']; elapsedMs: number; bytesRead: number }) => void;
}

interface Attached {
  device: ObservedUsbDevice;
  decision?: Exclude<UsbDecision, { action: 'inspect' }>;
  noticeId?: string;
  /** A valid offline code typed for this attachment: it lasts until the device is removed. */
  offlineGrant?: string;
  /** Work on this device runs one step at a time, in order. */
  queue: Promise<void>;
}

const usedCodesSchema = z.array(z.strictObject({ hash: z.string().regex(/^[0-9a-f]{64}$/), expiresAt: z.string().max(64) })).max(10_000);
const allowlistSchema = z.array(deviceUsbAllowlistEntry).max(10_000);
/** Read leniently, entry by entry: one bad entry, or more than we keep (an older agent kept any number), loses only itself. */
const pendingSchema = z.array(z.unknown());
const codeFailuresSchema = z.record(z.string().max(64), z.array(z.number()).max(100));

/**
 * Permission requests waiting for the network manager's answer that this
 * computer keeps: per person (a tray's user) and in all. Past either, asking
 * is refused in plain words until an answer frees a place.
 */
export const PERMISSION_REQUEST_LIMITS = { perUser: 10, total: 100 } as const;

/** Wrong offline codes allowed per person in the window before their typing is refused for a while. */
const CODE_ATTEMPTS = 5;
const CODE_WINDOW_MS = 15 * 60_000;
/** People whose wrong codes are remembered; the oldest forgotten first. */
const CODE_PEOPLE = 1_000;

/** Who asked or typed: the tray's user, or `local` for the root-only socket and the agent's own callers. */
type Asker = { uid?: number | undefined } | undefined;
const askerKey = (from: Asker) => (from?.uid === undefined ? 'local' : `uid-${from.uid}`);

interface PendingRequest {
  request: PermissionRequest;
  asker: string;
}

/**
 * The USB storage rule at work: every arrival is observed, decided by the pure
 * rule, enforced through the OS adapter, and reported. Blocked people get a
 * notice that says why, in the school's words, and lets them ask or type an
 * offline code; the network manager's answers come back as allowlist entries.
 */
export class UsbGuard {
  private readonly attached = new Map<string, Attached>();
  private localAllowlist: DeviceUsbAllowlistEntry[] = [];
  private usedCodes: Array<{ hash: string; expiresAt: string }> = [];
  private pendingRequests: PendingRequest[] = [];
  /** Per person: when they typed a wrong code, within the window. Kept on disk: a restart must not reset it. */
  private codeFailures: Record<string, number[]> = {};
  private readonly now: () => number;
  private readonly log: Logger;
  private readonly allowlistFile: JsonStateFile<DeviceUsbAllowlistEntry[]>;
  private readonly usedCodesFile: JsonStateFile<Array<{ hash: string; expiresAt: string }>>;
  private readonly pendingFile: JsonStateFile<unknown[]>;
  private readonly codeFailuresFile: JsonStateFile<Record<string, number[]>>;
  private readonly noticeDevices = new Map<string, string>();

  constructor(private readonly deps: UsbGuardDeps) {
    this.now = deps.now ?? Date.now;
    this.log = deps.logger.child({ component: 'usb' });
    this.allowlistFile = new JsonStateFile(join(deps.dataDir, 'usb-allowlist.json'), allowlistSchema, () => [], this.log);
    this.usedCodesFile = new JsonStateFile(join(deps.dataDir, 'usb-offline-codes-used.json'), usedCodesSchema, () => [], this.log);
    this.pendingFile = new JsonStateFile(join(deps.dataDir, 'usb-permission-requests.json'), pendingSchema, () => [], this.log);
    this.codeFailuresFile = new JsonStateFile(join(deps.dataDir, 'usb-offline-code-failures.json'), codeFailuresSchema, () => ({}), this.log);
  }

  async start(): Promise<void> {
    this.localAllowlist = await this.allowlistFile.load();
    this.usedCodes = await this.usedCodesFile.load();
    this.pendingRequests = keepWithinLimits(await this.pendingFile.load(), this.log);
    this.codeFailures = await this.codeFailuresFile.load();
    const present = await this.deps.platform.start((change) => this.onChange(change));
    // Sticks plugged in before the agent started are decided like new arrivals.
    for (const device of present) this.onChange({ kind: 'arrived', device });
    await this.deps.hotplug?.start(() => {
      this.deps.platform.pollNow().catch((e: unknown) => this.log.warn('looking at the USB devices again failed', { error: String(e) }));
    });
  }

  async stop(): Promise<void> {
    this.deps.hotplug?.stop();
    await Promise.all([...this.attached.values()].map((a) => a.queue));
    await this.deps.platform.stop();
  }

  /** Waits until every arrival seen so far has been decided and reported (tests and shutdown). */
  async settled(): Promise<void> {
    await Promise.all([...this.attached.values()].map((a) => a.queue));
  }

  get allowlist(): readonly DeviceUsbAllowlistEntry[] {
    return this.localAllowlist;
  }

  private onChange(change: UsbChange): void {
    const startedAt = performance.now();
    const { device } = change;
    if (change.kind === 'arrived') {
      const entry: Attached = { device, queue: Promise.resolve() };
      this.attached.set(device.key, entry);
      void this.enqueue(entry, () => this.decideAndEnforce(entry, startedAt, true));
      return;
    }
    if (change.kind === 'media-changed') {
      // A card swapped in a reader that was allowed: the new card is judged like a new stick.
      const entry = this.attached.get(device.key);
      if (entry) void this.enqueue(entry, () => this.decideAndEnforce(entry, startedAt, false));
      return;
    }
    const entry = this.attached.get(device.key);
    this.attached.delete(device.key);
    if (entry?.noticeId) this.withdraw(entry.noticeId);
    void (entry?.queue ?? Promise.resolve())
      .then(() => this.report('usb.removed', 'info', { device: publicDevice(device) }))
      .catch((e: unknown) => this.log.error('could not record a USB removal', { key: device.key, error: String(e) }));
  }

  private enqueue(entry: Attached, work: () => Promise<void>): Promise<void> {
    entry.queue = entry.queue.then(work).catch((e: unknown) => {
      this.log.error('USB handling failed', { key: entry.device.key, error: String(e) });
    });
    return entry.queue;
  }

  /**
   * `initial`: a new arrival, reported with `usb.connected`. A later decision
   * (policy, allowlist, expiry, media change) reports only a changed outcome
   * and shows a notice only when the device has newly been stopped, so a
   * notice someone dismissed does not come back with every policy push.
   */
  private async decideAndEnforce(entry: Attached, startedAt: number, initial: boolean): Promise<void> {
    if (!this.attached.has(entry.device.key)) return;
    const { device } = entry;
    const previous = entry.decision;
    const policy = this.deps.policy();
    const user = this.deps.currentUser();
    const base = await this.decisionInput(policy, user, entry);
    let decision = decideUsb(base);
    let assessment: StorageAssessment | undefined;
    if (decision.action === 'inspect') {
      try {
        assessment = await assessStorage(await this.deps.platform.storage(device));
      } catch (e) {
        if (isGone(e)) return;
        await this.failed(device, 'inspect', e);
        assessment = { encrypted: 'unknown', scheme: 'unknown', volumes: [], bytesRead: 0, unreadable: true };
      }
      decision = decideUsb({ ...base, storage: assessment });
    }
    if (decision.action === 'inspect') throw new Error('the USB rule asked to inspect media it was given');
    if (this.deps.control === 'observe' && decision.action !== 'allow') {
      decision = { action: 'allow', subject: decision.subject, clauseId: decision.clauseId, auditWouldBlock: decision.reason };
    }
    entry.decision = decision;
    const applied = await this.enforce(device, decision);
    this.deps.onDecided?.({ key: device.key, action: decision.action, elapsedMs: performance.now() - startedAt, bytesRead: assessment?.bytesRead ?? 0 });
    if (applied === 'gone') return;
    const changed = initial || !previous || outcomeKey(previous) !== outcomeKey(decision) || applied === 'failed';
    if (!changed) return;
    await this.reportDecision(policy, user, device, decision, assessment, applied, initial);
    if (applied === 'done' && (decision.action === 'block' || decision.action === 'readonly')) {
      if (initial || !previous || previous.action === 'allow') this.showBlockNotice(policy, entry, decision);
    } else if (entry.noticeId) {
      this.withdraw(entry.noticeId);
      entry.noticeId = undefined;
    }
  }

  private async decisionInput(policy: Policy, user: User | undefined, entry: Attached) {
    const role = user?.role ?? policy.roles.default;
    const identity = await this.deps.deviceIdentity().catch(() => undefined);
    return {
      device: entry.device,
      storageSettings: settingsFor(policy, 'usbStorage', role),
      deviceSettings: settingsFor(policy, 'usbDevices', role),
      allowlist: [...policy.usbAllowlist, ...this.localAllowlist],
      hardwareEncryptedModels: policy.hardwareEncryptedModels,
      unreadableVolume: policy.failsafe.unreadableVolume,
      computerId: identity?.deviceId,
      digests: identity && this.digestsOf(identity.secret, entry.device),
      offlineGrant: entry.offlineGrant,
      descriptorsIncomplete: entry.device.descriptorsIncomplete,
      nowMs: this.now(),
    };
  }

  /** The device under this computer's key, for the allowlist entries keyed to it (approvals for every computer). */
  private digestsOf(secret: Buffer, device: { vendorId: string; productId: string; serial?: string | undefined }) {
    const key = usbAllowKey(secret);
    return {
      withSerial: device.serial ? usbAllowDigest(key, device) : undefined,
      withoutSerial: usbAllowDigest(key, { vendorId: device.vendorId, productId: device.productId }),
    };
  }

  /** Carries the decision out. A refused read-only falls back to a block: the safe side. */
  private async enforce(device: ObservedUsbDevice, decision: Exclude<UsbDecision, { action: 'inspect' }>): Promise<'done' | 'failed' | 'gone'> {
    const { platform } = this.deps;
    if (this.deps.control === 'observe') return 'done';
    try {
      if (decision.action === 'allow') await platform.allow(device);
      else if (decision.action === 'block') await platform.block(device);
      else {
        try {
          await platform.readOnly(device);
        } catch (e) {
          if (!(e instanceof InvigilatorError && e.code === 'INV_ERR_USB_READONLY_UNSUPPORTED')) throw e;
          await platform.block(device);
        }
      }
      return 'done';
    } catch (e) {
      if (isGone(e)) return 'gone';
      await this.failed(device, decision.action, e);
      return 'failed';
    }
  }

  private async failed(device: ObservedUsbDevice, action: 'allow' | 'block' | 'readonly' | 'inspect', e: unknown): Promise<void> {
    const code: ErrorCode = e instanceof InvigilatorError ? e.code : 'INV_ERR_INTERNAL';
    const message = (e instanceof Error ? e.message : String(e)).slice(0, 1000);
    this.log.error('USB action failed', { key: device.key, action, code, error: message });
    await this.report('usb.enforcement.failed', 'alert', { device: publicDevice(device), action, error: { code, message } });
  }

  private async reportDecision(
    policy: Policy,
    user: User | undefined,
    device: ObservedUsbDevice,
    decision: Exclude<UsbDecision, { action: 'inspect' }>,
    assessment: StorageAssessment | undefined,
    applied: 'done' | 'failed',
    initial: boolean,
  ): Promise<void> {
    const d = publicDevice(device);
    const extra = { clause: citeClause(policy, decision.clauseId), ...(user ? { user } : {}) };
    const audit = decision.action === 'allow' && decision.auditWouldBlock ? { auditWouldBlock: decision.auditWouldBlock } : {};
    if (initial) await this.report('usb.connected', 'info', { device: d, ...audit }, user ? { user } : {});
    if (applied !== 'done') return;
    const volumes = assessment?.volumes ?? [];
    if (decision.action === 'allow' && decision.subject === 'storage') {
      const scheme = decision.scheme ?? assessment?.scheme ?? 'unknown';
      await this.report(
        'usb.storage.allowed',
        decision.exception || decision.auditWouldBlock ? 'notice' : 'info',
        {
          device: d,
          scheme,
          volumes,
          allowlisted: decision.exception !== undefined,
          ...(decision.exception ? { exception: decision.exception } : {}),
          ...audit,
        },
        extra,
      );
    } else if (decision.action === 'block' && decision.subject === 'storage') {
      await this.report('usb.storage.blocked', 'alert', { device: d, reason: decision.reason, volumes }, extra);
    } else if (decision.action === 'readonly') {
      await this.report('usb.storage.readonly', 'warning', { device: d, scheme: assessment?.scheme ?? 'unknown', volumes }, extra);
    } else if (decision.action === 'block') {
      await this.report('usb.blocked', 'alert', { device: d, reason: decision.reason }, extra);
    }
  }

  private async report(type: string, severity: EventDraft['severity'], data: unknown, extra: Record<string, unknown> = {}): Promise<void> {
    await this.deps.record({ type, severity, time: new Date(this.now()).toISOString(), data, ...extra } as EventDraft);
  }

  // ---- notices and answers ----------------------------------------------------

  private showBlockNotice(policy: Policy, entry: Attached, decision: Extract<UsbDecision, { action: 'block' | 'readonly' }>): void {
    const { device } = entry;
    const contact = policy.notices.contact;
    const storage = decision.subject === 'storage';
    const words = noticeWords(decision, contact);
    const noticeId = entry.noticeId ?? `${USB_NOTICE_PREFIX}${randomUUID()}`;
    entry.noticeId = noticeId;
    this.noticeDevices.set(noticeId, device.key);
    const actions: NoticeAction[] = ['dismiss'];
    if (decision.canAsk) actions.push('ask-permission');
    // The network manager can read out an offline code whatever the policy lets people ask for.
    actions.push('enter-code');
    this.deps.notices.show({
      v: PROTOCOL_VERSION,
      type: 'tray.notice',
      noticeId,
      kind: storage ? 'usb-blocked' : 'device-blocked',
      title: words.title,
      body: words.body,
      clause: citeClause(policy, decision.clauseId),
      subject: deviceLabel(device),
      actions,
    });
  }

  private withdraw(noticeId: string): void {
    this.noticeDevices.delete(noticeId);
    this.deps.notices.withdraw(noticeId);
  }

  /** A tray answer to one of this guard's notices. Returns a coded error for the tray to show, or undefined when done. */
  async answer(noticeId: string, action: NoticeAction, text?: string, target?: string, from?: Asker): Promise<Outcome> {
    const key = this.noticeDevices.get(noticeId);
    const entry = key ? this.attached.get(key) : undefined;
    if (!entry) return refusal('INV_ERR_USB_DEVICE_GONE');
    if (action === 'dismiss') {
      this.withdraw(noticeId);
      entry.noticeId = undefined;
      return { ok: true };
    }
    if (action === 'ask-permission') return this.askPermission(entry, text ?? '', from);
    if (action === 'enter-code') return this.enterCode(entry, target ?? text ?? '', askerKey(from));
    return refusal('INV_ERR_UNEXPECTED_MESSAGE', `a USB notice has no ${action} action`);
  }

  private async askPermission(entry: Attached, reason: string, from: Asker): Promise<Outcome> {
    const asker = askerKey(from);
    const mine = this.pendingRequests.filter((p) => p.asker === asker).length;
    if (mine >= PERMISSION_REQUEST_LIMITS.perUser || this.pendingRequests.length >= PERMISSION_REQUEST_LIMITS.total) {
      this.log.warn('a permission request was refused: too many are waiting for an answer', { asker, mine, all: this.pendingRequests.length });
      return refusal('INV_ERR_PERMISSION_REQUESTS_FULL');
    }
    const { device } = entry;
    const user = this.requester(from);
    const request: PermissionRequest = {
      v: PROTOCOL_VERSION,
      type: 'permission.request',
      requestId: `req-${randomUUID()}`,
      kind: 'usb-device',
      subject: { vendorId: device.vendorId, productId: device.productId, ...(device.serial ? { serial: device.serial } : {}), label: deviceLabel(device) },
      user: user ?? { name: 'unknown' },
      reason: reason.slice(0, 4000),
    };
    await this.report(
      'permission.requested',
      'notice',
      { requestId: request.requestId, kind: 'usb-device', subject: request.subject.label, reason: request.reason },
      user ? { user } : {},
    );
    this.pendingRequests.push({ request, asker });
    await this.pendingFile.save(this.pendingRequests);
    this.deps.sendPermissionRequest(request);
    return { ok: true };
  }

  /**
   * Who asked, as the network manager is told: the user of the tray socket the
   * answer came through; from a channel that speaks for no user (the root-only
   * socket, the Windows pipe), the person at the screen, under whose role the
   * device was stopped. Undefined (sent as `unknown`) when neither is known.
   */
  private requester(from: Asker): User | undefined {
    if (from?.uid === undefined) return this.deps.currentUser();
    return this.deps.userOf ? this.deps.userOf(from.uid) : this.deps.currentUser();
  }

  /** The link is up again: requests made while it was down go now. The collector stores each once. */
  resendPendingRequests(): void {
    for (const p of this.pendingRequests) this.deps.sendPermissionRequest(p.request);
  }

  /** The network manager answered a request. An approval's allowlist entry arrives separately as a `usb-allow` command. */
  async onDecision(decision: {
    requestId: string;
    decision: 'approved' | 'refused';
    note?: string | undefined;
    expiresAt?: string | undefined;
  }): Promise<void> {
    const request = this.pendingRequests.find((p) => p.request.requestId === decision.requestId)?.request;
    // Decisions may come again (a request resent after a reconnect is answered again): act once.
    if (!request) return;
    this.pendingRequests = this.pendingRequests.filter((p) => p.request.requestId !== decision.requestId);
    await this.pendingFile.save(this.pendingRequests);
    await this.report('permission.decided', 'notice', {
      requestId: decision.requestId,
      decision: decision.decision,
      ...(decision.expiresAt ? { expiresAt: decision.expiresAt } : {}),
    });
    const policy = this.deps.policy();
    const label = request.subject.label;
    const approved = decision.decision === 'approved';
    this.deps.notices.show({
      v: PROTOCOL_VERSION,
      type: 'tray.notice',
      noticeId: `decision-${decision.requestId}`,
      kind: 'permission-decision',
      title: approved ? 'You can use it now' : 'The answer is no',
      body: approved
        ? `${capitalise(policy.notices.contact)} said yes, so it works on this computer now.${decision.expiresAt ? ` This lasts until ${decision.expiresAt.slice(0, 16).replace('T', ' ')}.` : ''}`
        : `${capitalise(policy.notices.contact)} said no, so it still cannot be used here.${decision.note ? ` They said: ${decision.note}` : ''}`,
      subject: label,
      actions: ['dismiss'],
    });
  }

  /** A `usb-allow` command: the entry is kept across restarts, and devices attached now are decided again. */
  async addAllowlistEntry(entry: DeviceUsbAllowlistEntry): Promise<void> {
    this.localAllowlist = [...this.localAllowlist.filter((e) => e.id !== entry.id), entry];
    await this.allowlistFile.save(this.localAllowlist);
    await this.reconsider((a) => a.decision !== undefined && a.decision.action !== 'allow');
  }

  async removeAllowlistEntry(entryId: string): Promise<boolean> {
    const before = this.localAllowlist.length;
    this.localAllowlist = this.localAllowlist.filter((e) => e.id !== entryId);
    await this.allowlistFile.save(this.localAllowlist);
    // A revoked exception stops the device it let in, plugged in or not.
    await this.reconsider((a) => a.decision?.action === 'allow' && a.decision.exception?.id === entryId);
    return this.localAllowlist.length < before;
  }

  /** The policy changed: every attached device is decided again under it, allowed ones included. */
  async reconsiderAll(): Promise<void> {
    await this.reconsider(() => true);
  }

  /**
   * An allowlist entry's expiry has passed for a device it let in: decided
   * again, so a stick allowed "until 16:00" and left in overnight stops at
   * 16:00. Called every minute by the agent's timer.
   */
  async checkExpiries(): Promise<void> {
    const now = this.now();
    const all = [...this.deps.policy().usbAllowlist, ...this.localAllowlist];
    await this.reconsider((a) => {
      const exception = a.decision?.action === 'allow' ? a.decision.exception : undefined;
      if (exception?.kind !== 'allowlist') return false;
      const entry = all.find((e) => e.id === exception.id);
      return !entry || (entry.expiresAt !== undefined && Date.parse(entry.expiresAt) <= now);
    });
  }

  private async reconsider(which: (a: Attached) => boolean): Promise<void> {
    const chosen = [...this.attached.values()].filter(which);
    await Promise.all(chosen.map((a) => this.enqueue(a, () => this.decideAndEnforce(a, performance.now(), false))));
  }

  private async enterCode(entry: Attached, typed: string, asker: string): Promise<Outcome> {
    const now = this.now();
    const failures = (this.codeFailures[asker] ?? []).filter((t) => now - t < CODE_WINDOW_MS);
    const reject = async (code: ErrorCode) => {
      if (code !== 'INV_ERR_OFFLINE_CODE_THROTTLED') await this.rememberCodeFailure(asker, [...failures, now].slice(-CODE_ATTEMPTS), now);
      await this.report('usb.offline-code.rejected', 'warning', { device: publicDevice(entry.device), code });
      return refusal(code);
    };
    // Counted from the last wrong code: the wait is 15 minutes after it.
    if (failures.length >= CODE_ATTEMPTS) return reject('INV_ERR_OFFLINE_CODE_THROTTLED');
    const identity = await this.deps.deviceIdentity().catch(() => undefined);
    if (!identity) return reject('INV_ERR_OFFLINE_CODE_INVALID');
    const { device } = entry;
    const check = checkOfflineCode(
      identity.secret,
      { deviceId: identity.deviceId, vendorId: device.vendorId, productId: device.productId, serial: device.serial },
      typed,
      now,
    );
    if (!check.ok) return reject(check.code);
    const hash = createHash('sha256').update(check.canonical).digest('hex');
    // Kept well past expiry: a clock set back a day must not make a spent code work again.
    this.usedCodes = this.usedCodes.filter((u) => Date.parse(u.expiresAt) + 2 * OFFLINE_CODE_MAX_MINUTES * 60_000 > now);
    if (this.usedCodes.some((u) => u.hash === hash)) return reject('INV_ERR_OFFLINE_CODE_USED');
    // Remembered before it takes effect, so a crash cannot make a code work twice.
    this.usedCodes.push({ hash, expiresAt: check.expiresAt });
    await this.usedCodesFile.save(this.usedCodes);
    entry.offlineGrant = check.canonical;
    await this.enqueue(entry, () => this.decideAndEnforce(entry, performance.now(), false));
    return { ok: true };
  }

  /** Saved before the refusal is answered, so that killing the agent cannot buy more guesses. */
  private async rememberCodeFailure(asker: string, times: number[], now: number): Promise<void> {
    const kept: Record<string, number[]> = {};
    for (const [who, list] of Object.entries(this.codeFailures)) {
      const live = list.filter((t) => now - t < CODE_WINDOW_MS);
      if (live.length > 0 && who !== asker) kept[who] = live;
    }
    kept[asker] = times;
    const people = Object.keys(kept);
    for (const who of people.slice(0, Math.max(0, people.length - CODE_PEOPLE))) delete kept[who];
    this.codeFailures = kept;
    await this.codeFailuresFile.save(kept);
  }
}

/**
 * The saved requests, read one by one: today's `{ request, asker }` or an
 * older agent's bare request (whose asker it did not keep: those count
 * against the total only); what does not pass the protocol's schema is
 * skipped, and past the limits the oldest are kept (the rest were sent to the
 * collector when they were made, and are in its list).
 */
function keepWithinLimits(saved: unknown[], log: Logger): PendingRequest[] {
  const kept: PendingRequest[] = [];
  const perAsker = new Map<string, number>();
  let skipped = 0;
  for (const item of saved) {
    const record = item !== null && typeof item === 'object' ? (item as { request?: unknown; asker?: unknown }) : {};
    const wrapped = 'request' in record;
    const asker = wrapped && typeof record.asker === 'string' ? record.asker.slice(0, 64) : 'local';
    const checked = validate(permissionRequest, wrapped ? record.request : item);
    const mine = perAsker.get(asker) ?? 0;
    if (!checked.ok || kept.length >= PERMISSION_REQUEST_LIMITS.total || (asker !== 'local' && mine >= PERMISSION_REQUEST_LIMITS.perUser)) {
      skipped++;
      continue;
    }
    perAsker.set(asker, mine + 1);
    kept.push({ request: checked.value, asker });
  }
  if (skipped > 0) log.warn('saved permission requests skipped: unreadable, or more than are kept', { kept: kept.length, skipped });
  return kept;
}

/** What a decision means to the people who read events: two decisions with the same key need not be reported twice. */
function outcomeKey(d: Exclude<UsbDecision, { action: 'inspect' }>): string {
  return [
    d.action,
    'reason' in d ? d.reason : '',
    d.action === 'allow' ? (d.exception?.id ?? '') : '',
    d.action === 'allow' ? (d.auditWouldBlock ?? '') : '',
  ].join('|');
}

function isGone(e: unknown): boolean {
  return e instanceof InvigilatorError && e.code === 'INV_ERR_USB_DEVICE_GONE';
}

/** The device as events carry it: the adapter's key stays inside the agent. */
function publicDevice(device: ObservedUsbDevice) {
  const { key: _key, descriptorsIncomplete: _incomplete, instance: _instance, ...rest } = device;
  return rest;
}

function deviceLabel(device: ObservedUsbDevice): string {
  const name = [device.manufacturer, device.product].filter(Boolean).join(' ');
  return `${name || 'USB device'} (${device.vendorId}:${device.productId})`;
}

function capitalise(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** Words a seven-year-old can follow; the clause behind "Why?" carries the school's exact words for adults. */
function noticeWords(decision: Extract<UsbDecision, { action: 'block' | 'readonly' }>, contact: string): { title: string; body: string } {
  const ask = decision.canAsk ? ` If you need it, you can ask ${contact}.` : ` If you think this is wrong, tell ${contact}.`;
  if (decision.action === 'readonly') {
    return { title: 'You can only look at this memory stick', body: `You can open the files on it, but you cannot save to it here.${ask}` };
  }
  switch (decision.reason) {
    case 'block-all':
      return {
        title: 'Memory sticks cannot be used here',
        body: `The school's rules do not allow memory sticks or USB drives on this computer, so it has been stopped.${ask}`,
      };
    case 'unencrypted':
      return {
        title: 'This memory stick is not locked',
        body: `The school only allows memory sticks that are locked with a password (encrypted), to keep everyone's work safe. This one is not, so it has been stopped.${ask}`,
      };
    case 'unknown-encryption':
      return {
        title: 'This memory stick cannot be checked',
        body: `The computer could not tell whether this memory stick is locked with a password, so it has been stopped.${ask}`,
      };
    case 'unreadable':
      return { title: 'This memory stick cannot be read', body: `The computer could not read this memory stick to check it, so it has been stopped.${ask}` };
    case 'bad-usb':
      return {
        title: 'This device has been stopped',
        body: `It says it is a memory stick and a keyboard at the same time. That is a trick some harmful devices use, so it has been stopped.${ask}`,
      };
    case 'class-blocked':
    case 'needs-permission':
      return {
        title: 'This device needs permission',
        body: `The school's rules say you must ask before plugging in this kind of device, so it has been stopped.${ask}`,
      };
  }
}
