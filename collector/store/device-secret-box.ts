import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { InvigilatorError } from '../../shared/errors';

/**
 * Device secrets at rest. The collector needs each device's secret itself
 * (it computes the HMAC of every challenge and of every offline code), so it
 * cannot keep only a verifier; it keeps the secret sealed instead, with
 * AES-256-GCM under a key that lives outside the database (a file in the
 * data folder, or one path shared by collectors on one PostgreSQL: see
 * docs/deployment.md). A copy of the database without that key holds nothing
 * that proves a device or mints an offline code for it.
 *
 * Each secret is bound to its device id (GCM's associated data), so a sealed
 * secret moved to another device's row does not open. Stored as
 * [version 1][12-byte IV][16-byte tag][ciphertext]: 61 bytes for a 32-byte secret.
 */

export const SECRET_KEY_BYTES = 32;
const VERSION = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const AAD_LABEL = 'invigilator-device-secret-v1\n';

export class DeviceSecretBox {
  /** Names the key without revealing it: stored with every sealed row and once per database, so a collector with another key is refused at start. */
  readonly keyId: string;
  private readonly key: Buffer;

  constructor(key: Buffer) {
    if (!Buffer.isBuffer(key) || key.length !== SECRET_KEY_BYTES) {
      throw new InvigilatorError(
        'INV_ERR_CONFIG_INVALID',
        `the device secret key must be ${SECRET_KEY_BYTES} bytes, not ${Buffer.isBuffer(key) ? key.length : typeof key}`,
      );
    }
    this.key = Buffer.from(key);
    this.keyId = createHmac('sha256', this.key).update('invigilator device-secret key id v1').digest('hex').slice(0, 32);
  }

  seal(deviceId: string, secret: Buffer): Buffer {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(Buffer.from(AAD_LABEL + deviceId));
    const body = Buffer.concat([cipher.update(secret), cipher.final()]);
    return Buffer.concat([Buffer.of(VERSION), iv, cipher.getAuthTag(), body]);
  }

  /** The secret, or INV_ERR_SECRET_KEY_MISMATCH when it was not sealed for this device under this key (or was altered). */
  open(deviceId: string, sealed: Buffer): Buffer {
    const refuse = () => new InvigilatorError('INV_ERR_SECRET_KEY_MISMATCH', `the secret of device ${deviceId} does not open under this key`);
    if (sealed.length <= 1 + IV_BYTES + TAG_BYTES || sealed[0] !== VERSION) throw refuse();
    const iv = sealed.subarray(1, 1 + IV_BYTES);
    const tag = sealed.subarray(1 + IV_BYTES, 1 + IV_BYTES + TAG_BYTES);
    const decipher = createDecipheriv('aes-256-gcm', this.key, iv);
    decipher.setAAD(Buffer.from(AAD_LABEL + deviceId));
    decipher.setAuthTag(tag);
    try {
      return Buffer.concat([decipher.update(sealed.subarray(1 + IV_BYTES + TAG_BYTES)), decipher.final()]);
    } catch {
      throw refuse();
    }
  }
}

/** The name under which a database records the id of the key its secrets are sealed under (collector_settings). */
export const SECRET_KEY_SETTING = 'device_secret_key_id';

export function keyMismatch(held: string): InvigilatorError {
  return new InvigilatorError(
    'INV_ERR_SECRET_KEY_MISMATCH',
    `sealed under key ${held}; this collector's key is another (collectors sharing a database must share one key file: docs/deployment.md)`,
  );
}
