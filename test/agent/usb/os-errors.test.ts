import { ERRORS, InvigilatorError } from '../../../shared/errors';
import { RecordedCommands } from '../../../agent/os/recorded-commands';
import { RecordedPowerShell } from '../../../agent/os/win32/recorded-powershell';
import { createDarwinUsbPlatform } from '../../../agent/usb/darwin/darwin-usb-platform';
import { IOREG_ARGS, IOREG_FILE } from '../../../agent/usb/darwin/ioreg';
import { programRunner } from '../../../agent/usb/linux/linux-usb-platform';
import { asUsbError } from '../../../agent/usb/os-errors';
import { createWin32UsbPlatform } from '../../../agent/usb/win32/win32-usb-platform';

/*
 * The OS room names each way a program fails; `usb.enforcement.failed` keeps
 * the codes and messages it always had (docs/protocol.md), so each USB adapter
 * translates, with the same detail.
 */

async function failureOf(promise: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await promise;
  } catch (e) {
    if (e instanceof InvigilatorError) return { code: e.code, message: e.message };
    throw e;
  }
  throw new Error('it did not fail');
}

const usbFailed = (detail: string) => ({ code: 'INV_ERR_USB_OS_COMMAND_FAILED', message: `${ERRORS.INV_ERR_USB_OS_COMMAND_FAILED}: ${detail}` });

describe('USB failures of OS programs', () => {
  it('macOS: an ioreg that hangs is INV_ERR_USB_OS_COMMAND_FAILED, saying it did not finish', async () => {
    const runner = new RecordedCommands().record(IOREG_FILE, [...IOREG_ARGS], { hangs: true });
    expect(await failureOf(createDarwinUsbPlatform({ runner }).start(() => undefined))).toEqual(usbFailed(`${IOREG_FILE}: did not finish within 30000 ms`));
  });

  it('macOS: an ioreg that prints too much is INV_ERR_USB_OS_COMMAND_FAILED, as it always was', async () => {
    const runner = new RecordedCommands(10).record(IOREG_FILE, [...IOREG_ARGS], { stdout: 'x'.repeat(11) });
    expect(await failureOf(createDarwinUsbPlatform({ runner }).start(() => undefined))).toEqual(usbFailed(`${IOREG_FILE}: printed more than 10 bytes`));
  });

  it('Linux: a missing umount and one killed by a signal are INV_ERR_USB_OS_COMMAND_FAILED', async () => {
    const runner = new RecordedCommands().record('umount', ['/media/stick'], { missing: true }).record('blockdev', ['--setro'], { signal: 'SIGKILL' });
    const run = programRunner(runner);
    expect(await failureOf(run('umount', ['/media/stick']))).toEqual(usbFailed('umount: ENOENT'));
    expect(await failureOf(run('blockdev', ['--setro']))).toEqual(usbFailed('blockdev: killed by SIGKILL'));
  });

  it('Windows: a script that throws is INV_ERR_USB_OS_COMMAND_FAILED; an answer over the bound is INV_ERR_USB_OS_OUTPUT_INVALID', async () => {
    const throwing = new RecordedPowerShell(() => ({ error: 'Get-PnpDevice: access denied' }));
    expect(await failureOf(createWin32UsbPlatform({ session: throwing }).start(() => undefined))).toEqual(usbFailed('Get-PnpDevice: access denied'));
    const flooding = new RecordedPowerShell(() => 'x'.repeat(100), 10);
    expect(await failureOf(createWin32UsbPlatform({ session: flooding }).start(() => undefined))).toEqual({
      code: 'INV_ERR_USB_OS_OUTPUT_INVALID',
      message: `${ERRORS.INV_ERR_USB_OS_OUTPUT_INVALID}: more than 10 characters of output`,
    });
  });

  it('leaves every other error as it was', () => {
    const gone = new InvigilatorError('INV_ERR_USB_DEVICE_GONE', 'pulled out');
    expect(asUsbError(gone)).toBe(gone);
    const plain = new Error('boom');
    expect(asUsbError(plain)).toBe(plain);
  });
});
