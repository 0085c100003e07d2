import type { AgentConfig } from '../agent/config';
import type * as DarwinUsb from '../agent/usb/darwin';
import type * as LinuxUsb from '../agent/usb/linux/linux-usb-platform';
import type * as LinuxEvents from '../agent/usb/linux/uevent-source';
import type { UsbPlatform } from '../agent/usb/usb-platform';
import type * as PowerShell from '../agent/usb/win32/powershell-session';
import type * as Win32Usb from '../agent/usb/win32/win32-usb-platform';
import type { Logger } from '../node-common/logging';
import type { Platform } from '../shared/protocol';

/**
 * The one place that picks the USB adapter for this OS. Only this OS's
 * adapter is loaded: the others' parsers and scripts would be memory the
 * agent holds for nothing (issue 14).
 */
/* eslint-disable @typescript-eslint/no-require-imports */
export function usbPlatformFor(platform: Platform, config: AgentConfig['usb'], logger: Logger): UsbPlatform {
  switch (platform) {
    case 'linux': {
      const { LinuxUsbPlatform } = require('../agent/usb/linux/linux-usb-platform') as typeof LinuxUsb;
      const { UdevadmMonitor } = require('../agent/usb/linux/uevent-source') as typeof LinuxEvents;
      const l = config.linux;
      return new LinuxUsbPlatform({
        roots: { sys: l.sysRoot, dev: l.devRoot },
        mountInfo: l.mountInfo,
        allowedDir: l.allowedDir,
        // Observing must never change what a developer's machine does with its keyboard.
        holdNewDevices: config.control === 'enforce' && config.holdNewDevices,
        events: new UdevadmMonitor(l.udevadm),
        programs: { umount: 'umount', udevadm: l.udevadm, blockdev: 'blockdev' },
        logger,
      });
    }
    case 'win32': {
      const { spawnPowerShellSession } = require('../agent/usb/win32/powershell-session') as typeof PowerShell;
      const { createWin32UsbPlatform } = require('../agent/usb/win32/win32-usb-platform') as typeof Win32Usb;
      return createWin32UsbPlatform({ session: spawnPowerShellSession(), logger });
    }
    case 'darwin': {
      const { createDarwinUsbPlatform, createExecFileRunner } = require('../agent/usb/darwin') as typeof DarwinUsb;
      return createDarwinUsbPlatform({ runner: createExecFileRunner() });
    }
  }
}
/* eslint-enable @typescript-eslint/no-require-imports */
