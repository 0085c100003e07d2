import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { startAgent } from '../../../agent/agent';
import { ERRORS } from '../../../shared/errors';
import { preset } from '../../../shared/policy/presets';
import type { Command } from '../../../shared/protocol';
import { eventually, tempDir } from '../../support/cli';
import { type TestCollector, silentLogger, startTestCollector, startTestAgent } from '../../support/harness';
import { SysfsFixture } from '../../support/sysfs-fixture';
import { agentConfigFor, trayClient } from '../../support/tray-client';
import { linuxPlatformOn } from '../../support/usb-devices';

/** The network manager sends a command through the collector's API; resolves to how the agent answered it. */
async function commandResult(c: TestCollector, deviceId: string, command: Command): Promise<{ ok: boolean | null; error: { code: string } | null }> {
  const headers = { authorization: `Bearer ${c.adminToken}`, 'content-type': 'application/json' };
  const sent = await fetch(`${c.httpUrl}/api/devices/${deviceId}/commands`, { method: 'POST', headers, body: JSON.stringify({ command }) });
  expect(sent.status).toBe(202);
  const { commandId } = (await sent.json()) as { commandId: string };
  return eventually(async () => {
    const r = (await (await fetch(`${c.httpUrl}/api/commands/${commandId}`, { headers })).json()) as {
      completedAt: string | null;
      ok: boolean | null;
      error: { code: string } | null;
    };
    return r.completedAt ? r : undefined;
  });
}

describe("the agent's core answers by table lookup, whatever the capabilities do", () => {
  it('answers a command for a capability that is off and one whose capability throws with codes, and goes on answering', async () => {
    // Arrange: USB on, sessions off; the USB allowlist cannot be saved (a folder stands where its file goes).
    const c = await startTestCollector();
    const fixture = new SysfsFixture();
    const dataDir = tempDir('dispatch');
    const allowlist = join(dataDir, 'usb-allowlist.json');
    mkdirSync(allowlist, { recursive: true });
    const agent = await startTestAgent(c.agentUrl, await c.enrollmentToken(), dataDir, { backoffBaseMs: 50, backoffCapMs: 200 }, undefined, {
      usb: { platform: linuxPlatformOn(fixture, []), control: 'enforce' },
    });
    const device = await eventually(async () => (await c.store.listDevices())[0]);
    try {
      // Act: a logoff, which only the sessions capability carries out; a revoke, whose save throws.
      const logoff = await commandResult(c, device.id, { kind: 'logoff', target: { scope: 'device' } });
      const revoke = await commandResult(c, device.id, { kind: 'usb-revoke', entryId: 'entry-1' });

      // Assert: both answered with a code; the agent is still connected and recorded each.
      expect(logoff).toMatchObject({ ok: false, error: { code: 'INV_ERR_NOT_SUPPORTED' } });
      expect(revoke).toMatchObject({ ok: false, error: { code: 'INV_ERR_INTERNAL' } });
      const completed = await eventually(async () => {
        const { events } = await c.store.queryEvents({ type: 'command.completed', limit: 10 });
        return events.length === 2 ? events : undefined;
      });
      expect(completed.map((e) => (e.data as { code?: string }).code).sort()).toEqual(['INV_ERR_INTERNAL', 'INV_ERR_NOT_SUPPORTED']);

      // Act and assert: with the file writable again, the same capability answers the next command itself.
      rmSync(allowlist, { recursive: true });
      expect(await commandResult(c, device.id, { kind: 'usb-revoke', entryId: 'entry-2' })).toMatchObject({
        ok: false,
        error: { code: 'INV_ERR_API_NOT_FOUND' },
      });
      expect(agent.link.currentState).toBe('ready');
    } finally {
      await agent.stop('test over');
      fixture.close();
      await c.close();
    }
  });

  it('answers a tray answer to a notice no capability gave with INV_ERR_NOT_SUPPORTED, and one to a USB notice from the USB guard', async () => {
    // Arrange: an agent with USB on and its tray channel open; a tray connected to it.
    const c = await startTestCollector();
    const fixture = new SysfsFixture();
    const dataDir = tempDir('dispatch-tray');
    const trayPath = join(dataDir, 'tray.sock');
    const agent = await startAgent({
      config: await agentConfigFor(c, dataDir, 'basildon-primary'),
      fallbackPolicy: preset('basildon-primary')!,
      logger: silentLogger(),
      platform: 'linux',
      version: '0.0.0-test',
      trayPath,
      usb: { platform: linuxPlatformOn(fixture, []), control: 'enforce' },
    });
    const tray = trayClient(trayPath);
    try {
      await eventually(() => (tray.statuses.length > 0 ? true : undefined));

      // Act: answers to a notice id nobody gave out, and to a USB notice for a device no longer there.
      tray.send({ v: 1, type: 'tray.answer', noticeId: 'nobody-1', action: 'agree' });
      tray.send({ v: 1, type: 'tray.answer', noticeId: 'usb-gone-1', action: 'ask-permission', text: 'for my project' });

      // Assert: each is refused in words the tray shows, with the code of whoever answered (or of nobody).
      const refused = await eventually(() => (tray.notices.length === 2 ? tray.notices : undefined));
      expect(refused.find((n) => n.noticeId === 'answer-nobody-1')).toMatchObject({ kind: 'information', body: `${ERRORS.INV_ERR_NOT_SUPPORTED}.` });
      expect(refused.find((n) => n.noticeId === 'answer-usb-gone-1')).toMatchObject({ kind: 'information', body: `${ERRORS.INV_ERR_USB_DEVICE_GONE}.` });
    } finally {
      tray.socket.destroy();
      await agent.stop('test over');
      fixture.close();
      await c.close();
    }
  });
});
