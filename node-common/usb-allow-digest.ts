import { createHmac } from 'node:crypto';

/**
 * An all-computers USB approval reaches each computer that did not ask as a digest, not as the
 * device's vendor, product and serial (shared/policy/schema.ts, keyedUsbAllowlistEntry). Each
 * computer's key comes from its own device secret, which only it and the collector hold, so one
 * computer's entry tells another nothing and cannot be matched there.
 */
export const USB_ALLOW_SCHEME = 'hmac-sha256-v1';

/** This computer's key for keyed allowlist entries, derived from its device secret (never the secret itself). */
export function usbAllowKey(deviceSecret: Buffer): Buffer {
  return createHmac('sha256', deviceSecret).update('invigilator-usb-allow-v1').digest();
}

/** The digest of a USB device under a computer's key: ids in lower case, the serial when the entry names one. */
export function usbAllowDigest(key: Buffer, device: { vendorId: string; productId: string; serial?: string | undefined }): string {
  return createHmac('sha256', key)
    .update(`${device.vendorId.toLowerCase()}\n${device.productId.toLowerCase()}\n${device.serial ?? ''}`)
    .digest('base64url');
}
