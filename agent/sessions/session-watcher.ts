import { join } from 'node:path';
import { z } from 'zod';
import type { EventData } from '../../shared/protocol/events';
import type { Logger } from '../../node-common/logging';
import { JsonStateFile } from '../core/state-file';
import type { EventDraft, Recorder } from '../core/events';
import type { SessionDirectory, UserSession } from './session-directory';

/** Whether a session's screen is locked, where the OS says. */
export interface LockSource {
  isLocked(session: UserSession): Promise<boolean | undefined>;
}

const known = z.strictObject({
  sessions: z
    .array(
      z.strictObject({
        sessionId: z.string().max(128),
        uid: z.number().int().min(0),
        user: z.string().max(256),
        role: z.string().max(128),
        locked: z.boolean(),
      }),
    )
    .max(10_000),
});
type Known = z.infer<typeof known>['sessions'][number];

export interface SessionWatcherOptions {
  directory: SessionDirectory;
  dataDir: string;
  record: Recorder;
  /** The user's role from their groups (roles.ts). */
  roleOf: (session: UserSession) => Promise<string>;
  locks?: LockSource;
  /** A new session (or, after a restart, one the agent had not seen): claim its lease. */
  onStarted?: (session: UserSession, role: string) => Promise<void>;
  /** A session has gone. */
  onEnded?: (sessionId: string) => Promise<void>;
  logger: Logger;
  now?: () => Date;
}

/**
 * Turns the OS's list of sessions, read every few seconds, into events:
 * `session.started` (with the user's role), `session.ended`,
 * `session.locked`, `session.unlocked`. What it has seen is kept on disk, so a
 * restarted agent neither reports a session twice nor misses one that ended
 * while it was down.
 */
export class SessionWatcher {
  private readonly file: JsonStateFile<z.infer<typeof known>>;
  private seen = new Map<string, Known>();
  private loaded = false;
  private readonly log: Logger;

  constructor(private readonly options: SessionWatcherOptions) {
    this.file = new JsonStateFile(join(options.dataDir, 'sessions.json'), known, () => ({ sessions: [] }), options.logger);
    this.log = options.logger.child({ component: 'sessions' });
  }

  /** The sessions known now, with their roles. */
  current(): Known[] {
    return [...this.seen.values()];
  }

  async poll(): Promise<void> {
    if (!this.loaded) {
      this.seen = new Map((await this.file.load()).sessions.map((s) => [s.sessionId, s]));
      this.loaded = true;
      // Sessions seen before a restart still need their leases: the claim is idempotent at the collector.
      const now = await this.options.directory.sessions();
      for (const s of now) {
        const before = this.seen.get(s.sessionId);
        if (before && before.uid === s.uid) await this.options.onStarted?.(s, before.role);
      }
    }
    const sessions = await this.options.directory.sessions();
    let changed = false;
    const present = new Set(sessions.map((s) => s.sessionId));
    for (const [sessionId, before] of [...this.seen]) {
      if (present.has(sessionId)) continue;
      this.seen.delete(sessionId);
      changed = true;
      await this.event('session.ended', { sessionId, ...(before.user ? { user: before.user } : {}) });
      await this.options.onEnded?.(sessionId);
    }
    for (const session of sessions) {
      const before = this.seen.get(session.sessionId);
      // logind reuses session ids after a reboot: a different user is a different session.
      if (before && before.uid !== session.uid) {
        this.seen.delete(session.sessionId);
        await this.event('session.ended', { sessionId: session.sessionId, ...(before.user ? { user: before.user } : {}) });
        await this.options.onEnded?.(session.sessionId);
      }
      const locked = (await this.options.locks?.isLocked(session)) ?? this.seen.get(session.sessionId)?.locked ?? false;
      const known = this.seen.get(session.sessionId);
      if (!known) {
        const role = await this.options.roleOf(session).catch(() => '');
        const entry: Known = { sessionId: session.sessionId, uid: session.uid, user: session.user, role, locked };
        this.seen.set(session.sessionId, entry);
        changed = true;
        await this.event('session.started', { sessionId: session.sessionId, ...(session.user ? { user: session.user } : {}), role: role || 'unknown' });
        await this.options.onStarted?.(session, role);
        continue;
      }
      if (known.locked !== locked) {
        known.locked = locked;
        changed = true;
        await this.event(locked ? 'session.locked' : 'session.unlocked', { sessionId: session.sessionId, ...(known.user ? { user: known.user } : {}) });
      }
    }
    if (changed) await this.file.save({ sessions: [...this.seen.values()] });
  }

  private async event<T extends 'session.started' | 'session.ended' | 'session.locked' | 'session.unlocked'>(type: T, data: EventData<T>): Promise<void> {
    this.log.info(type, data);
    // The union of drafts cannot be narrowed by a generic key; the data's type is checked by the signature above.
    await this.options.record({ type, severity: 'info', time: (this.options.now?.() ?? new Date()).toISOString(), data } as EventDraft);
  }
}
