import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { checkLastRun, markStopped } from '../../agent/tamper-watch';
import type { EventDraft } from '../../agent/core/events';
import { tempDir } from '../support/cli';

describe('an agent that was killed is reported when it starts again', () => {
  it('reports nothing after a clean stop, and agent.tamper after a run that never stopped', async () => {
    const dataDir = tempDir('tamper');
    const events: EventDraft[] = [];
    const record = async (e: EventDraft) => void events.push(e);
    const at = () => new Date('2026-11-23T10:00:00.000Z');

    expect(await checkLastRun(dataDir, record, at)).toBe(false); // first start
    await markStopped(dataDir); // clean stop
    expect(existsSync(join(dataDir, 'running'))).toBe(false);
    expect(await checkLastRun(dataDir, record, at)).toBe(false); // clean restart
    // ...and this run is killed: no markStopped.
    expect(await checkLastRun(dataDir, record, at)).toBe(true);

    expect(events).toEqual([
      {
        type: 'agent.tamper',
        severity: 'warning',
        time: '2026-11-23T10:00:00.000Z',
        data: { target: 'agent', action: 'killed', process: { pid: process.pid, name: 'invigilator agent' } },
      },
    ]);
  });
});
