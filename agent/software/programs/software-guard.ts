/**
 * The software rule at work, for processes: every process a ProcessSource
 * reports is decided by the pure rule (software-decision.ts), stopped when
 * the rule says so, recorded, and explained to the person whose process it
 * was.
 *
 * Constructor (wired in agent/agent.ts):
 *
 *   new SoftwareGuard({
 *     policy: () => Policy,                 // the policy in force now
 *     source: ProcessSource,                // ProcfsProcessSource (Linux), StartTraceProcessSource (Windows), PsProcessSource (macOS)
 *     record: Recorder,   // the outbox
 *     notices: { showTo(uid, notice), withdraw(noticeId) },   // UserTrays: that user's trays only
 *     roleOf: (uid: number) => Promise<string>,       // the role of the process's user (cached here for a minute)
 *     logger: Logger,
 *     now?: () => number,                   // ms, for events and the notice throttle
 *     selfPids: () => Iterable<number>,     // the agent's pid and the pids of its children
 *     os: ProgramsOs,                       // this OS's facts: LINUX_PROGRAMS, WIN32_PROGRAMS, DARWIN_PROGRAMS (cli/software-for.ts)
 *     killer: ProcessKiller,                // signalKiller (SIGKILL: Linux, macOS), taskkillKiller (taskkill /F /PID: Windows)
 *     // optional:
 *     hasher?: ExecutableHasher,            // default: a new one (2 files at a time)
 *     signerOf?: (path) => Promise<string | undefined>,   // Authenticode publisher / macOS team id; none: signer rules never match
 *     catalogue?: readonly CatalogueEntry[],              // default: CATALOGUE
 *     installFolders?: readonly string[],                 // where Invigilator is installed (failsafe), default per OS
 *     control?: 'enforce' | 'observe',      // observe: decide and report as audit, kill nothing, show nothing (a developer's machine)
 *     onDecided?: (info) => void,           // every decision, for tests and the benchmark
 *   })
 *
 * Methods: start() (processes already running are decided too), stop(),
 * settled() (every decision so far finished), reconsiderAll() (after a new
 * policy: running processes are decided again; an unchanged outcome is not
 * reported twice).
 *
 * It acts before it records, as the USB guard does: a kill is never delayed
 * by a disk write. Before a kill the process is checked to be the very one
 * decided about (pid and start time), so a pid reused in between is never
 * hit.
 */
import { createHash } from 'node:crypto';
import { citeClause, settingsFor } from '../../../shared/policy/resolve';
import type { Policy, SoftwareSettings } from '../../../shared/policy/schema';
import type { TrayNotice } from '../../../shared/protocol';
import { PROTOCOL_VERSION } from '../../../shared/protocol/primitives';
import type { Platform } from '../../../shared/protocol/primitives';
import type { Logger } from '../../../node-common/logging';
import type { EventDraft, Recorder } from '../../core/events';
import type { PersonalNotices } from '../../core/notices';
import { CATALOGUE, type CatalogueEntry } from '../catalogue';
import { ExecutableHasher } from './executable-hasher';
import type { KillResult, ProcessKiller } from './process-killer';
import type { ProgramsOs } from './programs-os';
import { normaliseName } from './process-match';
import type { ObservedProcess, ProcessChange, ProcessSource } from './process-source';
import { type ProcessFacts, type SoftwareOutcome, decideSoftware, needsHash, needsSigner } from './software-decision';

export interface SoftwareDecided {
  process: ObservedProcess;
  change: ProcessChange;
  outcome: SoftwareOutcome;
  role: string | undefined;
  /** What enforcement did: killed, gone before it could be, failed, or nothing (not a terminate, audit, observe). */
  enforced: KillResult | 'none';
  /** From the source's report to the decision carried out, in ms. */
  elapsedMs: number;
}

export interface SoftwareGuardDeps {
  policy: () => Policy;
  source: ProcessSource;
  record: Recorder;
  /** Where a notice for one person goes: their own trays only. */
  notices: PersonalNotices;
  roleOf: (uid: number) => Promise<string>;
  logger: Logger;
  now?: () => number;
  selfPids: () => Iterable<number>;
  /** This OS's facts, chosen by the composition root. */
  os: ProgramsOs;
  killer: ProcessKiller;
  hasher?: ExecutableHasher;
  signerOf?: (path: string) => Promise<string | undefined>;
  catalogue?: readonly CatalogueEntry[];
  installFolders?: readonly string[];
  control?: 'enforce' | 'observe';
  onDecided?: (info: SoftwareDecided) => void;
}

/** A role looked up is trusted this long: group membership changes take effect at the next lookup. */
const ROLE_CACHE_MS = 60_000;
/** However the policy sets its throttle, one program's notice to one person at most this often. */
const MIN_NOTICE_GAP_MS = 10_000;
/** And at most this many software notices to one person a minute, whatever the programs. */
const NOTICES_PER_MINUTE = 5;
const MAX_REMEMBERED = 65_536;

/**
 * See the top of this file for the constructor and what each method does.
 */
export class SoftwareGuard {
  private readonly now: () => number;
  private readonly log: Logger;
  private readonly platform: Platform;
  private readonly killer: ProcessKiller;
  private readonly hasher: ExecutableHasher;
  private readonly catalogue: readonly CatalogueEntry[];
  private readonly inFlight = new Set<Promise<void>>();
  /** pid → what was last decided for which process, so a decision made again is reported only when it changed. */
  private readonly decided = new Map<number, { startKey: string; path: string | undefined; outcome: string }>();
  private readonly busy = new Set<string>();
  private readonly roles = new Map<number, { role: Promise<string>; at: number }>();
  private readonly lastNotice = new Map<string, number>();
  private readonly noticesByUser = new Map<number, number[]>();
  private started = false;

  constructor(private readonly deps: SoftwareGuardDeps) {
    this.now = deps.now ?? Date.now;
    this.log = deps.logger.child({ component: 'software' });
    this.platform = deps.source.platform;
    this.killer = deps.killer;
    this.hasher = deps.hasher ?? new ExecutableHasher();
    this.catalogue = deps.catalogue ?? CATALOGUE;
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    await this.deps.source.start((process, change) => this.onProcess(process, change));
  }

  async stop(): Promise<void> {
    this.started = false;
    await this.deps.source.stop();
    await this.settled();
  }

  /** Waits until every process reported so far has been decided, enforced and recorded. */
  async settled(): Promise<void> {
    for (let i = 0; i < 100 && this.inFlight.size > 0; i++) await Promise.all([...this.inFlight]);
  }

  /** The policy changed: everything running is decided again under it. */
  async reconsiderAll(): Promise<void> {
    for (const p of this.deps.source.running()) this.onProcess(p, 'present');
    await this.settled();
  }

  private onProcess(process: ObservedProcess, change: ProcessChange): void {
    const key = `${process.pid}\0${process.startKey}\0${process.path ?? process.name}`;
    if (this.busy.has(key)) return;
    this.busy.add(key);
    const work: Promise<void> = this.handle(process, change)
      .catch((e: unknown) => {
        this.log.error('deciding a process failed', { pid: process.pid, error: String(e) });
      })
      .finally(() => {
        this.busy.delete(key);
        this.inFlight.delete(work);
      });
    this.inFlight.add(work);
  }

  private async handle(p: ObservedProcess, change: ProcessChange): Promise<void> {
    const startedAt = performance.now();
    const policy = this.deps.policy();
    const self = { pids: new Set(this.deps.selfPids()), ...(this.deps.installFolders ? { installFolders: this.deps.installFolders } : {}) };
    const role = p.uid !== undefined ? await this.roleOf(policy, p.uid) : policy.roles.default;
    const settings = settingsFor(policy, 'software', role);
    const facts: ProcessFacts = {
      pid: p.pid,
      ppid: p.ppid,
      name: p.name,
      ...(p.comm !== undefined ? { otherNames: [p.comm] } : {}),
      ...(p.path !== undefined ? { path: p.path } : {}),
      ...(p.kernelThread ? { kernelThread: true } : {}),
      ...(p.mountNamespace ? { mountNamespace: p.mountNamespace } : {}),
      ...(p.pathVouched !== undefined ? { pathVouched: p.pathVouched } : {}),
      ...(p.script ? { script: { name: p.script.name, path: p.script.path } } : {}),
    };
    const byPerson = this.deps.os.isPersonsProcess(p.uid, p.user);
    const decide = () => decideSoftware({ process: facts, settings, platform: this.platform, self, catalogue: this.catalogue, byPerson });
    let outcome = decide();
    // What the folder failsafe spares, a hash rule may still name: hash it too. What is spared for who it is, never.
    const hashable = outcome.ruleId !== 'failsafe' || outcome.spared === 'os-critical';
    if (hashable && p.path !== undefined && (await this.addIdentity(facts, p, settings))) outcome = decide();

    const outcomeKey = `${outcome.ruleId}|${outcome.action}|${outcome.audit}`;
    const previous = this.decided.get(p.pid);
    const repeat = previous !== undefined && previous.startKey === p.startKey && previous.path === p.path && previous.outcome === outcomeKey;
    this.remember(p, outcomeKey);
    if (outcome.action === 'none' || repeat) {
      this.deps.onDecided?.({ process: p, change, outcome, role, enforced: 'none', elapsedMs: performance.now() - startedAt });
      return;
    }

    const observe = this.deps.control === 'observe';
    const shown: SoftwareOutcome = observe ? { ...outcome, audit: true } : outcome;
    let enforced: KillResult | 'none' = 'none';
    if (shown.action === 'terminate' && !shown.audit) enforced = await this.terminate(p);
    this.deps.onDecided?.({ process: p, change, outcome: shown, role, enforced, elapsedMs: performance.now() - startedAt });

    await this.report(policy, p, facts, shown, role, enforced);
    const stopped = shown.action === 'terminate' && enforced === 'killed';
    if (!shown.audit && p.uid !== undefined && (stopped || shown.action === 'notify')) this.notify(policy, p, shown, stopped);
  }

  /** Hash and signer, only when a rule or approval of this role needs them. Returns whether anything was added. */
  private async addIdentity(facts: ProcessFacts, p: ObservedProcess, settings: SoftwareSettings): Promise<boolean> {
    let added = false;
    if (needsHash(settings)) {
      const sha256 = await this.hasher.sha256(p.path!, p.readPath ?? p.path!);
      if (sha256) {
        facts.sha256 = sha256;
        added = true;
      }
      if (p.script && facts.script) {
        const scripted = await this.hasher.sha256(p.script.path, p.script.readPath);
        if (scripted) {
          facts.script.sha256 = scripted;
          added = true;
        }
      }
    }
    if (needsSigner(settings) && this.deps.signerOf) {
      const signer = await this.deps.signerOf(p.path!).catch(() => undefined);
      if (signer) {
        facts.signer = signer;
        added = true;
      }
    }
    return added;
  }

  private async terminate(p: ObservedProcess): Promise<KillResult> {
    try {
      if (!(await this.deps.source.isSame(p))) return 'gone';
      const result = await this.killer.kill(p);
      if (result === 'failed') this.log.error('could not stop a program the policy stops', { pid: p.pid, name: p.name });
      else if (result === 'killed') this.log.info('stopped a program', { pid: p.pid, name: p.name });
      return result;
    } catch (e) {
      this.log.error('stopping a program failed', { pid: p.pid, error: String(e) });
      return 'failed';
    }
  }

  private async roleOf(policy: Policy, uid: number): Promise<string> {
    const cached = this.roles.get(uid);
    const now = this.now();
    if (cached && now - cached.at < ROLE_CACHE_MS) return cached.role;
    const role = this.deps.roleOf(uid).catch((e: unknown) => {
      this.log.warn('could not tell the role of a user; using the default role', { uid, error: String(e) });
      return policy.roles.default;
    });
    if (this.roles.size >= 10_000) this.roles.clear();
    this.roles.set(uid, { role, at: now });
    return role;
  }

  private remember(p: ObservedProcess, outcome: string): void {
    if (this.decided.size >= MAX_REMEMBERED && !this.decided.has(p.pid)) {
      const oldest = this.decided.keys().next().value;
      if (oldest !== undefined) this.decided.delete(oldest);
    }
    this.decided.set(p.pid, { startKey: p.startKey, path: p.path, outcome });
  }

  // ---- events ---------------------------------------------------------------

  private async report(policy: Policy, p: ObservedProcess, facts: ProcessFacts, outcome: SoftwareOutcome, role: string, enforced: KillResult | 'none') {
    if (outcome.action === 'none') return;
    const time = new Date(this.now()).toISOString();
    const process = processInfo(p, facts);
    const extra = {
      ...(p.uid !== undefined ? { user: { name: (p.user ?? `uid ${p.uid}`).slice(0, 256), osId: String(p.uid), role } } : {}),
      ...this.clause(policy, outcome.clause),
    };
    const severity = outcome.audit ? 'notice' : outcome.action === 'terminate' ? 'alert' : outcome.action === 'notify' ? 'warning' : 'notice';
    await this.deps.record({
      type: 'software.detected',
      severity,
      time,
      data: {
        ruleId: outcome.ruleId,
        ...(outcome.category ? { category: outcome.category } : {}),
        action: outcome.action,
        audit: outcome.audit,
        process,
      },
      ...extra,
    } as EventDraft);
    if (enforced === 'killed') {
      await this.deps.record({ type: 'software.terminated', severity: 'alert', time, data: { ruleId: outcome.ruleId, process }, ...extra } as EventDraft);
    }
  }

  private clause(policy: Policy, clauseId: string): { clause?: ReturnType<typeof citeClause> } {
    try {
      return { clause: citeClause(policy, clauseId) };
    } catch {
      return {};
    }
  }

  // ---- notices --------------------------------------------------------------

  private notify(policy: Policy, p: ObservedProcess, outcome: SoftwareOutcome, stopped: boolean): void {
    const uid = p.uid!;
    const now = this.now();
    const program = normaliseName(p.name);
    const key = `${uid}|${outcome.ruleId}|${program}`;
    const gap = Math.max(MIN_NOTICE_GAP_MS, policy.notices.throttleSeconds * 1000);
    const last = this.lastNotice.get(key);
    if (last !== undefined && now - last < gap) return;
    const recent = (this.noticesByUser.get(uid) ?? []).filter((t) => now - t < 60_000);
    if (recent.length >= NOTICES_PER_MINUTE) return;
    recent.push(now);
    this.noticesByUser.set(uid, recent);
    if (this.lastNotice.size >= 10_000) this.lastNotice.clear();
    this.lastNotice.set(key, now);
    const words = noticeWords(outcome, stopped, policy.notices.contact);
    const notice: TrayNotice = {
      v: PROTOCOL_VERSION,
      type: 'tray.notice',
      // One program's notice to one person keeps its id: shown again, it replaces the one already up.
      noticeId: `software-${uid}-${createHash('sha256').update(key).digest('hex').slice(0, 16)}`,
      kind: 'software-blocked',
      title: words.title,
      body: words.body,
      ...this.clause(policy, outcome.clause),
      subject: programLabel(p),
      actions: ['dismiss'],
    };
    try {
      this.deps.notices.showTo(uid, notice);
    } catch (e) {
      this.log.warn('could not show a notice', { uid, error: String(e) });
    }
  }
}

/** The process as events carry it: no more than the schema allows, control characters made visible as spaces. */
function processInfo(p: ObservedProcess, facts: ProcessFacts) {
  return {
    pid: p.pid,
    name: clean(p.name, 256) || 'unknown',
    ...(p.path !== undefined ? { path: clean(p.path, 1024) } : {}),
    ...(facts.sha256 ? { sha256: facts.sha256 } : {}),
    ...(facts.signer ? { signer: clean(facts.signer, 256) } : {}),
    ...(p.via ? { via: { kind: p.via.kind, name: clean(p.via.name, 256) || 'unknown', path: clean(p.via.path, 1024) } } : {}),
    ...(p.script ? { script: { path: clean(p.script.path, 1024), ...(facts.script?.sha256 ? { sha256: facts.script.sha256 } : {}) } } : {}),
    ...(p.mountNamespace ? { mountNamespace: p.mountNamespace } : {}),
    ...(p.pathVouched !== undefined ? { pathVouched: p.pathVouched } : {}),
  };
}

function clean(s: string, max: number): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\u0000-\u001f\u007f-\u009f\u2028-\u202e]/g, ' ').slice(0, max);
}

/** What the notice calls the program: its name, as text. */
function programLabel(p: ObservedProcess): string {
  return clean(p.name.replace(/\.exe$/i, ''), 500) || 'a program';
}

/** Why, in words a seven-year-old can follow; the clause behind "Why?" carries the school's own words. */
const BECAUSE: Record<string, string> = {
  'hacking-tool': 'It is a tool for spying on other people or breaking into computers.',
  'evidence-elimination': 'It is a program for wiping away what has been done on a computer.',
  'personal-cloud-storage': 'It copies files to a place outside school.',
  'filter-bypass': "It is used to get around the school's internet safety rules.",
  game: 'It is a game.',
  unapproved: 'The school has not said yes to it yet.',
  installer: 'It puts new programs on the computer.',
  'private-mounts': "It was started in a hidden copy of the computer's folders, where the school cannot check what it is.",
};

export function noticeWords(outcome: SoftwareOutcome, stopped: boolean, contact: string): { title: string; body: string } {
  const because = (outcome.category && BECAUSE[outcome.category]) || "The school's rules do not allow it on this computer.";
  const ask = ` If you think this is wrong, or you need it for your work, tell ${contact}.`;
  if (stopped) {
    return { title: 'This program has been closed', body: `This program is not allowed on school computers, so it has been closed. ${because}${ask}` };
  }
  return {
    title: 'This program is not allowed here',
    body: `This program is not allowed on school computers. ${because} ${capitalise(contact)} will be told.${ask}`,
  };
}

function capitalise(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
