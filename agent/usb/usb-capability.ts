import type { AgentContext, Capability } from '../core/capability';
import { IdentityFile } from '../identity';
import { USB_NOTICE_PREFIX, UsbGuard } from './usb-guard';
import type { HotplugSignal, UsbPlatform } from './usb-platform';

/** This OS's USB adapter, chosen by the composition root. */
export interface UsbAdapters {
  platform: UsbPlatform;
  control: 'enforce' | 'observe';
  hotplug?: HotplugSignal;
}

/** Allowlist entries expire on the minute; a stick let in until 16:00 stops then, plugged in or not. */
const EXPIRY_CHECK_MS = 60_000;

/**
 * USB control as a capability: the guard decides each device, answers its
 * block notices, carries out `usb-allow` and `usb-revoke`, and asks the
 * network manager for permission over the link.
 */
export function usbCapability(ctx: AgentContext, adapters: UsbAdapters): Capability & { readonly guard: UsbGuard } {
  const log = ctx.logger.child({ component: 'agent' });
  const identity = new IdentityFile(ctx.dataDir);
  const { roster } = ctx;
  const guard = new UsbGuard({
    platform: adapters.platform,
    control: adapters.control,
    ...(adapters.hotplug ? { hotplug: adapters.hotplug } : {}),
    policy: ctx.policy,
    // The person at the screen decides; who asked is named from their own tray (agent/core/roster.ts).
    currentUser: () => roster?.userAtScreen(),
    ...(roster ? { userOf: (uid: number) => roster.userOf(uid) } : {}),
    record: ctx.record,
    notices: ctx.notices,
    sendPermissionRequest: (request) => ctx.collector.sendPermissionRequest(request),
    deviceIdentity: async () => {
      const found = await identity.load();
      return found && { deviceId: found.deviceId, secret: Buffer.from(found.deviceSecret, 'base64url') };
    },
    dataDir: ctx.dataDir,
    logger: ctx.logger,
  });
  return {
    name: 'usb',
    guard,
    commands: {
      'usb-allow': async (command) => {
        await guard.addAllowlistEntry(command.entry);
        return undefined;
      },
      'usb-revoke': async (command) =>
        (await guard.removeAllowlistEntry(command.entryId))
          ? undefined
          : { code: 'INV_ERR_API_NOT_FOUND', message: `no allowlist entry ${command.entryId} on this device` },
    },
    notices: { prefixes: [USB_NOTICE_PREFIX], answer: (a, from) => guard.answer(a.noticeId, a.action, a.text, a.target, from) },
    collector: { 'permission.decision': (decision) => guard.onDecision(decision) },
    onPolicyChanged: () => guard.reconsiderAll(),
    // A stick let in for a teacher is decided again when a pupil takes the screen (and the other way round).
    onScreenChanged: () => guard.reconsiderAll(),
    onLinkReady: () => guard.resendPendingRequests(),
    start: async () => {
      await guard.start();
      ctx.every(EXPIRY_CHECK_MS, () => void guard.checkExpiries().catch((e: unknown) => log.error('checking USB exceptions failed', { error: String(e) })));
    },
    stop: () => guard.stop(),
  };
}
