import type { AgentConfig } from '../agent/config';
import type * as DarwinUsb from '../agent/usb/darwin/darwin-usb-platform';
import type * as LinuxUsb from '../agent/usb/linux/linux-usb-platform';
import type * as LinuxEvents from '../agent/usb/linux/uevent-source';
import type { UsbPlatform } from '../agent/usb/usb-platform';
import type { OsPlumbing } from '../agent/os/plumbing';
import type * as Win32Usb from '../agent/usb/win32/win32-usb-platform';
import type { Logger } from '../node-common/logging';
import type { Platform } from '../shared/protocol';

/**
 * The one place that picks the USB adapter for this OS. Only this OS's
 * adapter is loaded: the others' parsers and scripts would be memory the
 * agent holds for nothing (issue 14). Windows and macOS speak through the
 * agent's shared OS plumbing (its one PowerShell session, its runner).
 */
/* eslint-disable @typescript-eslint/no-require-imports */
export function usbPlatformFor(platform: Platform, config: AgentConfig['usb'], logger: Logger, os: OsPlumbing): UsbPlatform {
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
      const { createWin32UsbPlatform } = require('../agent/usb/win32/win32-usb-platform') as typeof Win32Usb;
      return createWin32UsbPlatform({ session: os.powerShell(), logger });
    }
    case 'darwin': {
      const { createDarwinUsbPlatform } = require('../agent/usb/darwin/darwin-usb-platform') as typeof DarwinUsb;
      return createDarwinUsbPlatform({ runner: os.runner });
    }
  }
}
/* eslint-enable @typescript-eslint/no-require-imports */
