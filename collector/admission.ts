import { isIPv6 } from 'node:net';

export interface AdmissionLimits {
  /** Connections not yet authenticated, at once, of every kind. */
  maxHandshakes: number;
  /** Of those, kept for connections whose hello named a known device: enrollments and silent connections cannot take them. */
  reservedHandshakes: number;
  /** Unauthenticated connections from one source address that have not named a known device; 0: no cap. */
  maxHandshakesPerAddress: number;
}

/**
 * Where a connection comes from, for the per-address cap: an IPv4 address
 * (also when written as IPv4-mapped IPv6), or an IPv6 address's /64, since
 * one IPv6 host has a whole /64 to choose from.
 */
export function admissionKey(remoteAddress: string | undefined): string {
  if (!remoteAddress) return 'unknown';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(remoteAddress);
  if (mapped) return mapped[1]!;
  if (!isIPv6(remoteAddress)) return remoteAddress;
  return `${expandIPv6(remoteAddress).slice(0, 4).join(':')}::/64`;
}

function expandIPv6(address: string): string[] {
  const [head = '', tail = ''] = address.split('%')[0]!.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === '' ? [] : tail.split(':');
  const fill = address.includes('::') ? Array<string>(8 - left.length - right.length).fill('0') : [];
  return [...left, ...fill, ...right].map((group) => group.toLowerCase().replace(/^0+(?=.)/, ''));
}

/** One connection's place in admission, from upgrade until it is authenticated or closed. */
export class Ticket {
  /** Said nothing yet: the first to go when a newcomer needs room. */
  silent = true;
  /** Its hello named a known device: counted against neither its address nor the anonymous share. */
  known = false;
  /** Said a hello that is not a known device's (an enrollment): holds a slot of the anonymous share. */
  anonymous = false;
  released = false;

  constructor(
    readonly address: string,
    readonly evict: () => void,
  ) {}
}

/**
 * Who may start a handshake. The expensive part of a connection is before it
 * is authenticated; an attacker's cheapest move is to open connections and say
 * nothing. So: connections that said nothing are the first to go when a
 * newcomer needs room (the oldest first, from the newcomer's own address when
 * that address is at its cap); one address holds at most its cap of
 * connections that have not named a known device; and a share of the slots is
 * kept for hellos naming a known device, which enrollments cannot take. A
 * school behind one NAT address is not locked out by one pupil's idle sockets:
 * its agents push those out and, once their hello names their device, no
 * longer count against the address.
 */
export class Admission {
  /** Silent tickets, oldest first (a Set iterates in insertion order). */
  private readonly silent = new Set<Ticket>();
  private readonly perAddress = new Map<string, number>();
  private total = 0;
  private anonymousSpoken = 0;

  constructor(private readonly limits: AdmissionLimits) {}

  get inProgress(): number {
    return this.total;
  }

  /** A ticket for a new connection, pushing out the oldest silent one if that makes room; undefined: tell it to come back later. */
  admit(address: string, evict: () => void): Ticket | undefined {
    const cap = this.limits.maxHandshakesPerAddress;
    if (cap > 0 && (this.perAddress.get(address) ?? 0) >= cap && !this.evictOldestSilent((t) => t.address === address)) return undefined;
    if (this.total >= this.limits.maxHandshakes && !this.evictOldestSilent(() => true)) return undefined;
    const ticket = new Ticket(address, evict);
    this.total++;
    this.perAddress.set(address, (this.perAddress.get(address) ?? 0) + 1);
    this.silent.add(ticket);
    return ticket;
  }

  /** The connection sent its first frame: it is no longer the first to go. */
  spoke(ticket: Ticket): void {
    this.silent.delete(ticket);
  }

  /** Its hello named a known device: it may use the kept slots, and no longer counts against its address. */
  namedKnownDevice(ticket: Ticket): void {
    if (ticket.released || ticket.known) return;
    this.silent.delete(ticket);
    ticket.known = true;
    this.forgetAddress(ticket);
  }

  /** Its hello is an enrollment: allowed while the share not kept for known devices has room. */
  mayEnroll(ticket: Ticket): boolean {
    if (ticket.released || ticket.anonymous) return !ticket.released;
    // At least one slot is left to enrollments, whatever is kept.
    if (this.anonymousSpoken >= Math.max(1, this.limits.maxHandshakes - this.limits.reservedHandshakes)) return false;
    this.anonymousSpoken++;
    ticket.anonymous = true;
    return true;
  }

  /** Authenticated or closed: its slot is free. Safe to call more than once. */
  release(ticket: Ticket): void {
    if (ticket.released) return;
    ticket.released = true;
    this.total--;
    this.silent.delete(ticket);
    if (!ticket.known) this.forgetAddress(ticket);
    if (ticket.anonymous) this.anonymousSpoken--;
  }

  private forgetAddress(ticket: Ticket): void {
    const n = (this.perAddress.get(ticket.address) ?? 1) - 1;
    if (n > 0) this.perAddress.set(ticket.address, n);
    else this.perAddress.delete(ticket.address);
  }

  private evictOldestSilent(matches: (t: Ticket) => boolean): boolean {
    for (const ticket of this.silent) {
      if (!matches(ticket)) continue;
      this.release(ticket);
      ticket.evict();
      return true;
    }
    return false;
  }
}
