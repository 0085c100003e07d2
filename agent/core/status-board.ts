import type { Policy } from '../../shared/policy/schema';
import { PROTOCOL_VERSION } from '../../shared/protocol/primitives';
import type { EventDraft } from './events';
import type { NoticeSink } from './notices';

export interface StatusBoardDeps {
  policy: () => Policy;
  /** The link's state, read when the status is published. */
  link: () => { ready: boolean; connectedSince: Date | undefined };
  notices: Pick<NoticeSink, 'status'>;
  /** Whether a capability needs the person's attention (agent/core/capability-set.ts). */
  attention: () => boolean;
}

/** What the tray icon and status window show: connected or not, which policy, the last event. */
export class StatusBoard {
  private lastEvent: { type: string; time: string } | null = null;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly deps: StatusBoardDeps) {}

  publish(): void {
    const link = this.deps.link();
    const current = this.deps.policy();
    const policyUrl = Object.values(current.clauses).find((c) => c.url)?.url;
    this.deps.notices.status?.({
      v: PROTOCOL_VERSION,
      type: 'tray.status',
      state: link.ready ? (this.deps.attention() ? 'attention' : 'protected') : 'disconnected',
      policyName: current.name,
      policyRevision: current.revision,
      connectedSince: link.connectedSince?.toISOString() ?? null,
      lastEvent: this.lastEvent,
      ...(policyUrl ? { policyUrl } : {}),
    });
  }

  /** An event was recorded: a burst of them updates the tray once, a second later. */
  recorded(draft: Pick<EventDraft, 'type' | 'time'>): void {
    this.lastEvent = { type: draft.type, time: draft.time };
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.publish();
    }, 1000).unref();
  }

  stop(): void {
    clearTimeout(this.timer);
  }
}
