import { createHmac, timingSafeEqual } from 'node:crypto';
import type { ErrorCode } from '../shared/errors';

/**
 * Offline exception codes, after Endpoint Protector's offline temporary
 * passwords: the network manager reads a short code to someone on the phone,
 * they type it into the block notice, and the agent checks it with no network.
 *
 * A code is 60 bits in 12 Crockford base-32 characters (XXXX-XXXX-XXXX):
 * 24 bits of expiry (minutes since 2026-01-01 UTC) and a 36-bit HMAC-SHA256
 * over the computer's device id, the USB device's vendor, product and serial,
 * and that expiry, keyed with the device secret that only this computer and
 * the collector hold. So a code works on one computer, for one USB device,
 * until it expires; the agent remembers used codes so each works once, and
 * throttles wrong guesses so 36 bits are far more than enough.
 */

const EPOCH_MS = Date.UTC(2026, 0, 1);
const MINUTE = 60_000;
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const EXPIRY_BITS = 24;
const MAC_BITS = 36;
/** The longest a code may be valid: a school day and a night. */
export const OFFLINE_CODE_MAX_MINUTES = 36 * 60;

export interface OfflineCodeSubject {
  /** The computer (the collector's device id). */
  deviceId: string;
  vendorId: string;
  productId: string;
  serial?: string | undefined;
}

function mac(secret: Buffer, subject: OfflineCodeSubject, expiryMinute: number): bigint {
  const text = [
    'invigilator-usb-offline-v1',
    subject.deviceId,
    subject.vendorId.toLowerCase(),
    subject.productId.toLowerCase(),
    subject.serial ?? '',
    expiryMinute,
  ].join('|');
  const digest = createHmac('sha256', secret).update(text).digest();
  return BigInt(`0x${digest.subarray(0, 5).toString('hex')}`) >> BigInt(40 - MAC_BITS);
}

function encode(value: bigint): string {
  let out = '';
  for (let i = 11; i >= 0; i--) out += ALPHABET[Number((value >> BigInt(i * 5)) & 31n)];
  return `${out.slice(0, 4)}-${out.slice(4, 8)}-${out.slice(8)}`;
}

/** Accepts what people type: any case, spaces or hyphens, and O/I/L for 0/1/1. */
function decode(typed: string): bigint | undefined {
  const clean = typed.toUpperCase().replace(/[\s-]/g, '').replace(/O/g, '0').replace(/[IL]/g, '1');
  if (!/^[0-9A-HJKMNP-TV-Z]{12}$/.test(clean)) return undefined;
  let value = 0n;
  for (const ch of clean) value = (value << 5n) | BigInt(ALPHABET.indexOf(ch));
  return value;
}

/** Mints a code for the collector. `validMinutes` is capped at OFFLINE_CODE_MAX_MINUTES. */
export function issueOfflineCode(secret: Buffer, subject: OfflineCodeSubject, nowMs: number, validMinutes: number): { code: string; expiresAt: string } {
  const minutes = Math.max(1, Math.min(OFFLINE_CODE_MAX_MINUTES, Math.floor(validMinutes)));
  const expiryMinute = Math.ceil((nowMs - EPOCH_MS) / MINUTE) + minutes;
  if (expiryMinute <= 0 || expiryMinute >= 2 ** EXPIRY_BITS) throw new RangeError('the clock is outside the range offline codes can express');
  const value = (BigInt(expiryMinute) << BigInt(MAC_BITS)) | mac(secret, subject, expiryMinute);
  return { code: encode(value), expiresAt: new Date(EPOCH_MS + expiryMinute * MINUTE).toISOString() };
}

export type OfflineCodeCheck = { ok: true; expiresAt: string; canonical: string } | { ok: false; code: ErrorCode };

/** Checks a typed code for this computer and this USB device. Whether it was used before is the caller's to remember (by `canonical`). */
export function checkOfflineCode(secret: Buffer, subject: OfflineCodeSubject, typed: string, nowMs: number): OfflineCodeCheck {
  const value = decode(typed.slice(0, 64));
  if (value === undefined) return { ok: false, code: 'INV_ERR_OFFLINE_CODE_INVALID' };
  const expiryMinute = Number(value >> BigInt(MAC_BITS));
  const given = value & ((1n << BigInt(MAC_BITS)) - 1n);
  const expected = mac(secret, subject, expiryMinute);
  const a = Buffer.from(given.toString(16).padStart(9, '0'));
  const b = Buffer.from(expected.toString(16).padStart(9, '0'));
  if (!timingSafeEqual(a, b)) return { ok: false, code: 'INV_ERR_OFFLINE_CODE_INVALID' };
  const expiresMs = EPOCH_MS + expiryMinute * MINUTE;
  if (nowMs >= expiresMs) return { ok: false, code: 'INV_ERR_OFFLINE_CODE_EXPIRED' };
  // A code issued with a longer life than any code can have was not made by a collector.
  if (expiresMs - nowMs > (OFFLINE_CODE_MAX_MINUTES + 1) * MINUTE) return { ok: false, code: 'INV_ERR_OFFLINE_CODE_INVALID' };
  return { ok: true, expiresAt: new Date(expiresMs).toISOString(), canonical: encode(value) };
}
