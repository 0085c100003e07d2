import { constants } from 'node:fs';
import { open, readFile, realpath, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Logger } from '../node-common/logging';
import { parseUntrustedJson } from '../shared/untrusted-json';

export type ForgetOutcome = 'removed' | 'absent' | 'failed';

/**
 * The enrollment token lets whoever holds it enroll devices, so once this
 * agent has its identity (it never needs the token again) the token is taken
 * out of the configuration file it was read from. The file is rewritten
 * atomically beside itself (a temporary file, then a rename), with every other
 * setting, its indentation, its mode and its owner kept. If the file cannot be
 * written the token stays, and a warning says what to do. A deployment tool
 * that writes the file back brings the token back: the agent, having an
 * identity, ignores it and removes it again at its next start.
 */
export async function forgetEnrollmentToken(configFile: string, logger: Logger): Promise<ForgetOutcome> {
  const log = logger.child({ component: 'config' });
  let target = configFile;
  let tmp: string | undefined;
  try {
    target = await realpath(configFile);
    const text = await readFile(target, 'utf8');
    const parsed = parseUntrustedJson(text);
    if (!parsed.ok) return 'absent';
    const config = parsed.value as { collector?: Record<string, unknown> } | null;
    const collector = config?.collector;
    if (collector === null || typeof collector !== 'object' || !('enrollmentToken' in collector)) return 'absent';
    delete collector.enrollmentToken;

    const before = await stat(target);
    tmp = join(dirname(target), `.${basename(target)}.${process.pid}.tmp`);
    const handle = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    try {
      await handle.writeFile(layoutLike(text, config));
      await handle.chmod(before.mode & 0o7777);
      if (process.geteuid?.() === 0) await handle.chown(before.uid, before.gid);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, target);
    tmp = undefined;
    await syncFolder(dirname(target));
    log.info('removed the enrollment token from the configuration file: this agent has its identity and does not need it again', { file: target });
    return 'removed';
  } catch (e) {
    if (tmp) await unlink(tmp).catch(() => undefined);
    log.warn(
      `the enrollment token is still in ${target} (${(e as NodeJS.ErrnoException).code ?? String(e)}): this agent has its identity and does not need it, ` +
        'and anyone who reads the file can enroll devices with it: remove collector.enrollmentToken from that file',
      { file: target },
    );
    return 'failed';
  }
}

/** The same JSON, indented as the original was (two spaces, a tab, or all on one line), ending as it ended. */
function layoutLike(original: string, value: unknown): string {
  const indent = /^[{[][ \t]*\r?\n([ \t]+)\S/.exec(original)?.[1] ?? (/\n/.test(original.trim()) ? '  ' : '');
  const body = JSON.stringify(value, null, indent);
  const newline = original.includes('\r\n') ? '\r\n' : '\n';
  return `${indent ? body.replace(/\n/g, newline) : body}${/\r?\n$/.test(original) ? newline : ''}`;
}

async function syncFolder(path: string): Promise<void> {
  const handle = await open(path, constants.O_RDONLY).catch(() => undefined);
  if (!handle) return;
  await handle.sync().catch(() => undefined);
  await handle.close();
}
