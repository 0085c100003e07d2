import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { RecordedAnswer } from '../../../agent/os/recorded-commands';

/**
 * Recorded outputs for the session directories, in test/fixtures/sessions:
 * a header of `#` lines saying where the output came from, a `#---` line,
 * then the output exactly as recorded (see that folder's README).
 */

export const SESSION_FIXTURES = join(__dirname, '..', '..', 'fixtures', 'sessions');
const END_OF_HEADER = '\n#---\n';

export interface Recording {
  /** The header lines, each starting with '#'. */
  header: string[];
  /** The exit code the header gives (0 when it gives none). */
  exitCode: number;
  /** Whether the header says the output was constructed rather than copied from a capture. */
  constructed: boolean;
  /** What the program printed, byte for byte after the header. */
  output: string;
}

/** Reads one recording; throws when its header does not say where it came from. */
export function readRecording(path: string): Recording {
  const text = readFileSync(join(SESSION_FIXTURES, path), 'utf8');
  const end = text.indexOf(END_OF_HEADER);
  if (end < 0) throw new Error(`${path}: no "#---" line ends the header`);
  const header = text.slice(0, end).split('\n');
  if (!header.every((line) => line.startsWith('#'))) throw new Error(`${path}: a header line does not start with '#'`);
  const constructed = header.find((line) => /^# Constructed: (yes|no)\b/.test(line));
  if (!header.some((line) => /^# Source: \S/.test(line)) || !constructed)
    throw new Error(`${path}: the header must have "# Source:" and "# Constructed:" lines`);
  const exit = header.map((line) => /^# Exit code: (\d{1,3})$/.exec(line)).find((m) => m !== null);
  return {
    header,
    exitCode: exit ? Number(exit[1]) : 0,
    constructed: constructed.startsWith('# Constructed: yes'),
    output: text.slice(end + END_OF_HEADER.length),
  };
}

/** A recording as what a RecordedCommands runner answers. */
export function answerOf(path: string): RecordedAnswer {
  const { output, exitCode } = readRecording(path);
  return { stdout: output, code: exitCode };
}

/** Every recording under test/fixtures/sessions, relative to it (the README is not one). */
export function allRecordings(dir = SESSION_FIXTURES): string[] {
  const found: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) found.push(...allRecordings(path));
    else if (name !== 'README.md') found.push(relative(SESSION_FIXTURES, path));
  }
  return found.sort();
}
