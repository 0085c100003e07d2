import { type BigIntStats } from 'node:fs';
import { lstat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { z } from 'zod';
import { citeClause, settingsFor } from '../../../shared/policy/resolve';
import type { Policy, SoftwareSettings } from '../../../shared/policy/schema';
import type { NOTICE_ACTIONS, TrayNotice, User } from '../../../shared/protocol';
import { PROTOCOL_VERSION } from '../../../shared/protocol/primitives';
import type { DownloadsOs } from './downloads-os';
import type { Logger } from '../../../node-common/logging';
import type { PersonalNotices } from '../../core/notices';
import { type Outcome, refusal } from '../../core/result';
import { JsonStateFile } from '../../core/state-file';
import type { Recorder } from '../../core/events';
import type { WatchedFolder } from './file-folders';
import { type FileJudgement, HEAD_BYTES, extensionOf, isPartialDownload, judgeFile } from './file-kind';
import { hashFile, identityOf, readHead } from '../../os/file-read';
import { type FileSeen, FileWatch, type FileWatchOptions } from './file-watch';
import { Quarantine, type QuarantineRecord, type RestoreOutcome } from './quarantine';

/**
 * The downloads rule at work: new programs and installers in the folders
 * people save to and install into (see file-folders.ts) are found by the file
 * watch, judged (file-kind.ts), and, according to the role of the person who
 * owns the file, ignored, reported (`software.detected`, action `report`) or
 * quarantined (`software.detected` action `quarantine`, then
 * `file.quarantined`, and a `software-blocked` notice to that person).
 *
 * ```ts
 * const files = new FileGuard({
 *   policy: () => keeper.current,             // the policy in force
 *   roleOf: (uid) => roleOfUid(uid),          // the owner's role; undefined: the policy's default role
 *   record,                                   // the outbox
 *   notices: userTrays,                       // showTo(uid, notice) / withdraw(id): that person's trays only
 *   dataDir,                                  // <dataDir>/quarantine/, software-file-exemptions.json
 *   folders: () => watchedFolders({ os, users: signedInUsers(), env: process.env }),
 *   logger,
 *   now: Date.now,                            // optional
 *   os,                                       // this OS's DownloadsOs (downloads/linux/folders.ts, ...)
 *   userName: (uid) => nameOf(uid),           // optional: the account name for events
 * });
 * await files.start();                        // quarantine ready, watch armed
 * // collector command `restore-file`:
 * const r = await files.restore(command.quarantineId);   // r.ok, or r.code / r.message
 * // tray answers to notices whose id files.isMine(id): files.answer(id, action)
 * await files.stop();
 * ```
 *
 * Who a file belongs to: its uid on Linux and macOS; on Windows, where the
 * agent cannot read a file's owner as a uid, the user whose folder it is in.
 * A file of a system account (uid below 1000 on Linux, below 500 on macOS,
 * root included) or of no known person (Windows' shared folders) is at most
 * reported, never quarantined: it was put there by the OS or an
 * administrator. Under `mode: audit` nothing is quarantined either; the event
 * says `audit: true` and what would have happened.
 *
 * A file the network manager had restored is not judged again: its SHA-256
 * (and size) are kept in `software-file-exemptions.json`.
 */

type NoticeAction = (typeof NOTICE_ACTIONS)[number];

export interface FileGuardDeps {
  policy: () => Policy;
  roleOf: (uid: number) => Promise<string | undefined> | string | undefined;
  record: Recorder;
  notices: PersonalNotices;
  dataDir: string;
  folders: () => readonly WatchedFolder[] | Promise<readonly WatchedFolder[]>;
  logger: Logger;
  now?: () => number;
  /** This OS's facts (downloads/<os>/folders.ts), chosen by the composition root. */
  os: DownloadsOs;
  /** The account name of a uid, for events; `uid N` when absent or unknown. */
  userName?: (uid: number) => Promise<string | undefined> | string | undefined;
  /** Accounts whose files are never quarantined. Default: the OS's (uid < 1000 on Linux, < 500 on macOS, none on Windows). */
  isSystemAccount?: (uid: number) => boolean;
  /** Tuning of the file watch (tests use short times). */
  watch?: Partial<Pick<FileWatchOptions, 'recheckMs' | 'stableMs' | 'stablePollMs' | 'pollingIntervalMs' | 'readyTimeoutMs' | 'createWatcher'>>;
  /** Longest a reported file may take to hash; past it the event has no hash. Default 2 minutes. */
  hashTimeoutMs?: number;
}

/** The rule id downloads are reported under: the policy's `software.downloads` setting. */
export const DOWNLOADS_RULE_ID = 'downloads';
/** Every notice this guard puts up starts so. */
export const FILE_NOTICE_PREFIX = 'software-file-';
/** Files judged at once. */
const CONCURRENCY = 4;
/** Files waiting to be judged; past it new ones are dropped (and the drop logged). */
const MAX_QUEUE = 10_000;
/** Files remembered as judged (identity, size, mtime), so a file is judged once however often it is reported. */
const MAX_JUDGED = 20_000;
/** Files arriving within this long of a notice join it, whatever the policy's throttle. */
const MIN_NOTICE_WINDOW_MS = 2000;
const STOP_WAIT_MS = 10_000;
const LOOKUP_TTL_MS = 60_000;
const BUSY_RETRIES = 3;
const BUSY_RETRY_MS = 2000;

const exemption = z.strictObject({
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  size: z.number().int().min(0),
  quarantineId: z.string().max(128),
  at: z.string().max(64),
});
type Exemption = z.infer<typeof exemption>;
const exemptionsSchema = z.array(exemption).max(10_000);
const MAX_EXEMPTIONS = 1000;

interface Burst {
  noticeId: string;
  uid: number;
  count: number;
  first: string;
  clauseId: string;
  shownAt: number;
  dirty: boolean;
  timer?: NodeJS.Timeout;
  quarantineIds: Set<string>;
}

export class FileGuard {
  readonly quarantine: Quarantine;
  private readonly watch: FileWatch;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly exemptionsFile: JsonStateFile<Exemption[]>;
  private exemptions: Exemption[] = [];
  private readonly queue: Array<{ seen: FileSeen; attempt: number }> = [];
  private readonly queued = new Set<string>();
  private active = 0;
  private idleWaiters: Array<() => void> = [];
  private readonly judged = new Map<string, true>();
  private readonly bursts = new Map<number, Burst>();
  private readonly noticeOfQuarantine = new Map<string, number>();
  private readonly retryTimers = new Set<NodeJS.Timeout>();
  private readonly lookups = new Map<string, { value: string | undefined; at: number }>();
  private lastDropLog = -Infinity;
  private noticeCounter = 0;
  private stopped = true;

  constructor(private readonly deps: FileGuardDeps) {
    this.log = deps.logger.child({ component: 'software-files' });
    this.now = deps.now ?? Date.now;
    this.quarantine = new Quarantine({ dataDir: deps.dataDir, os: deps.os, logger: deps.logger, now: this.now });
    this.exemptionsFile = new JsonStateFile(join(deps.dataDir, 'software-file-exemptions.json'), exemptionsSchema, () => [], this.log);
    this.watch = new FileWatch({
      paths: deps.os.paths,
      folders: deps.folders,
      excluded: [deps.dataDir],
      onSeen: (seen) => this.enqueue(seen, 0),
      logger: deps.logger,
      ...deps.watch,
    });
  }

  async start(): Promise<void> {
    this.stopped = false;
    await this.quarantine.init();
    this.exemptions = await this.exemptionsFile.load();
    await this.watch.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.watch.stop();
    for (const t of this.retryTimers) clearTimeout(t);
    this.retryTimers.clear();
    for (const b of this.bursts.values()) if (b.timer) clearTimeout(b.timer);
    this.bursts.clear();
    this.queue.length = 0;
    this.queued.clear();
    // A file being hashed or copied finishes by itself; stopping does not wait for it for long.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.settled(), new Promise<void>((r) => (timer = setTimeout(r, STOP_WAIT_MS)))]);
    clearTimeout(timer);
  }

  /** Waits until no file is being judged or waiting (tests and shutdown). */
  settled(): Promise<void> {
    if (this.active === 0 && this.queue.length === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  /** The watch's view of each folder (diagnostics). */
  folderStatus() {
    return this.watch.status();
  }

  /** Looks at the folder list and every folder now, instead of at the next periodic check. */
  recheck(): Promise<void> {
    return this.watch.recheck();
  }

  // ---- the queue --------------------------------------------------------------

  private enqueue(seen: FileSeen, attempt: number): void {
    if (this.stopped || this.queued.has(seen.path)) return;
    if (this.queue.length >= MAX_QUEUE) {
      const now = this.now();
      if (now - this.lastDropLog > 60_000) {
        this.lastDropLog = now;
        this.log.warn('too many new files at once; some were not judged', { queued: this.queue.length });
      }
      return;
    }
    this.queue.push({ seen, attempt });
    this.queued.add(seen.path);
    this.pump();
  }

  private pump(): void {
    while (!this.stopped && this.active < CONCURRENCY && this.queue.length > 0) {
      const next = this.queue.shift()!;
      this.queued.delete(next.seen.path);
      this.active++;
      this.judge(next.seen, next.attempt)
        .catch((e: unknown) => this.log.error('judging a file failed', { error: String(e).slice(0, 500) }))
        .finally(() => {
          this.active--;
          this.pump();
          if (this.active === 0 && this.queue.length === 0) {
            const waiters = this.idleWaiters;
            this.idleWaiters = [];
            for (const w of waiters) w();
          }
        });
    }
  }

  private retryLater(seen: FileSeen, attempt: number): void {
    if (attempt >= BUSY_RETRIES || this.stopped) {
      this.log.warn('a file could not be read (out of file handles, or locked); not judged', { path: seen.path });
      return;
    }
    const t = setTimeout(() => {
      this.retryTimers.delete(t);
      this.enqueue(seen, attempt + 1);
    }, BUSY_RETRY_MS);
    t.unref();
    this.retryTimers.add(t);
  }

  // ---- judging ----------------------------------------------------------------

  private async judge(seen: FileSeen, attempt: number): Promise<void> {
    const name = basename(seen.path);
    if (seen.kind === 'directory') {
      if (this.deps.os.appBundles && extensionOf(name) === '.app') await this.reportBundle(seen);
      return;
    }
    if (isPartialDownload(name)) return;
    const read = await readHead(seen.path, HEAD_BYTES);
    let stats: BigIntStats;
    let head: Buffer | undefined;
    if (read.ok) {
      stats = read.stats;
      head = read.head;
    } else {
      if (read.reason === 'gone' || read.reason === 'not-a-file') return;
      if (read.reason === 'busy') return this.retryLater(seen, attempt);
      // Unreadable (permissions): judged by its name and mode alone.
      try {
        stats = await lstat(seen.path, { bigint: true });
      } catch {
        return;
      }
      if (!stats.isFile()) return;
      this.log.debug('a new file cannot be read; judged by its name', { path: seen.path, code: read.code });
    }
    if (stats.size === 0n) return;
    const key = `${identityOf(stats)}:${stats.size}:${stats.mtimeNs}`;
    if (this.judged.has(key)) return;
    this.judged.set(key, true);
    if (this.judged.size > MAX_JUDGED) this.judged.delete(this.judged.keys().next().value!);
    const judgement = judgeFile({
      name,
      ...(this.deps.os.unixFiles ? { mode: Number(stats.mode) } : {}),
      size: Number(stats.size),
      ...(head ? { head } : {}),
    });
    if (!judgement.executable) return;
    await this.act(seen, stats, judgement);
  }

  private ownerOf(seen: FileSeen, stats: BigIntStats): number | undefined {
    if (!this.deps.os.unixFiles) return seen.folder.owner;
    return Number(stats.uid);
  }

  private isSystem(uid: number): boolean {
    return (this.deps.isSystemAccount ?? this.deps.os.isSystemAccount)(uid);
  }

  private async settingsFor(policy: Policy, person: number | undefined): Promise<{ settings: SoftwareSettings; role: string }> {
    let role: string | undefined;
    if (person !== undefined) {
      role = await this.cached(`role:${person}`, async () => {
        try {
          return await this.deps.roleOf(person);
        } catch (e) {
          this.log.warn('could not find the role of a file owner; using the default role', { uid: person, error: String(e) });
          return undefined;
        }
      });
    }
    role ??= policy.roles.default;
    return { settings: settingsFor(policy, 'software', role), role };
  }

  private async userOf(person: number | undefined, role: string): Promise<User | undefined> {
    if (person === undefined) return undefined;
    const name = await this.cached(`name:${person}`, async () => {
      try {
        return await this.deps.userName?.(person);
      } catch {
        return undefined;
      }
    });
    return { name: wellFormed(name || `uid ${person}`, 256), osId: String(person), role };
  }

  /** A role or name looked up once a minute per uid, not once per file (a hundred files from one zip). */
  private async cached(key: string, look: () => Promise<string | undefined>): Promise<string | undefined> {
    const now = this.now();
    const hit = this.lookups.get(key);
    if (hit && now - hit.at < LOOKUP_TTL_MS) return hit.value;
    const value = await look();
    this.lookups.set(key, { value, at: now });
    if (this.lookups.size > 10_000) this.lookups.delete(this.lookups.keys().next().value!);
    return value;
  }

  private async act(seen: FileSeen, stats: BigIntStats, judgement: Extract<FileJudgement, { executable: true }>): Promise<void> {
    const policy = this.deps.policy();
    const owner = this.ownerOf(seen, stats);
    const person = owner !== undefined && !this.isSystem(owner) ? owner : undefined;
    const { settings, role } = await this.settingsFor(policy, person);
    const wanted = settings.downloads.action;
    if (wanted === 'ignore') return;
    const audit = settings.mode === 'audit';
    const quarantine = wanted === 'quarantine' && !audit && person !== undefined;
    const size = Number(stats.size);
    const base = {
      clause: citeClause(policy, settings.downloads.clause),
      category: judgement.installer ? ('installer' as const) : undefined,
      user: await this.userOf(person, role),
    };

    if (!quarantine) {
      const hashed = await hashFile(seen.path, { timeoutMs: this.deps.hashTimeoutMs ?? 120_000 });
      if (!hashed.ok && hashed.reason === 'gone') return;
      if (hashed.ok && this.isExempt(hashed.sha256, hashed.size)) return;
      // Under audit the event says what would have been done; a file of no person is only ever reported.
      await this.detected(base, audit ? wanted : 'report', audit, {
        path: seen.path,
        sizeBytes: hashed.ok ? hashed.size : size,
        ...(hashed.ok ? { sha256: hashed.sha256 } : {}),
      });
      return;
    }

    // A file the network manager had restored is left alone, wherever it is now.
    if (this.exemptions.some((e) => e.size === size)) {
      const hashed = await hashFile(seen.path, { timeoutMs: this.deps.hashTimeoutMs ?? 120_000 });
      if (!hashed.ok && hashed.reason === 'gone') return;
      if (hashed.ok && this.isExempt(hashed.sha256, hashed.size)) return;
    }
    const outcome = await this.quarantine.quarantine(seen.path, identityOf(stats));
    if (!outcome.ok) {
      if (outcome.reason === 'gone') return;
      this.log.warn('a program could not be quarantined; it is reported instead', { path: seen.path, error: outcome.message });
      const hashed = await hashFile(seen.path, { timeoutMs: this.deps.hashTimeoutMs ?? 120_000 });
      if (!hashed.ok && hashed.reason === 'gone') return;
      await this.detected({ ...base, severity: 'warning' }, 'report', false, {
        path: seen.path,
        sizeBytes: size,
        ...(hashed.ok ? { sha256: hashed.sha256 } : {}),
      });
      return;
    }
    const record = outcome.record;
    const file = fileInfo(record);
    await this.detected({ ...base, severity: 'warning' }, 'quarantine', false, file);
    await this.deps.record({
      type: 'file.quarantined',
      severity: 'warning',
      time: this.iso(),
      data: { quarantineId: record.id, file },
      clause: base.clause,
      ...(base.user ? { user: base.user } : {}),
    });
    this.log.info('a program was quarantined', { id: record.id, path: record.originalPath, uid: person });
    this.notify(person!, policy, settings.downloads.clause, basename(record.originalPath), record.id);
  }

  private async detected(
    base: { clause: ReturnType<typeof citeClause>; category: 'installer' | undefined; user: User | undefined; severity?: 'notice' | 'warning' },
    action: 'report' | 'quarantine',
    audit: boolean,
    file: { path: string; sha256?: string; sizeBytes?: number },
  ): Promise<void> {
    await this.deps.record({
      type: 'software.detected',
      severity: base.severity ?? 'notice',
      time: this.iso(),
      data: {
        ruleId: DOWNLOADS_RULE_ID,
        ...(base.category ? { category: base.category } : {}),
        action,
        audit,
        file: { ...file, path: wellFormed(file.path, 1024) },
      },
      clause: base.clause,
      ...(base.user ? { user: base.user } : {}),
    });
  }

  /** macOS: a new `.app` folder. Reported, never moved: the program inside it is judged as a file where the depth reaches it. */
  private async reportBundle(seen: FileSeen): Promise<void> {
    let stats: BigIntStats;
    try {
      stats = await lstat(seen.path, { bigint: true });
    } catch {
      return;
    }
    if (!stats.isDirectory()) return;
    const key = `dir:${identityOf(stats)}:${stats.mtimeNs}`;
    if (this.judged.has(key)) return;
    this.judged.set(key, true);
    const policy = this.deps.policy();
    const owner = Number(stats.uid);
    const person = this.isSystem(owner) ? undefined : owner;
    const { settings, role } = await this.settingsFor(policy, person);
    if (settings.downloads.action === 'ignore') return;
    await this.detected(
      { clause: citeClause(policy, settings.downloads.clause), category: undefined, user: await this.userOf(person, role) },
      'report',
      settings.mode === 'audit',
      { path: seen.path },
    );
  }

  private isExempt(sha256: string, size: number): boolean {
    return this.exemptions.some((e) => e.sha256 === sha256 && e.size === size);
  }

  // ---- restoring --------------------------------------------------------------

  /**
   * The collector's `restore-file` command: the file goes back where it was,
   * exactly, and is not quarantined again (`file.restored`). Refusals carry a
   * coded error for `command.result`.
   */
  async restore(quarantineId: string): Promise<RestoreOutcome> {
    const outcome = await this.quarantine.restore(quarantineId, async (file) => {
      // Before the file reappears in a watched folder, or the watch would take it again.
      if (this.isExempt(file.sha256, file.size)) return;
      this.exemptions = [...this.exemptions, { ...file, quarantineId, at: this.iso() }].slice(-MAX_EXEMPTIONS);
      await this.exemptionsFile.save(this.exemptions);
    });
    if (!outcome.ok) {
      this.log.info('a file was not restored', { quarantineId: quarantineId.slice(0, 128), code: outcome.code });
      return outcome;
    }
    const record = outcome.record;
    await this.deps.record({ type: 'file.restored', severity: 'notice', time: this.iso(), data: { quarantineId: record.id, file: fileInfo(record) } });
    this.log.info('a quarantined file was restored', { id: record.id, path: record.originalPath });
    this.forgetNoticeOf(record.id);
    return outcome;
  }

  // ---- notices ----------------------------------------------------------------

  isMine(noticeId: string): boolean {
    return noticeId.startsWith(FILE_NOTICE_PREFIX);
  }

  /** A tray answer to one of this guard's notices: only "dismiss" is offered. */
  answer(noticeId: string, action: NoticeAction): Outcome {
    if (!this.isMine(noticeId)) return refusal('INV_ERR_PERMISSION_NOT_FOUND');
    if (action !== 'dismiss') return refusal('INV_ERR_UNEXPECTED_MESSAGE', `a software notice has no ${action} action`);
    for (const [uid, burst] of this.bursts) {
      if (burst.noticeId !== noticeId) continue;
      if (burst.timer) clearTimeout(burst.timer);
      this.bursts.delete(uid);
    }
    this.deps.notices.withdraw(noticeId);
    return { ok: true };
  }

  /**
   * One notice per person per burst: the first program shows at once; more
   * within the policy's `notices.throttleSeconds` (at least two seconds) are
   * counted into the same notice, shown again with the count when the window
   * ends. A hundred files from one zip make one notice, updated once or twice.
   */
  private notify(uid: number, policy: Policy, clauseId: string, name: string, quarantineId: string): void {
    const now = this.now();
    const windowMs = Math.max(policy.notices.throttleSeconds * 1000, MIN_NOTICE_WINDOW_MS);
    const burst = this.bursts.get(uid);
    if (burst) {
      burst.count++;
      burst.dirty = true;
      burst.quarantineIds.add(quarantineId);
      this.noticeOfQuarantine.set(quarantineId, uid);
      return;
    }
    const fresh: Burst = {
      noticeId: `${FILE_NOTICE_PREFIX}${uid}-${++this.noticeCounter}-${now.toString(36)}`,
      uid,
      count: 1,
      first: displayName(name),
      clauseId,
      shownAt: now,
      dirty: false,
      quarantineIds: new Set([quarantineId]),
    };
    this.bursts.set(uid, fresh);
    this.noticeOfQuarantine.set(quarantineId, uid);
    this.show(fresh, policy);
    this.armBurst(fresh, windowMs);
  }

  private armBurst(burst: Burst, windowMs: number): void {
    burst.timer = setTimeout(() => {
      burst.timer = undefined;
      if (this.bursts.get(burst.uid) !== burst || this.stopped) return;
      if (!burst.dirty) {
        this.bursts.delete(burst.uid);
        return;
      }
      burst.dirty = false;
      burst.shownAt = this.now();
      const policy = this.deps.policy();
      this.show(burst, policy);
      this.armBurst(burst, Math.max(policy.notices.throttleSeconds * 1000, MIN_NOTICE_WINDOW_MS));
    }, windowMs);
    burst.timer.unref();
  }

  private show(burst: Burst, policy: Policy): void {
    const contact = policy.notices.contact;
    const many = burst.count > 1;
    const notice: TrayNotice = {
      v: PROTOCOL_VERSION,
      type: 'tray.notice',
      noticeId: burst.noticeId,
      kind: 'software-blocked',
      title: many ? `${burst.count} programs were put away safely` : 'A program was put away safely',
      body: many
        ? `${burst.count} programs were saved on this computer, like "${burst.first}". Only the grown-ups who look after the school computers can add programs, so they have been put away safely. Nothing has been deleted. If you need them, ask ${contact}.`
        : `A program called "${burst.first}" was saved on this computer. Only the grown-ups who look after the school computers can add programs, so it has been put away safely. It has not been deleted. If you need it, ask ${contact}.`,
      clause: citeClause(policy, burst.clauseId),
      subject: many ? `${burst.first} and ${burst.count - 1} more` : burst.first,
      actions: ['dismiss'],
    };
    notice.body = notice.body.slice(0, 2000);
    notice.subject = notice.subject!.slice(0, 500);
    this.deps.notices.showTo(burst.uid, notice);
  }

  /** A restored file: its notice goes once none of the files it told of is still away. */
  private forgetNoticeOf(quarantineId: string): void {
    const uid = this.noticeOfQuarantine.get(quarantineId);
    this.noticeOfQuarantine.delete(quarantineId);
    const burst = uid === undefined ? undefined : this.bursts.get(uid);
    if (!burst) return;
    burst.quarantineIds.delete(quarantineId);
    if (burst.quarantineIds.size > 0) return;
    if (burst.timer) clearTimeout(burst.timer);
    this.bursts.delete(burst.uid);
    this.deps.notices.withdraw(burst.noticeId);
  }

  private iso(): string {
    return new Date(this.now()).toISOString();
  }
}

function fileInfo(record: QuarantineRecord): { path: string; sha256?: string; sizeBytes: number } {
  return { path: wellFormed(record.originalPath, 1024), sizeBytes: record.size, ...(record.sha256 ? { sha256: record.sha256 } : {}) };
}

/**
 * Text safe for events: at most `max` UTF-16 units, and no unpaired surrogate
 * (NTFS names may hold one; the collector refuses text with one).
 */
export function wellFormed(text: string, max: number): string {
  return text.slice(0, max).replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD');
}

/**
 * A file name as a notice shows it: control characters as spaces, and no
 * bidirectional overrides, so `gnp.exe` written backwards cannot pass for
 * `exe.png`. Markup is left as it is: the tray renders text as text.
 */
export function displayName(name: string): string {
  return wellFormed(
    name
      // eslint-disable-next-line no-control-regex -- removing control characters is the point
      .replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ')
      .replace(/[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, '')
      .trim(),
    200,
  );
}
