import type { KeyedUsbAllowlistEntry, UsbAllowlistEntry } from '../shared/policy/schema';
import { USB_ALLOW_SCHEME, usbAllowDigest, usbAllowKey } from '../node-common/usb-allow-digest';

/**
 * An approval for every computer, as one computer that did not ask receives it: the entry's id
 * and expiry, a digest of the USB device under that computer's own key, and a note that names
 * neither the pupil nor their reason. A rogue computer learns that something was approved, not
 * what: it cannot turn the digest into ids to copy onto a stick without searching every vendor
 * and product (and serial, which is what makes that search hopeless; see docs/architecture.md).
 */
export function keyedEntryFor(entry: UsbAllowlistEntry, deviceSecret: Buffer, by: string): KeyedUsbAllowlistEntry {
  const serial = entry.serial !== undefined;
  return {
    id: entry.id,
    match: {
      scheme: USB_ALLOW_SCHEME,
      digest: usbAllowDigest(usbAllowKey(deviceSecret), { vendorId: entry.vendorId, productId: entry.productId, serial: entry.serial }),
      serial,
    },
    ...(entry.expiresAt !== undefined ? { expiresAt: entry.expiresAt } : {}),
    note: `Approved for every school computer by ${by} (entry ${entry.id})`,
  };
}
