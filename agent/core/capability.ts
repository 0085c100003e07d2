import type { Policy } from '../../shared/policy/schema';
import type { AgentToCollector, Command, CollectorToAgent, TrayToAgent } from '../../shared/protocol';
import type { ErrorCode } from '../../shared/errors';
import type { Logger } from '../../node-common/logging';
import type { Recorder } from './events';
import type { AnswerResult, Notices, TrayPeer } from './notices';
import type { Roster } from './roster';

/*
 * A capability (USB, sessions, the agreement, software, the users' trays)
 * brings its own answers, the way a fastify plugin brings its own routes: the
 * command kinds it carries out, the notices whose answers are its, the link's
 * and the policy's moments it acts on. The core looks each up in a table
 * (agent/core/capability-set.ts), so the composition root knows none of them.
 * Every member is optional: a capability says only what it answers.
 */

/** Why a command was not carried out: the catalogue's code, and words for the log. */
export interface CommandError {
  code: ErrorCode;
  message: string;
}

/** Carries out one command; resolves to the coded error when it could not. */
export type CommandHandler<K extends Command['kind']> = (command: Extract<Command, { kind: K }>) => Promise<CommandError | undefined>;
export type CommandHandlers = { [K in Command['kind']]?: CommandHandler<K> };

/** A tray's answer to a notice. */
export type TrayAnswer = Extract<TrayToAgent, { type: 'tray.answer' }>;

/** What the collector sends that is one capability's to act on, by message type (commands are dispatched by kind). */
export type CollectorMessages = {
  [T in 'permission.decision' | 'login.verdict']?: (message: Extract<CollectorToAgent, { type: T }>) => Promise<void>;
};

export interface Capability {
  /** For the log: which capability failed. */
  readonly name: string;
  /** The command kinds it carries out; a kind nobody claims is answered INV_ERR_NOT_SUPPORTED. */
  readonly commands?: CommandHandlers;
  /** Tray answers to its notices: the notice-id prefixes it gives out, and what it answers them with. */
  readonly notices?: { readonly prefixes: readonly string[]; answer(answer: TrayAnswer, from: TrayPeer): Promise<AnswerResult> };
  readonly collector?: CollectorMessages;
  /** Its part of the tray's status: something needs the person at the computer (the icon shows attention). */
  status?(): { attention: boolean };
  /** A new policy is in force: decide again what was decided under the old one. */
  onPolicyChanged?(): Promise<void>;
  /** The collector has welcomed the agent: what was kept while the link was down can be sent. */
  onLinkReady?(): void;
  /** Someone else is at the screen now, or their role changed (agent/core/roster.ts). */
  onScreenChanged?(): Promise<void>;
  /** Who is signed in has just been read again (each session tick). */
  onSessionsRead?(): Promise<void>;
  /** A user's tray said hello. */
  onTrayHello?(from: TrayPeer): Promise<void>;
  /** A signed-in user has had no tray for the policy's grace period. */
  onTrayMissing?(uid: number, sinceSeconds: number): Promise<void>;
  /** Called in the order the root lists capabilities, after the core is up and before the link starts. */
  start?(): Promise<void>;
  /** Called in reverse order; the agent's stop is bounded, so a slow stop is left behind. */
  stop?(): Promise<void>;
}

/** The link to the collector as a capability sees it: what it may send, and whether it is connected. */
export interface CollectorPort {
  readonly ready: boolean;
  sendPermissionRequest(request: Extract<AgentToCollector, { type: 'permission.request' }>): boolean;
  sendLogin(message: Extract<AgentToCollector, { type: 'login.claim' | 'login.renew' | 'login.release' | 'login.evict' }>): boolean;
}

/** What every capability is built with: the core's parts. */
export interface AgentContext {
  readonly dataDir: string;
  readonly logger: Logger;
  policy(): Policy;
  readonly record: Recorder;
  /** To every tray, or to one person's; shown nowhere (logged) when no tray channel is open. */
  readonly notices: Notices;
  readonly collector: CollectorPort;
  /** Who is signed in with which role; absent without a session adapter (the default role applies). */
  readonly roster: Roster | undefined;
  /** The other capabilities, for what one tells the rest (a tray said hello, the sessions were read). */
  readonly peers: CapabilityPeers;
  /** Repeats `tick` every `ms` until the agent stops; stopping clears it first thing. */
  every(ms: number, tick: () => void): void;
}

export interface CapabilityPeers {
  answer(answer: TrayAnswer, from: TrayPeer): Promise<AnswerResult>;
  trayHello(from: TrayPeer): void;
  trayMissing(uid: number, sinceSeconds: number): void;
  sessionsRead(): Promise<void>;
}
