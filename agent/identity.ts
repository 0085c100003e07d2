import { readFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { InvigilatorError } from '../shared/errors';
import { base64url, identifier } from '../shared/protocol/primitives';
import { decodeUntrusted } from '../shared/schema';
import { writeAtomically } from './core/state-file';

const identitySchema = z.strictObject({ deviceId: identifier, deviceSecret: base64url, collectorUrl: z.string().max(2048) });
export type Identity = z.infer<typeof identitySchema>;

/**
 * The device id and secret the collector issued at enrollment. The file is
 * readable by its owner (root, or SYSTEM through the installer's ACL) only.
 */
export class IdentityFile {
  readonly path: string;

  constructor(dataDir: string) {
    this.path = join(dataDir, 'identity.json');
  }

  async load(): Promise<Identity | undefined> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new InvigilatorError('INV_ERR_FILE_UNREADABLE', `${this.path}: ${(e as NodeJS.ErrnoException).code}`);
    }
    const decoded = decodeUntrusted(identitySchema, text);
    if (!decoded.ok) throw new InvigilatorError('INV_ERR_CONFIG_INVALID', `${this.path} is damaged; delete it to enroll again`, decoded.problems);
    return decoded.value;
  }

  /**
   * A random id for this installation, written durably before the first
   * enrollment attempt, so that an enrollment interrupted by a crash is
   * resumed as the same device rather than creating a second one.
   */
  async installationId(): Promise<string> {
    const path = join(dirname(this.path), 'installation-id');
    try {
      const existing = (await readFile(path, 'utf8')).trim();
      if (/^inst-[A-Za-z0-9_-]{16,64}$/.test(existing)) return existing;
    } catch {
      // Not written yet.
    }
    const id = `inst-${randomBytes(16).toString('base64url')}`;
    await writeAtomically(path, id);
    return id;
  }

  async save(identity: Identity): Promise<void> {
    await writeAtomically(this.path, JSON.stringify(identity));
  }
}
