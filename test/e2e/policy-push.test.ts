import { preset } from '../../shared/policy/presets';
import { eventually } from '../support/cli';
import { startTestAgent, startTestCollector } from '../support/harness';

describe("the collector's policy reaching an agent", () => {
  it('replaces the policy an agent started with even when both carry the same revision number', async () => {
    // Both presets are revision 1: only their ids tell them apart.
    expect(preset('carrington-infant')!.revision).toBe(preset('basildon-primary')!.revision);
    const c = await startTestCollector({ policy: preset('carrington-infant')! });
    const agent = await startTestAgent(c.agentUrl, await c.enrollmentToken());
    expect(agent.policy.current.id).toBe('basildon-primary');
    await eventually(() => (agent.policy.current.id === 'carrington-infant' ? true : undefined));
    await agent.stop('test over');
    await c.close();
  });
});
