import type { Command, CollectorToAgent } from '../../shared/protocol';
import type { Logger } from '../../node-common/logging';
import type { AnswerResult, TrayPeer } from './notices';
import type { Capability, CapabilityPeers, CollectorMessages, CommandError, TrayAnswer } from './capability';

type AnyCommandHandler = (command: Command) => Promise<CommandError | undefined>;
type AnyCollectorHandler = (message: CollectorToAgent) => Promise<void>;

/**
 * The capabilities the composition root started, and the tables their answers
 * are looked up in: a command by its kind, a tray answer by its notice's id
 * prefix, a collector message by its type. Nothing here knows a capability.
 * One that throws is logged and answered with a code; the others, and the
 * agent, carry on (enforcement must not wait on, or fail with, another rule).
 */
export class CapabilitySet implements CapabilityPeers {
  private readonly list: Capability[] = [];
  private readonly commands = new Map<string, { owner: Capability; handler: AnyCommandHandler }>();
  private readonly answers: Array<{ prefix: string; owner: Capability }> = [];
  private readonly collector = new Map<string, { owner: Capability; handler: AnyCollectorHandler }>();
  private readonly log: Logger;

  constructor(logger: Logger) {
    this.log = logger.child({ component: 'agent' });
  }

  /** Adds one; a command kind, notice prefix or message type claimed twice is a wiring mistake, found at start. */
  add(capability: Capability): void {
    const commands = Object.entries(capability.commands ?? {});
    const prefixes = capability.notices?.prefixes ?? [];
    const messages = Object.entries(capability.collector ?? ({} as CollectorMessages));
    for (const [kind] of commands) {
      const other = this.commands.get(kind);
      if (other) throw new Error(`command ${kind} is claimed by ${other.owner.name} and ${capability.name}`);
    }
    for (const prefix of prefixes) {
      const other = this.answers.find((a) => prefix.startsWith(a.prefix) || a.prefix.startsWith(prefix));
      if (other) throw new Error(`notice prefix ${prefix} of ${capability.name} overlaps ${other.owner.name}'s ${other.prefix}`);
    }
    for (const [type] of messages) {
      const other = this.collector.get(type);
      if (other) throw new Error(`collector message ${type} is claimed by ${other.owner.name} and ${capability.name}`);
    }
    for (const [kind, handler] of commands) this.commands.set(kind, { owner: capability, handler: handler as AnyCommandHandler });
    for (const prefix of prefixes) this.answers.push({ prefix, owner: capability });
    for (const [type, handler] of messages) this.collector.set(type, { owner: capability, handler: handler as AnyCollectorHandler });
    this.list.push(capability);
  }

  get names(): string[] {
    return this.list.map((c) => c.name);
  }

  /** Carries out one command; resolves to the coded error when it could not, never rejects. */
  async carryOut(command: Command): Promise<CommandError | undefined> {
    const found = this.commands.get(command.kind);
    // A computer without the capability (no session adapter: no logoff) says so.
    if (!found) return { code: 'INV_ERR_NOT_SUPPORTED', message: `this agent cannot carry out ${command.kind} yet` };
    try {
      return await found.handler(command);
    } catch (e) {
      this.log.error('a command failed', { capability: found.owner.name, kind: command.kind, error: String(e) });
      return { code: 'INV_ERR_INTERNAL', message: `${command.kind} failed: ${String(e)}`.slice(0, 200) };
    }
  }

  /** An answer from a tray goes to the capability whose notice it answers. */
  async answer(answer: TrayAnswer, from: TrayPeer): Promise<AnswerResult> {
    const owner = this.answers.find((a) => answer.noticeId.startsWith(a.prefix))?.owner;
    if (!owner?.notices) return { ok: false, code: 'INV_ERR_NOT_SUPPORTED', message: 'no rule here answers notices' };
    try {
      return await owner.notices.answer(answer, from);
    } catch (e) {
      this.log.error('answering a notice failed', { capability: owner.name, noticeId: answer.noticeId, error: String(e) });
      return { ok: false, code: 'INV_ERR_INTERNAL', message: String(e).slice(0, 200) };
    }
  }

  /** A message from the collector for one capability; none here for it: dropped. */
  fromCollector(message: Extract<CollectorToAgent, { type: keyof CollectorMessages }>): void {
    const found = this.collector.get(message.type);
    if (!found) return;
    this.guard(found.owner, `handling ${message.type}`, () => found.handler(message));
  }

  /** Its part of the tray's status: whether any capability needs the person's attention. */
  attention(): boolean {
    return this.list.some((c) => {
      try {
        return c.status?.().attention === true;
      } catch {
        return false;
      }
    });
  }

  onPolicyChanged(): Promise<void> {
    return Promise.all(this.list.map((c) => c.onPolicyChanged && this.settle(c, 'deciding again under the new policy', () => c.onPolicyChanged!()))).then(
      () => undefined,
    );
  }

  linkReady(): void {
    for (const c of this.list) if (c.onLinkReady) this.guard(c, 'acting on the link being ready', () => c.onLinkReady!());
  }

  screenChanged(): void {
    for (const c of this.list) if (c.onScreenChanged) this.guard(c, 'deciding again for the person at the screen', () => c.onScreenChanged!());
  }

  trayHello(from: TrayPeer): void {
    for (const c of this.list) if (c.onTrayHello) this.guard(c, 'greeting a tray', () => c.onTrayHello!(from));
  }

  trayMissing(uid: number, sinceSeconds: number): void {
    for (const c of this.list) if (c.onTrayMissing) this.guard(c, 'handling a missing tray', () => c.onTrayMissing!(uid, sinceSeconds));
  }

  /** Each capability that keeps something per signed-in user, in turn; the session tick waits for them. */
  async sessionsRead(): Promise<void> {
    for (const c of this.list) if (c.onSessionsRead) await this.settle(c, 'following the sessions', () => c.onSessionsRead!());
  }

  /** In the order listed; a capability that cannot start stops the agent's start, as its own rules decide. */
  async start(): Promise<void> {
    for (const c of this.list) await c.start?.();
  }

  /** In reverse order, each on its own: one that fails is logged and the rest still stop. */
  async stop(): Promise<void> {
    for (const c of [...this.list].reverse()) {
      if (c.stop) await c.stop().catch((e: unknown) => this.log.error(`${c.name} did not stop cleanly`, { error: String(e) }));
    }
  }

  /** Runs a hook without waiting for it, logging a throw or a rejection. */
  private guard(owner: Capability, what: string, run: () => unknown): void {
    void this.settle(owner, what, run);
  }

  private async settle(owner: Capability, what: string, run: () => unknown): Promise<void> {
    try {
      await run();
    } catch (e) {
      this.log.error(`${what} failed`, { capability: owner.name, error: String(e) });
    }
  }
}
