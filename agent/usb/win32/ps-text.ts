/**
 * Values that end up inside PowerShell source. Every value is both validated
 * and quoted: validation refuses what no PnP instance id can be, and quoting
 * keeps whatever passes inert even if the validation were ever loosened.
 */

/** PnP instance ids are printable ASCII without commas (documented by Microsoft); 200 is the documented MAX_DEVICE_ID_LEN. */
const INSTANCE_ID = /^USB\\[\x21-\x2b\x2d-\x7e]{1,196}$/;

/** Whether `value` can be a USB instance id the PnP manager reported. */
export function isUsbInstanceId(value: string): boolean {
  return INSTANCE_ID.test(value);
}

/**
 * A single-quoted PowerShell string literal. Inside single quotes PowerShell
 * expands nothing; the only way out is a quote character, and PowerShell
 * treats the typographic single quotes (U+2018 to U+201B) as quotes too, so
 * each of them is doubled like the ASCII one.
 */
export function psQuote(value: string): string {
  return `'${value.replace(/['\u2018\u2019\u201a\u201b]/g, (q) => q + q)}'`;
}
