import type { Logger } from '../../node-common/logging';
import { type NoticeSink, type Notices, bothSinks } from './notices';

/**
 * The one notice port the capabilities are given, whatever channels this
 * computer has: the root socket or pipe (administrators' tools, the Windows
 * and macOS tray), the users' own sockets, both or neither. Channels attach
 * as they open, so a capability built before them still reaches them.
 */
export class NoticeHub implements Notices {
  private all: NoticeSink | undefined;
  private personal: Notices | undefined;
  private readonly log: Logger;

  constructor(logger: Logger, given?: NoticeSink) {
    this.log = logger.child({ component: 'agent' });
    this.all = given;
  }

  /** The channel every tray hears (the root socket); a second one is heard as well. */
  attach(sink: NoticeSink): void {
    this.all = this.all ? bothSinks(this.all, sink) : sink;
  }

  /** The users' own trays: what is for one person goes there only. */
  attachPersonal(trays: Notices): void {
    this.personal = trays;
    this.attach(trays);
  }

  /** Every channel open, or none (the problem reports' virus notice then shows nowhere). */
  sink(): NoticeSink | undefined {
    return this.all;
  }

  show: Notices['show'] = (notice) => {
    if (this.all) this.all.show(notice);
    // Enforcement does not wait on the channel that explains it: without one, the log says what would have shown.
    else this.log.info('notice', { kind: notice.kind, title: notice.title });
  };

  showTo: Notices['showTo'] = (uid, notice) => this.personal?.showTo(uid, notice);

  withdraw: Notices['withdraw'] = (noticeId) => this.all?.withdraw(noticeId);

  status: NonNullable<Notices['status']> = (status) => this.all?.status?.(status);
}
