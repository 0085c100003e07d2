import { Admission, type Ticket, admissionKey } from '../../collector/admission';

/** The bookkeeping behind admission, without sockets (test/collector/admission.test.ts drives it with real ones). */
describe('admission rules', () => {
  const limits = { maxHandshakes: 10, reservedHandshakes: 4, maxHandshakesPerAddress: 3 };

  function admission() {
    const a = new Admission(limits);
    const evicted: string[] = [];
    const admit = (address: string, name: string) => a.admit(address, () => evicted.push(name));
    return { a, evicted, admit };
  }

  it('keeps the reserved slots for hellos naming a known device: enrollments get the rest, and no more', () => {
    const { a, admit } = admission();
    const enrolling: Ticket[] = [];
    for (let i = 0; i < 6; i++) {
      const t = admit(`10.0.0.${i}`, `e${i}`)!;
      a.spoke(t);
      expect(a.mayEnroll(t)).toBe(true);
      enrolling.push(t);
    }
    const seventh = admit('10.0.1.1', 'e7')!;
    a.spoke(seventh);
    expect(a.mayEnroll(seventh)).toBe(false);
    a.release(seventh);
    // The four kept slots are still there for known devices.
    for (let i = 0; i < 4; i++) {
      const t = admit(`10.0.2.${i}`, `k${i}`)!;
      expect(t).toBeDefined();
      a.namedKnownDevice(t);
    }
    expect(a.inProgress).toBe(10);
    // Full, and nobody silent to push out: come back later.
    expect(admit('10.0.3.1', 'late')).toBeUndefined();
    a.release(enrolling[0]!);
    expect(admit('10.0.3.1', 'late')).toBeDefined();
  });

  it('pushes out the oldest silent connection of an address at its cap, and only of that address', () => {
    const { a, evicted, admit } = admission();
    const other = admit('10.0.0.9', 'other')!;
    const [first, second, third] = [admit('10.0.0.1', 'a1')!, admit('10.0.0.1', 'a2')!, admit('10.0.0.1', 'a3')!];
    a.spoke(second);
    expect(admit('10.0.0.1', 'a4')).toBeDefined();
    expect(evicted).toEqual(['a1']);
    expect(first.released).toBe(true);
    // a2 has spoken; a3 is the oldest silent one left.
    expect(admit('10.0.0.1', 'a5')).toBeDefined();
    expect(evicted).toEqual(['a1', 'a3']);
    expect(third.released && !other.released).toBe(true);
  });

  it('does not count a connection that named a known device against its address', () => {
    const { a, evicted, admit } = admission();
    for (let i = 0; i < 3; i++) a.namedKnownDevice(admit('10.0.0.1', `k${i}`)!);
    for (let i = 0; i < 3; i++) expect(admit('10.0.0.1', `s${i}`)).toBeDefined();
    expect(evicted).toEqual([]);
    expect(a.inProgress).toBe(6);
  });

  it('has no per-address cap when it is 0', () => {
    const a = new Admission({ ...limits, maxHandshakesPerAddress: 0 });
    for (let i = 0; i < 10; i++) expect(a.admit('10.0.0.1', () => undefined)).toBeDefined();
  });

  it('releases a ticket once however often it is released', () => {
    const { a, admit } = admission();
    const t = admit('10.0.0.1', 't')!;
    a.release(t);
    a.release(t);
    expect(a.inProgress).toBe(0);
  });

  it.each([
    ['192.0.2.7', '192.0.2.7'],
    ['::ffff:192.0.2.7', '192.0.2.7'],
    ['2001:db8:1:2:aaaa:bbbb:cccc:dddd', '2001:db8:1:2::/64'],
    ['2001:db8:1:2::1', '2001:db8:1:2::/64'],
    ['2001:0db8:0001:0002::9', '2001:db8:1:2::/64'],
    ['::1', '0:0:0:0::/64'],
    [undefined, 'unknown'],
  ])('keys %s as %s', (address, key) => expect(admissionKey(address)).toBe(key));
});
