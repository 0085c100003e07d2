import type { AgentConfig } from '../agent/config';
import { createDarwinUsbPlatform, createExecFileRunner } from '../agent/usb/darwin';
import { LinuxUsbPlatform } from '../agent/usb/linux/linux-usb-platform';
import { UdevadmMonitor } from '../agent/usb/linux/uevent-source';
import type { UsbPlatform } from '../agent/usb/usb-platform';
import { spawnPowerShellSession } from '../agent/usb/win32/powershell-session';
import { createWin32UsbPlatform } from '../agent/usb/win32/win32-usb-platform';
import type { Logger } from '../node-common/logging';
import type { Platform } from '../shared/protocol';

/** The one place that picks the USB adapter for this OS. */
export function usbPlatformFor(platform: Platform, config: AgentConfig['usb'], logger: Logger): UsbPlatform {
  switch (platform) {
    case 'linux': {
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
    case 'win32':
      return createWin32UsbPlatform({ session: spawnPowerShellSession(), logger });
    case 'darwin':
      return createDarwinUsbPlatform({ runner: createExecFileRunner() });
  }
}
