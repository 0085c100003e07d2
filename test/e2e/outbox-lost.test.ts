import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { EventDraft } from '../../agent/core/events';
import { eventually } from '../support/cli';
import { startTestAgent, startTestCollector } from '../support/harness';

const label = (k: string): EventDraft => ({ type: 'command.completed', severity: 'info', time: new Date().toISOString(), data: { commandId: k, ok: true } });

describe('an agent whose outbox folder was lost but whose identity survived', () => {
  it('numbers its new events after what the collector already holds, so none is mistaken for a resend', async () => {
    const c = await startTestCollector();
    const token = await c.enrollmentToken();
    const first = await startTestAgent(c.agentUrl, token);
    for (const k of ['before-1', 'before-2', 'before-3']) await first.record(label(k));
    await eventually(() => (first.outbox.pendingCount === 0 ? true : undefined));
    await first.stop('test');

    rmSync(join(first.dataDir, 'outbox'), { recursive: true, force: true });
    const second = await startTestAgent(c.agentUrl, token, first.dataDir);
    for (const k of ['after-1', 'after-2']) await second.record(label(k));
    await eventually(() => (second.link.currentState === 'ready' && second.outbox.pendingCount === 0 ? true : undefined));
    await second.stop('test');

    const [device] = await c.store.listDevices();
    const stored = (await c.store.queryEvents({ device: device!.id, type: 'command.completed', limit: 100 })).events.map(
      (e) => (e.data as { commandId: string }).commandId,
    );
    expect(stored).toEqual(['before-1', 'before-2', 'before-3', 'after-1', 'after-2']);
    await c.close();
  });
});
