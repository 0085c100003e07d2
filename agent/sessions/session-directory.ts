import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { descriptorText } from '../../shared/usb/descriptor-text';

// The contracts live in the core, which the roster (agent/core/roster.ts) builds on; the adapters are here.
export type { SessionDirectory, UserSession } from '../core/sessions';
import type { SessionDirectory, UserSession } from '../core/sessions';

/** The users signed in at this computer's screen, by uid: one tray socket each. */
export interface SignedInUsers {
  list(): Promise<number[]>;
}

/** Session files are a few hundred bytes; anything much larger is not logind's. */
const MAX_SESSION_FILE_BYTES = 16 * 1024;
const SESSION_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

/** Parses logind's `KEY=value` session file; undefined when it lacks what a session must have. */
export function parseLogindSession(sessionId: string, text: string): UserSession | undefined {
  if (!SESSION_ID.test(sessionId) || text.length > MAX_SESSION_FILE_BYTES) return undefined;
  const fields = new Map<string, string>();
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) fields.set(line.slice(0, eq), line.slice(eq + 1));
  }
  const uid = fields.get('UID');
  if (!uid || !/^\d{1,10}$/.test(uid)) return undefined;
  // Greeters, lock screens and the per-user service manager are not a person signing in.
  const cls = fields.get('CLASS') ?? 'user';
  if (cls !== 'user' && cls !== 'user-early' && cls !== 'user-incomplete') return undefined;
  if (fields.get('STATE') === 'closing') return undefined;
  const type = fields.get('TYPE') ?? '';
  const realtime = fields.get('REALTIME');
  const since = realtime && /^\d{1,20}$/.test(realtime) ? new Date(Number(BigInt(realtime) / 1000n)).toISOString() : undefined;
  return {
    sessionId,
    uid: Number(uid),
    // A name is display only, but it reaches the tray and the dashboard: no control or direction characters.
    user: descriptorText(fields.get('USER') ?? '', 256) ?? '',
    active: fields.get('ACTIVE') === '1',
    remote: fields.get('REMOTE') === '1',
    kind: type === 'x11' || type === 'wayland' || type === 'mir' ? 'graphical' : type === 'tty' ? 'text' : 'other',
    ...(since ? { since } : {}),
  };
}

/**
 * systemd-logind writes one file per session to `/run/systemd/sessions`
 * (`UID=`, `USER=`, `ACTIVE=`, `TYPE=`, `CLASS=`, `REALTIME=` ...). Reading the
 * files needs no D-Bus connection and works the same in the QEMU guest and
 * under a test's fixture folder.
 */
export class LogindSessions implements SessionDirectory, SignedInUsers {
  constructor(private readonly dir = '/run/systemd/sessions') {}

  async sessions(): Promise<UserSession[]> {
    const names = await readdir(this.dir).catch(() => [] as string[]);
    const found: UserSession[] = [];
    for (const name of names.filter((n) => SESSION_ID.test(n)).slice(0, 1000)) {
      // A session that ended between readdir and read is simply gone.
      const text = await readFile(join(this.dir, name), 'utf8').catch(() => undefined);
      const session = text === undefined ? undefined : parseLogindSession(name, text);
      if (session) found.push(session);
    }
    return found.sort((a, b) => a.sessionId.localeCompare(b.sessionId));
  }

  /** Users with a desktop at this computer: an ssh login runs no tray, so it gets no socket and is never reported trayless. */
  async list(): Promise<number[]> {
    const desktops = (await this.sessions()).filter((s) => s.kind === 'graphical' && !s.remote);
    return [...new Set(desktops.map((s) => s.uid))].sort((a, b) => a - b);
  }
}

/**
 * One read of the OS's sessions, shared by everything that asks within
 * `maxAgeMs`: each 5 s tick, the session watcher, the logoff rule and the
 * file watch's home folders all ask, and on Windows each read is a `quser`
 * process. Calls made while a read is under way wait for that read.
 */
export class SharedSessionRead implements SessionDirectory {
  private last: { at: number; read: Promise<UserSession[]> } | undefined;

  constructor(
    private readonly inner: SessionDirectory,
    private readonly maxAgeMs = 1000,
    private readonly now: () => number = Date.now,
  ) {}

  sessions(): Promise<UserSession[]> {
    const at = this.now();
    if (!this.last || at - this.last.at >= this.maxAgeMs) this.last = { at, read: this.inner.sessions() };
    return this.last.read;
  }
}
