import type { SoftwareSettings } from '../../../shared/policy/schema';
import type { Platform } from '../../../shared/protocol/primitives';
import { CATALOGUE, type CatalogueEntry, type CatalogueHit, type SoftwareCategory, catalogueHits } from '../catalogue';
import { type FailsafeReason, type SelfIdentity, failsafeReason } from './process-failsafe';
import { MATCH_STRENGTH, type MatchKind, type MatchSubject, hasDotSegments, matches, normaliseName, normalisePath, strongestField } from './process-match';

/**
 * The software rule: a pure function of one process and the policy as it
 * applies to the role of the user who started it. It decides; the guard
 * acts. The order, first that applies wins:
 *
 * 0. The failsafe (process-failsafe.ts): Invigilator, PID 1, kernel threads,
 *    OS-critical programs where they belong. Nothing in a policy reaches it,
 *    except that a school's hash rule naming the very file outranks the
 *    OS-critical folders (a folder is a place, a hash is the file).
 * 1. The school's own `rules`, the most specific match first: a rule that
 *    names a hash beats one naming a signer, which beats a path pattern,
 *    which beats a name; among equals, the first in the policy. Every field
 *    a rule names must hold (name AND signer, say), and a fact that is not
 *    known (no hash: the file could not be read) does not hold. An
 *    interpreter's script (`python3 x.py`) is matched too, by its own name,
 *    path and hash: a rule that holds for the interpreter or its script
 *    holds for the process.
 * 2. The curated categories (catalogue.ts) the policy names in `categories`.
 *    When a program is in several, the strongest action wins (terminate >
 *    notify > report), then the category listed first in SOFTWARE_CATEGORIES.
 *    A school's `approved` entry does not override a category: approving
 *    "Dropbox" while prohibiting personal cloud storage is read as the
 *    prohibition (say so with a role instead).
 * 2b. An installer (INSTALLER_NAMES) run by a person: the `installs`
 *    setting's action, as category `installer`.
 * 2c. A person's program in a private mount namespace whose path there is
 *    not the file at that path here (`pathVouched: false`): the
 *    `privateMounts` setting's action, as category `private-mounts`, unless
 *    an `approved` entry names its hash, or the allowlist (3) stops it as
 *    unapproved. Such a path approves nothing: no OS folder, no
 *    `pathPattern`.
 * 3. In `allowlist` mode, anything not approved: not in `approved`, not part
 *    of the OS (its executable in a folder only administrators can write,
 *    after AppLocker's default rules), and not Invigilator. It is terminated
 *    under the section's `clause`, as category `unapproved`. A process whose
 *    executable path the OS did not give is not judged unapproved: nothing
 *    is known of where it came from.
 *
 * `audit` mode judges exactly as `allowlist` does (so a school sees what the
 * allowlist would stop before turning it on) and marks every outcome
 * `audit: true`: the guard then reports and enforces nothing, the way
 * AppLocker's "Audit only" and Santa's monitor mode log what they would
 * have blocked.
 */

export type SoftwareAction = 'report' | 'notify' | 'terminate';
export type OutcomeCategory = SoftwareCategory | 'unapproved' | 'installer' | 'private-mounts';

/**
 * Programs whose running is an attempt to install software, when a person
 * (not the OS, not an administrator's elevated process) runs them: Basildon
 * 3.7, users "must not install or attempt to install software of any kind".
 * Deliberately short: per-application updaters (OneDriveSetup, Teams) run in
 * the user's session too, and stopping them would break approved software.
 * Windows: msiexec (an MSI opened by the user), winget and App Installer
 * (`.msix`); Linux: the package tools a user can run without root (pip,
 * flatpak, snap, which asks polkit); macOS: Installer.app, which runs as the
 * user until it asks for a password.
 */
export const INSTALLER_NAMES: Record<Platform, readonly string[]> = {
  win32: ['msiexec', 'winget', 'appinstaller'],
  linux: ['pip', 'pip3', 'pipx', 'flatpak', 'snap'],
  darwin: ['installer'],
};

export interface ProcessFacts {
  pid: number;
  ppid?: number | undefined;
  /** The executable's base name (as the OS reported it; `.exe` and case are ignored). */
  name: string;
  /** Other names the OS reported (Linux comm): count for denylists, never for approval. */
  otherNames?: readonly string[] | undefined;
  path?: string | undefined;
  sha256?: string | undefined;
  signer?: string | undefined;
  kernelThread?: boolean | undefined;
  /** Linux: the process is in a mount namespace of its own (ObservedProcess.mountNamespace). */
  mountNamespace?: 'private' | undefined;
  /** False: `path` is a private namespace's and names another file here (ObservedProcess.pathVouched): no folder spares or approves it. */
  pathVouched?: boolean | undefined;
  /** An interpreter's script: judged by the rules, the categories' names and the installers, never approved by anything. */
  script?: { name: string; path?: string | undefined; sha256?: string | undefined } | undefined;
}

export interface SoftwareDecisionInput {
  process: ProcessFacts;
  /** `settingsFor(policy, 'software', role)`. */
  settings: SoftwareSettings;
  platform: Platform;
  self: SelfIdentity;
  catalogue?: readonly CatalogueEntry[];
  /** Folders whose programs count as part of the OS in allowlist mode; defaults per OS (OS_FOLDERS). */
  osFolders?: readonly string[];
  /** Folders under those that users can write to, and so are not the OS's (OS_WRITABLE_FOLDERS). */
  osWritableFolders?: readonly string[];
  /** The process is a person's (not a system account's or an administrator's elevated one): only then is an installer an attempt to install. */
  byPerson?: boolean;
}

export interface SoftwareOutcome {
  /** The policy rule's id, `cat-<category>`, `unapproved`, `failsafe` or `none`. */
  ruleId: string;
  category?: OutcomeCategory;
  action: SoftwareAction | 'none';
  /** Audit mode: nothing is enforced; `action` is what would have been done. */
  audit: boolean;
  /** The clause id the outcome rests on. */
  clause: string;
  /** How it matched: the rule's strongest field, the catalogue entry, or the allowlist. */
  matchedBy?: MatchKind | 'catalogue' | 'allowlist';
  /** The catalogue entry, for a category outcome. */
  entryId?: string;
  /** For `failsafe`: why the process is spared. */
  spared?: FailsafeReason;
}

/**
 * Folders whose programs are the OS's or were installed by an administrator
 * (the school: "programmes provided ... by the school"). Windows: AppLocker's
 * default rules (everything in the Windows folder and in Program Files; see
 * MicrosoftDocs "Understanding AppLocker default rules"). Linux: the folders
 * only root can write. macOS: the System Integrity Protection folders and
 * /Applications and /Library, which need an administrator.
 */
export const OS_FOLDERS: Record<Platform, readonly string[]> = {
  win32: ['c:/windows/', 'c:/program files/', 'c:/program files (x86)/'],
  linux: ['/usr/', '/bin/', '/sbin/', '/lib/', '/lib64/', '/opt/', '/snap/'],
  darwin: ['/system/', '/usr/', '/bin/', '/sbin/', '/applications/', '/library/'],
};

/**
 * Folders inside OS_FOLDERS that ordinary users can write to, so a program
 * there proves nothing. Windows: the folders AppLocker's docs warn about
 * (Windows\Temp) and the well-known bypass folders winPEAS checks
 * (peass-ng/PEASS-ng AppLockerHelper.cs). Linux and macOS: /usr/local is
 * left approved (root or an administrator writes it), /usr/tmp is not.
 */
export const OS_WRITABLE_FOLDERS: Record<Platform, readonly string[]> = {
  win32: [
    'c:/windows/temp/',
    'c:/windows/tasks/',
    'c:/windows/tracing/',
    'c:/windows/registration/crmlog/',
    'c:/windows/system32/spool/drivers/color/',
    'c:/windows/system32/spool/printers/',
    'c:/windows/system32/spool/servers/',
    'c:/windows/system32/fxstmp/',
    'c:/windows/system32/com/dmp/',
    'c:/windows/system32/microsoft/crypto/rsa/machinekeys/',
    'c:/windows/system32/tasks/',
    'c:/windows/system32/tasks_migrated/',
    'c:/windows/syswow64/fxstmp/',
    'c:/windows/syswow64/com/dmp/',
    'c:/windows/syswow64/tasks/',
  ],
  linux: ['/usr/tmp/'],
  darwin: ['/library/caches/'],
};

const ACTION_RANK: Record<SoftwareAction, number> = { report: 1, notify: 2, terminate: 3 };
const CATEGORY_ORDER: readonly SoftwareCategory[] = ['hacking-tool', 'evidence-elimination', 'personal-cloud-storage', 'filter-bypass', 'game'];

/** Whether any rule or approval needs the executable's hash: the guard hashes only then. */
export function needsHash(settings: SoftwareSettings): boolean {
  const approvalsCount = settings.mode !== 'denylist' || settings.privateMounts.action !== 'ignore';
  return settings.rules.some((r) => r.match.sha256 !== undefined) || (approvalsCount && settings.approved.some((m) => m.sha256 !== undefined));
}

/** Whether any rule or approval needs the executable's signer. */
export function needsSigner(settings: SoftwareSettings): boolean {
  return settings.rules.some((r) => r.match.signer !== undefined) || (settings.mode !== 'denylist' && settings.approved.some((m) => m.signer !== undefined));
}

/** Whether this path is in an OS folder no ordinary user can write to. */
export function isOsPath(path: string | undefined, platform: Platform, osFolders = OS_FOLDERS[platform], writable = OS_WRITABLE_FOLDERS[platform]): boolean {
  if (path === undefined) return false;
  const p = normalisePath(path, platform);
  if (hasDotSegments(p)) return false;
  const folders = osFolders.map((f) => normalisePath(f, platform));
  if (!folders.some((f) => p.startsWith(f))) return false;
  return !writable.some((w) => p.startsWith(normalisePath(w, platform)));
}

export function decideSoftware(input: SoftwareDecisionInput): SoftwareOutcome {
  const { process: p, settings, platform } = input;
  const audit = settings.mode === 'audit';
  const none = (extra: Partial<SoftwareOutcome> = {}): SoftwareOutcome => ({ ruleId: 'none', action: 'none', audit, clause: settings.clause, ...extra });

  const spared = failsafeReason(
    { pid: p.pid, ppid: p.ppid ?? 0, name: p.name, path: p.path, kernelThread: p.kernelThread, pathVouched: p.pathVouched },
    platform,
    input.self,
  );
  if (spared && spared !== 'os-critical') return { ruleId: 'failsafe', action: 'none', audit, clause: settings.clause, spared };

  const exeName = normaliseName(p.name);
  const scriptName = p.script ? normaliseName(p.script.name) : undefined;
  const names = [exeName, ...[...(p.otherNames ?? []), ...(p.script ? [p.script.name] : [])].map(normaliseName).filter((n) => n !== exeName && n !== '')];
  const path = p.path === undefined || p.path === '' ? undefined : normalisePath(p.path, platform);
  const vouched = p.pathVouched !== false;
  const subject: MatchSubject = { names, exeName, path, sha256: p.sha256?.toLowerCase(), signer: p.signer };
  const subjects: MatchSubject[] = [subject];
  if (p.script && scriptName) {
    const scriptPath = p.script.path === undefined || p.script.path === '' ? undefined : normalisePath(p.script.path, platform);
    subjects.push({ names: [scriptName], exeName: scriptName, path: scriptPath, sha256: p.script.sha256?.toLowerCase() });
  }

  // 1. The school's own rules, most specific first.
  let best: { rule: SoftwareSettings['rules'][number]; strength: number; kind: MatchKind } | undefined;
  for (const rule of settings.rules) {
    if (!subjects.some((s) => matches(rule.match, s, platform, 'all'))) continue;
    const kind = strongestField(rule.match);
    const strength = MATCH_STRENGTH[kind];
    if (!best || strength > best.strength) best = { rule, strength, kind };
  }
  // An OS-critical program where it belongs is spared, unless a hash rule names that very file.
  if (spared && !(best && best.kind === 'sha256')) return { ruleId: 'failsafe', action: 'none', audit, clause: settings.clause, spared };
  if (best) {
    const { rule, kind } = best;
    return { ruleId: rule.id, ...(rule.category ? { category: rule.category } : {}), action: rule.action, audit, clause: rule.clause, matchedBy: kind };
  }

  // 2. The curated categories the policy acts on.
  const hits = catalogueHits(input.catalogue ?? CATALOGUE, platform, names, path, path?.toLowerCase()).filter((h) => settings.categories[h.category]);
  const hit = strongestHit(hits, settings);
  if (hit) {
    const chosen = settings.categories[hit.category]!;
    return {
      ruleId: `cat-${hit.category}`,
      category: hit.category,
      action: chosen.action,
      audit,
      clause: chosen.clause,
      matchedBy: 'catalogue',
      entryId: hit.entry.id,
    };
  }

  // 2b. An attempt to install, by a person (the `installs` setting).
  if (input.byPerson && settings.installs.action !== 'ignore' && INSTALLER_NAMES[platform].some((n) => names.includes(n))) {
    return { ruleId: 'installs', category: 'installer', action: settings.installs.action, audit, clause: settings.installs.clause, matchedBy: 'catalogue' };
  }

  // 2c. A person's program whose path a private mount namespace made up (the `privateMounts` setting): only its hash can vouch for it.
  const approvedByHash = () => subject.sha256 !== undefined && settings.approved.some((m) => m.sha256 !== undefined && matches(m, subject, platform, 'exe'));
  const suspect: SoftwareOutcome | undefined =
    input.byPerson && p.mountNamespace === 'private' && !vouched && settings.privateMounts.action !== 'ignore' && !approvedByHash()
      ? { ruleId: 'private-mounts', category: 'private-mounts', action: settings.privateMounts.action, audit, clause: settings.privateMounts.clause }
      : undefined;
  const otherwise = () => suspect ?? none();

  // 3. Allowlist (and audit, which judges as allowlist does): anything not approved; what is approved may still be suspect (2c).
  if (settings.mode === 'denylist') return otherwise();
  if (path === undefined) return otherwise();
  if (vouched && isOsPath(path, platform, input.osFolders, input.osWritableFolders)) return otherwise();
  // A made-up path approves nothing: judge the approvals as if the process had none.
  const approvable: MatchSubject = vouched ? subject : { ...subject, path: undefined };
  if (settings.approved.some((m) => matches(m, approvable, platform, 'exe'))) return otherwise();
  return { ruleId: 'unapproved', category: 'unapproved', action: 'terminate', audit, clause: settings.clause, matchedBy: 'allowlist' };
}

function strongestHit(hits: CatalogueHit[], settings: SoftwareSettings): CatalogueHit | undefined {
  let best: CatalogueHit | undefined;
  for (const h of hits) {
    if (!best) {
      best = h;
      continue;
    }
    const a = ACTION_RANK[settings.categories[h.category]!.action];
    const b = ACTION_RANK[settings.categories[best.category]!.action];
    if (a > b || (a === b && CATEGORY_ORDER.indexOf(h.category) < CATEGORY_ORDER.indexOf(best.category))) best = h;
  }
  return best;
}
