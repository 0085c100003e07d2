import { type ErrorCode, InvigilatorError } from '../../shared/errors';
import { CommandError, type CommandRunner } from '../os/command-runner';
import type { PowerShellSession } from '../os/win32/powershell-session';

/**
 * `usb.enforcement.failed` has always said INV_ERR_USB_OS_COMMAND_FAILED for a
 * command that gave no answer (and INV_ERR_USB_OS_OUTPUT_INVALID for a
 * PowerShell answer too long to read), and the network manager's reports key
 * on it: the OS room's finer codes become the USB ones here, with the same
 * detail (which program, what happened), so events read as they always did.
 */
export function asUsbError(e: unknown, overflow: ErrorCode = 'INV_ERR_USB_OS_COMMAND_FAILED'): unknown {
  if (!(e instanceof CommandError)) return e;
  return new InvigilatorError(e.code === 'INV_ERR_OS_COMMAND_OVERFLOW' ? overflow : 'INV_ERR_USB_OS_COMMAND_FAILED', e.detail);
}

/** The runner as the USB adapters see it: the same calls, failures in USB codes. */
export function usbCommands(runner: CommandRunner): CommandRunner {
  return {
    run: (file, args, timeoutMs) =>
      runner.run(file, args, timeoutMs).catch((e: unknown) => {
        throw asUsbError(e);
      }),
  };
}

/** The shared PowerShell session as the Windows USB adapter sees it: failures in USB codes. */
export function usbSession(session: PowerShellSession): Pick<PowerShellSession, 'run'> {
  return {
    run: (script, timeoutMs) =>
      session.run(script, timeoutMs).catch((e: unknown) => {
        throw asUsbError(e, 'INV_ERR_USB_OS_OUTPUT_INVALID');
      }),
  };
}
