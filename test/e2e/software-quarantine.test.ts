import { chmodSync, chownSync, mkdirSync, readFileSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { startAgent } from '../../agent/agent';
import { LogindSessions } from '../../agent/sessions/session-directory';
import { ProcfsProcessSource } from '../../agent/software/programs/linux/process-source-linux';
import { preset } from '../../shared/policy/presets';
import { eventually, tempDir } from '../support/cli';
import { silentLogger, startTestCollector } from '../support/harness';
import { agentConfigFor } from '../support/tray-client';
import { logindDesktop } from '../support/logind';
import { LINUX_SOFTWARE } from '../support/linux-software';

const AMY = 1000;
const asRoot = process.getuid?.() === 0;
if (!asRoot) process.stdout.write('software-quarantine e2e: skipping: the dropped file must belong to a pupil (uid 1000), which needs root to arrange\n');
const describeAsRoot = asRoot ? describe : describe.skip;

describeAsRoot('a download quarantined and restored, from agent to network manager and back', () => {
  it("takes a pupil's downloaded program into quarantine, tells the collector, and puts it back byte for byte on the network manager's command", async () => {
    // Arrange: Basildon's policy (pupils' downloads are quarantined), an agent watching Amy's Downloads.
    const c = await startTestCollector({ policy: preset('basildon-primary')! });
    const dataDir = tempDir('software-e2e');
    const home = tempDir('amy-home');
    const downloads = join(home, 'Downloads');
    mkdirSync(downloads);
    // Amy's own folders, as on a real laptop: the restore writes as her, so she must be able to.
    chmodSync(home, 0o755);
    chownSync(home, AMY, AMY);
    chownSync(downloads, AMY, AMY);
    const logind = tempDir('logind');
    logindDesktop(logind, '3', AMY, 'amy.p');
    const sessions = new LogindSessions(logind);
    const agent = await startAgent({
      config: await agentConfigFor(c, dataDir, 'basildon-primary'),
      fallbackPolicy: preset('basildon-primary')!,
      logger: silentLogger(),
      platform: 'linux',
      version: '0.0.0-test',
      linkTuning: { backoffBaseMs: 50, backoffCapMs: 200 },
      sessions: { directory: sessions, control: { signOut: async () => undefined } },
      // The real /proc reader pointed at an empty folder: no process on this machine is judged (or stopped) by the test.
      software: {
        control: 'enforce',
        processes: new ProcfsProcessSource({ procRoot: tempDir('no-processes') }),
        ...LINUX_SOFTWARE,
        folders: () => [{ path: downloads, depth: 3, purpose: 'downloads' }],
      },
    });

    // Act: a game installer lands in Amy's Downloads.
    const bytes = Buffer.concat([Buffer.from('MZ'), Buffer.alloc(70_000, 7), Buffer.from('end of installer')]);
    const dropped = join(downloads, 'free-game-setup.exe');
    writeFileSync(dropped, bytes, { mode: 0o644 });
    chownSync(dropped, AMY, AMY);
    const before = statSync(dropped);

    // Assert: gone from Downloads, and the network manager sees it quarantined.
    const quarantined = await eventually(async () => (await c.store.queryEvents({ type: 'file.quarantined', limit: 10 })).events[0]);
    const { quarantineId, file } = quarantined.data as { quarantineId: string; file: { path: string; sha256: string } };
    expect(file.path).toBe(dropped);
    expect(existsSync(dropped)).toBe(false);

    // Act: the network manager restores it.
    const device = (await c.store.listDevices())[0]!;
    const sent = await fetch(`${c.httpUrl}/api/devices/${device.id}/commands`, {
      method: 'POST',
      headers: { authorization: `Bearer ${c.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ command: { kind: 'restore-file', quarantineId } }),
    });
    expect(sent.status).toBe(202);
    const { commandId } = (await sent.json()) as { commandId: string };

    // Assert: the command succeeded and the file is back where it was, the same bytes, owner and mode.
    const result = await eventually(async () => {
      const r = (await (await fetch(`${c.httpUrl}/api/commands/${commandId}`, { headers: { authorization: `Bearer ${c.adminToken}` } })).json()) as {
        completedAt: string | null;
        ok: boolean | null;
      };
      return r.completedAt ? r : undefined;
    });
    expect(result).toMatchObject({ ok: true, error: null });
    expect(readFileSync(dropped).equals(bytes)).toBe(true);
    const after = statSync(dropped);
    expect({ uid: after.uid, mode: after.mode & 0o777 }).toEqual({ uid: AMY, mode: before.mode & 0o777 });
    await eventually(async () => (await c.store.queryEvents({ type: 'file.restored', limit: 10 })).events[0]);

    await agent.stop('test over');
    await c.close();
  });
});
