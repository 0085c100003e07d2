import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { TrayNotice, TrayStatus } from '../../shared/protocol';
import type { Logger } from '../../node-common/logging';
import type { Notices } from '../core/notices';
import type { SignedInUsers } from '../sessions/session-directory';
import { TrayServer, type TrayServerOptions } from './tray-server';

/**
 * One tray socket per signed-in user: `<dir>/<uid>.sock`, owned by that user,
 * mode 0600, in a folder only root can write. The OS refuses every other user
 * (EACCES), so a tray cannot act for someone else, and a user cannot pose as
 * the agent because only root can create sockets there. Notices about the
 * computer (a blocked stick) go to every signed-in user's tray; notices about
 * one person (their agreement to the policy) go to theirs alone.
 */
export class UserTrays implements Notices {
  private readonly servers = new Map<number, TrayServer>();
  /** Notices up now, and whose they are (undefined: everyone's), for sockets opened later. */
  private readonly shown = new Map<string, { notice: TrayNotice; uid: number | undefined }>();
  private lastStatus: TrayStatus | undefined;

  constructor(
    private readonly options: {
      dir: string;
      users: SignedInUsers;
      logger: Logger;
      onAnswer: TrayServerOptions['onAnswer'];
      onReport?: TrayServerOptions['onReport'];
      onHello?: TrayServerOptions['onHello'];
      onIdle?: TrayServerOptions['onIdle'];
      onGone?: TrayServerOptions['onGone'];
      verifySession?: TrayServerOptions['verifySession'];
      /** The user's primary group for the socket; defaults to the uid's own number (Debian's user private groups). */
      gidFor?: (uid: number) => number;
      /** How long a signed-in user may be without a tray before it is reported (the policy's `trayGraceSeconds`). */
      graceSeconds?: () => number;
      /** A signed-in user has had no tray for the grace period: it never started, or it was killed. */
      onMissing?: (uid: number, sinceSeconds: number) => void;
      now?: () => number;
    },
  ) {}

  /** Per user: since when they have had no tray, and whether that absence was reported. */
  private readonly absent = new Map<number, { since: number; reported: boolean }>();

  /** Brings the sockets in line with who is signed in now. */
  async sync(): Promise<void> {
    await mkdir(this.options.dir, { recursive: true, mode: 0o755 });
    const info = await stat(this.options.dir);
    if (info.uid !== process.getuid?.() || (info.mode & 0o022) !== 0) {
      // A folder someone else can write could hold their socket in our name.
      throw new Error(`${this.options.dir} must belong to root and be writable by it alone`);
    }
    const wanted = new Set((await this.options.users.list()).filter((uid) => uid !== 0));
    for (const [uid, server] of this.servers) {
      if (wanted.has(uid)) continue;
      this.servers.delete(uid);
      this.absent.delete(uid);
      await server.close();
    }
    this.checkMissing();
    for (const uid of wanted) {
      if (this.servers.has(uid)) continue;
      const server = new TrayServer({
        path: join(this.options.dir, `${uid}.sock`),
        logger: this.options.logger,
        owner: { uid, gid: this.options.gidFor?.(uid) ?? uid },
        onAnswer: this.options.onAnswer,
        ...(this.options.onReport ? { onReport: this.options.onReport } : {}),
        ...(this.options.onHello ? { onHello: this.options.onHello } : {}),
        ...(this.options.onIdle ? { onIdle: this.options.onIdle } : {}),
        ...(this.options.onGone ? { onGone: this.options.onGone } : {}),
        ...(this.options.verifySession ? { verifySession: this.options.verifySession } : {}),
      });
      try {
        await server.listen();
        if (this.lastStatus) server.status(this.lastStatus);
        for (const { notice, uid: owner } of this.shown.values()) if (owner === undefined || owner === uid) server.show(notice);
        this.servers.set(uid, server);
        this.absent.set(uid, { since: this.now(), reported: false });
      } catch (e) {
        this.options.logger.error('could not open a tray socket for a user', { uid, error: String(e) });
      }
    }
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  /** Called on every sync: a user whose tray has not said hello within the grace period, or went away, is reported once per absence. */
  private checkMissing(): void {
    const grace = (this.options.graceSeconds?.() ?? 120) * 1000;
    const now = this.now();
    for (const [uid, server] of this.servers) {
      if (server.trays > 0) {
        this.absent.delete(uid);
        continue;
      }
      const absence = this.absent.get(uid) ?? { since: now, reported: false };
      this.absent.set(uid, absence);
      if (!absence.reported && now - absence.since >= grace) {
        absence.reported = true;
        this.options.onMissing?.(uid, Math.floor((now - absence.since) / 1000));
      }
    }
  }

  /** Trays connected for a user now. */
  traysOf(uid: number): number {
    return this.servers.get(uid)?.trays ?? 0;
  }

  get uids(): number[] {
    return [...this.servers.keys()].sort((a, b) => a - b);
  }

  show(notice: TrayNotice): void {
    this.shown.set(notice.noticeId, { notice, uid: undefined });
    for (const s of this.servers.values()) s.show(notice);
  }

  /** A notice for one person only: their trays see it, nobody else's. */
  showTo(uid: number, notice: TrayNotice): void {
    this.shown.set(notice.noticeId, { notice, uid });
    this.servers.get(uid)?.show(notice);
  }

  withdraw(noticeId: string): void {
    this.shown.delete(noticeId);
    for (const s of this.servers.values()) s.withdraw(noticeId);
  }

  status(status: TrayStatus): void {
    this.lastStatus = status;
    for (const s of this.servers.values()) s.status(status);
  }

  async close(): Promise<void> {
    for (const s of this.servers.values()) await s.close();
    this.servers.clear();
  }
}
