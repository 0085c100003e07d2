/**
 * Shell scripts, run in the guest, that make and remove a USB gadget through
 * configfs on an emulated UDC (dummy_hcd). The gadget enumerates on the
 * guest's own dummy host controller, so it shows up in /sys/bus/usb/devices
 * with exactly the VID:PID and serial asked for; QEMU's usb-storage cannot
 * (it is always 46f4:0001).
 */

export interface GadgetOptions {
  vendorId: string;
  productId: string;
  serial: string;
  /** The backing store, a guest block device such as /dev/vdb (a virtio disk from startGuest's `disks`). */
  disk: string;
  /** Adds a boot-keyboard HID function: a composite "stick that is also a keyboard". */
  keyboard?: boolean;
}

const CONFIGFS = '/sys/kernel/config/usb_gadget';

/** The standard HID boot keyboard report descriptor (USB HID 1.11, appendix E.6). */
const KEYBOARD_REPORT = [
  0x05, 0x01, 0x09, 0x06, 0xa1, 0x01, 0x05, 0x07, 0x19, 0xe0, 0x29, 0xe7, 0x15, 0x00, 0x25, 0x01, 0x75, 0x01, 0x95, 0x08, 0x81, 0x02, 0x95, 0x01, 0x75, 0x08,
  0x81, 0x03, 0x95, 0x05, 0x75, 0x01, 0x05, 0x08, 0x19, 0x01, 0x29, 0x05, 0x91, 0x02, 0x95, 0x01, 0x75, 0x03, 0x91, 0x03, 0x95, 0x06, 0x75, 0x08, 0x15, 0x00,
  0x25, 0x65, 0x05, 0x07, 0x19, 0x00, 0x29, 0x65, 0x81, 0x00, 0xc0,
];

/** Single-quotes a value for sh. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

export function checkGadgetId(id: string): void {
  if (!/^[A-Za-z0-9_-]{1,32}$/.test(id)) throw new Error(`gadget id must be 1-32 letters, digits, _ or -: ${JSON.stringify(id)}`);
}

function hexId(name: string, value: string): string {
  const m = /^(?:0x)?([0-9a-fA-F]{1,4})$/.exec(value);
  if (!m?.[1]) throw new Error(`${name} must be up to four hex digits: ${JSON.stringify(value)}`);
  return `0x${m[1].padStart(4, '0').toLowerCase()}`;
}

export function createGadgetScript(id: string, options: GadgetOptions): string {
  checkGadgetId(id);
  if (!/^\/dev\/[\w/.-]+$/.test(options.disk)) throw new Error(`disk must be a /dev path: ${JSON.stringify(options.disk)}`);
  // dash's printf knows octal escapes, not \x: the descriptor goes in as octal.
  const report = KEYBOARD_REPORT.map((b) => `\\${b.toString(8).padStart(3, '0')}`).join('');
  const lines = [
    'set -e',
    `G=${CONFIGFS}/${id}`,
    `[ ! -e "$G" ] || { echo "gadget ${id} already exists"; exit 1; }`,
    '[ -b ' + shellQuote(options.disk) + ' ] || { echo "no block device ' + options.disk + '"; exit 1; }',
    // The first emulated UDC no gadget is bound to (/init loads dummy_hcd with two).
    'udc=',
    'for u in $(ls /sys/class/udc); do',
    '  used=no',
    `  for f in ${CONFIGFS}/*/UDC; do [ -r "$f" ] && [ "$(cat "$f")" = "$u" ] && used=yes; done`,
    '  if [ "$used" = no ]; then udc=$u; break; fi',
    'done',
    '[ -n "$udc" ] || { echo "no free UDC in /sys/class/udc"; exit 1; }',
    'mkdir "$G"',
    'cd "$G"',
    `echo ${hexId('vendorId', options.vendorId)} > idVendor`,
    `echo ${hexId('productId', options.productId)} > idProduct`,
    'echo 0x0100 > bcdDevice',
    'echo 0x0200 > bcdUSB',
    'mkdir strings/0x409',
    `printf '%s' ${shellQuote(options.serial)} > strings/0x409/serialnumber`,
    'echo "Invigilator rig" > strings/0x409/manufacturer',
    `echo "Rig gadget ${id}" > strings/0x409/product`,
    'mkdir configs/c.1 configs/c.1/strings/0x409',
    'echo "rig" > configs/c.1/strings/0x409/configuration',
    'echo 250 > configs/c.1/MaxPower',
    'mkdir functions/mass_storage.0',
    'echo 1 > functions/mass_storage.0/lun.0/removable',
    `echo ${shellQuote(options.disk)} > functions/mass_storage.0/lun.0/file`,
    'ln -s functions/mass_storage.0 configs/c.1/',
  ];
  if (options.keyboard) {
    lines.push(
      'mkdir functions/hid.0',
      'echo 1 > functions/hid.0/protocol',
      'echo 1 > functions/hid.0/subclass',
      'echo 8 > functions/hid.0/report_length',
      `printf '${report}' > functions/hid.0/report_desc`,
      'ln -s functions/hid.0 configs/c.1/',
    );
  }
  lines.push('echo "$udc" > UDC', 'echo "$udc"');
  return lines.join('\n');
}

/** Undoes createGadgetScript in reverse order; tolerates a gadget made only in part. */
export function removeGadgetScript(id: string): string {
  checkGadgetId(id);
  return [
    `G=${CONFIGFS}/${id}`,
    '[ -d "$G" ] || exit 0',
    'cd "$G"',
    // Unbinding first is what makes the device disappear from the guest's USB bus.
    '[ -z "$(cat UDC)" ] || echo "" > UDC',
    'rm -f configs/c.1/mass_storage.0 configs/c.1/hid.0',
    'rmdir configs/c.1/strings/0x409 configs/c.1 functions/mass_storage.0 functions/hid.0 strings/0x409 2>/dev/null || true',
    'cd /',
    'rmdir "$G"',
  ].join('\n');
}
