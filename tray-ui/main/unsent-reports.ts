import { randomUUID } from 'node:crypto';
import type { TrayReport, TrayToAgent } from '../../shared/protocol';

/** A report is sent again while unacknowledged, at most this often while connected. */
export const RESEND_AFTER_MS = 30_000;
/** Reports kept for sending; nobody types more than this many before the agent is back. */
const MAX_UNSENT = 50;

export interface UnsentReportsOptions {
  /** Sends one message to the agent; false when it is not connected. */
  send: (message: TrayToAgent) => boolean;
  newId?: () => string;
  now?: () => number;
}

/**
 * "Report a problem" until the agent has it: each report gets an id, is kept
 * until the agent acknowledges that id (`tray.report.ack`, sent once it is on
 * the agent's disk, or counted under its rate rules), and is sent again on
 * every reconnection and every 30 s meanwhile. The agent records a report
 * sent again under the same id once. Kept in memory: a tray that quits with
 * reports unacknowledged loses them.
 */
export class UnsentReports {
  private readonly unsent = new Map<string, { report: TrayReport; sentAt: number | undefined }>();
  private readonly newId: () => string;
  private readonly now: () => number;

  constructor(private readonly options: UnsentReportsOptions) {
    this.newId = options.newId ?? randomUUID;
    this.now = options.now ?? Date.now;
  }

  get pending(): number {
    return this.unsent.size;
  }

  /** Keeps the report and sends it now if it can; true when it went. */
  submit(report: Omit<TrayReport, 'reportId'>): boolean {
    const reportId = this.newId();
    const entry = { report: { ...report, reportId }, sentAt: undefined as number | undefined };
    this.unsent.set(reportId, entry);
    while (this.unsent.size > MAX_UNSENT) this.unsent.delete(this.unsent.keys().next().value!);
    return this.sendOne(entry);
  }

  acknowledged(reportId: string): void {
    this.unsent.delete(reportId);
  }

  /** The connection is (back) up: everything unacknowledged goes again. */
  resend(): void {
    for (const entry of this.unsent.values()) this.sendOne(entry);
  }

  /** Called on the tray's timer: reports sent a while ago and never acknowledged go again. */
  tick(): void {
    const now = this.now();
    for (const entry of this.unsent.values()) if (entry.sentAt === undefined || now - entry.sentAt >= RESEND_AFTER_MS) this.sendOne(entry);
  }

  private sendOne(entry: { report: TrayReport; sentAt: number | undefined }): boolean {
    if (!this.options.send(entry.report)) return false;
    entry.sentAt = this.now();
    return true;
  }
}
