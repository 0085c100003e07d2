import type { Capability } from '../../../agent/core/capability';
import { CapabilitySet } from '../../../agent/core/capability-set';
import { silentLogger } from '../../support/harness';

const answerTo = (noticeId: string) => ({ v: 1 as const, type: 'tray.answer' as const, noticeId, action: 'dismiss' as const });

describe('the capability set', () => {
  it("sends a command to the capability that claims its kind, and answers a kind nobody claims as today's agent does", async () => {
    // Arrange: one capability carries out usb-revoke.
    const set = new CapabilitySet(silentLogger());
    const revoked: string[] = [];
    set.add({ name: 'usb', commands: { 'usb-revoke': async (c) => void revoked.push(c.entryId) } });

    // Act
    const mine = await set.carryOut({ kind: 'usb-revoke', entryId: 'e-1' });
    const nobodys = await set.carryOut({ kind: 'refresh-inventory' });

    // Assert
    expect(mine).toBeUndefined();
    expect(revoked).toEqual(['e-1']);
    expect(nobodys).toEqual({ code: 'INV_ERR_NOT_SUPPORTED', message: 'this agent cannot carry out refresh-inventory yet' });
  });

  it('gives a tray answer to the capability whose notice prefix it carries, and refuses one nobody gave with a code', async () => {
    // Arrange
    const set = new CapabilitySet(silentLogger());
    const seen: string[] = [];
    set.add({ name: 'aup', notices: { prefixes: ['aup-'], answer: async (a) => (seen.push(`aup ${a.noticeId}`), { ok: true }) } });
    set.add({ name: 'sessions', notices: { prefixes: ['login-limit-', 'logoff-'], answer: async (a) => (seen.push(`sessions ${a.noticeId}`), { ok: true }) } });

    // Act
    const results = [await set.answer(answerTo('aup-1000-p-r1'), {}), await set.answer(answerTo('logoff-idle-3'), {}), await set.answer(answerTo('usb-1'), {})];

    // Assert
    expect(seen).toEqual(['aup aup-1000-p-r1', 'sessions logoff-idle-3']);
    expect(results).toEqual([{ ok: true }, { ok: true }, { ok: false, code: 'INV_ERR_NOT_SUPPORTED', message: 'no rule here answers notices' }]);
  });

  it('answers a capability that throws with INV_ERR_INTERNAL, and the others still answer and act', async () => {
    // Arrange: one capability that throws in every handler and hook, one that works.
    const set = new CapabilitySet(silentLogger());
    const boom = () => {
      throw new Error('broken');
    };
    set.add({
      name: 'broken',
      commands: { 'restore-file': async () => boom() },
      notices: { prefixes: ['software-file-'], answer: async () => boom() },
      onPolicyChanged: async () => boom(),
      onLinkReady: boom,
      onTrayHello: async () => boom(),
      status: boom,
    });
    const acted: string[] = [];
    set.add({
      name: 'working',
      commands: { 'usb-allow': async () => void acted.push('usb-allow') },
      onPolicyChanged: async () => void acted.push('policy'),
      onLinkReady: () => void acted.push('link'),
      onTrayHello: async () => void acted.push('hello'),
    });

    // Act
    const command = await set.carryOut({ kind: 'restore-file', quarantineId: 'q-1' });
    const answer = await set.answer(answerTo('software-file-1000-1'), {});
    await set.onPolicyChanged();
    set.linkReady();
    set.trayHello({ uid: 1000 });
    await set.carryOut({ kind: 'usb-allow', entry: { id: 'e-1', vendorId: '0781', productId: '5581', note: 'art' } as never });
    await new Promise((r) => setImmediate(r));

    // Assert
    expect(command).toMatchObject({ code: 'INV_ERR_INTERNAL', message: 'restore-file failed: Error: broken' });
    expect(answer).toMatchObject({ ok: false, code: 'INV_ERR_INTERNAL' });
    expect(set.attention()).toBe(false);
    expect(acted.sort()).toEqual(['hello', 'link', 'policy', 'usb-allow']);
  });

  it('stops capabilities in reverse order, each on its own, and refuses a kind or prefix claimed twice', async () => {
    // Arrange
    const set = new CapabilitySet(silentLogger());
    const stopped: string[] = [];
    const cap = (name: string, fails = false): Capability => ({
      name,
      stop: async () => {
        stopped.push(name);
        if (fails) throw new Error('stuck');
      },
    });
    set.add(cap('tray'));
    set.add(cap('sessions', true));
    set.add(cap('usb'));

    // Act
    await set.stop();

    // Assert
    expect(stopped).toEqual(['usb', 'sessions', 'tray']);
    set.add({ name: 'a', commands: { logoff: async () => undefined }, notices: { prefixes: ['x-'], answer: async () => ({ ok: true }) } });
    expect(() => set.add({ name: 'b', commands: { logoff: async () => undefined } })).toThrow(/logoff is claimed by a and b/);
    expect(() => set.add({ name: 'c', notices: { prefixes: ['x-y-'], answer: async () => ({ ok: true }) } })).toThrow(/overlaps/);
  });
});
