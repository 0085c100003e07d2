/**
 * The only value ever put into a USB script is an instance id. It is both
 * validated here and quoted (psQuote, agent/os/win32/ps-text.ts): validation
 * refuses what no PnP instance id can be, and quoting keeps whatever passes
 * inert even if the validation were ever loosened.
 */

/** PnP instance ids are printable ASCII without commas (documented by Microsoft); 200 is the documented MAX_DEVICE_ID_LEN. */
const INSTANCE_ID = /^USB\\[\x21-\x2b\x2d-\x7e]{1,196}$/;

/** Whether `value` can be a USB instance id the PnP manager reported. */
export function isUsbInstanceId(value: string): boolean {
  return INSTANCE_ID.test(value);
}
