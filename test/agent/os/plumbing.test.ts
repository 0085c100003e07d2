import { agentConfigSchema } from '../../../agent/config';
import { createOsPlumbing } from '../../../agent/os/plumbing';
import { RecordedCommands } from '../../../agent/os/recorded-commands';
import { RecordedPowerShell } from '../../../agent/os/win32/recorded-powershell';
import { createLogger } from '../../../node-common/logging';
import { softwareFor } from '../../../cli/software-for';
import { usbPlatformFor } from '../../../cli/usb-platform-for';

/*
 * The composition root builds the OS plumbing once and hands it to every
 * capability's adapters. On Windows that is one PowerShell session for USB
 * and software alike: before, cli/usb-platform-for.ts and cli/software-for.ts
 * each started their own.
 */

const logger = createLogger({ program: 'test', level: 'error', console: false });
/** The tag line every script of ours starts with (`# invigilator:list-usb`). */
const tag = (script: string) => /^# invigilator:([a-z-]+)/.exec(script)?.[1];
const usbConfig = agentConfigSchema.parse({ collector: { url: 'wss://collector.test/agent' }, dataDir: '/tmp/unused' }).usb;

function windowsPlumbing() {
  const sessions: RecordedPowerShell[] = [];
  const os = createOsPlumbing({
    runner: new RecordedCommands(),
    startPowerShell: () => {
      // Every script is answered with nothing: an empty device list, no users, no programs.
      const session = new RecordedPowerShell(() => '');
      sessions.push(session);
      return session;
    },
  });
  return { os, sessions };
}

describe('the OS plumbing', () => {
  it('starts one PowerShell session on Windows, which USB and software both use', async () => {
    const { os, sessions } = windowsPlumbing();
    const usb = usbPlatformFor('win32', usbConfig, logger, os);
    const software = softwareFor('win32', os, logger, 'enforce');
    expect(sessions).toHaveLength(1);

    await usb.start(() => undefined);
    await usb.stop();
    await software.inventory.list().catch(() => undefined);
    await software.processes.isSame({ pid: 4242, ppid: 4, name: 'game.exe', startKey: '2026-01-05T08:00:00.0000000Z' });
    // USB's device list, the inventory's users and keys, and the check before a kill: all through the one session.
    expect(sessions).toHaveLength(1);
    expect(new Set(sessions[0]!.scripts.map(tag))).toEqual(new Set(['list-usb', 'inventory-users', 'inventory-read', 'process-created']));
  });

  it('starts no PowerShell session where nothing asks for one', () => {
    const { os, sessions } = windowsPlumbing();
    softwareFor('linux', os, logger, 'enforce');
    usbPlatformFor('darwin', usbConfig, logger, os);
    expect(sessions).toHaveLength(0);
  });

  it('gives the same session to every ask and closes it once', async () => {
    const { os, sessions } = windowsPlumbing();
    expect(os.powerShell()).toBe(os.powerShell());
    await os.close();
    await expect(os.powerShell().run('anything')).rejects.toMatchObject({ code: 'INV_ERR_OS_COMMAND_NOT_STARTED' });
    expect(sessions).toHaveLength(1);
  });
});
