import { Writable } from 'node:stream';
import { chmodSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import winston from 'winston';
import { LOG_LEVELS, type LogLevel } from './log-levels';

export { LOG_LEVELS, type LogLevel };

export interface LoggerOptions {
  /** The program: `agent`, `collector`, `cli`. Names the log file. */
  program: string;
  level: LogLevel;
  /** Where the JSON log files go; none: console only. */
  dir?: string;
  /** Readable lines on stderr (for people); off for services whose stderr is the journal. */
  console: boolean;
  /** Rotate at this size; keep this many files. */
  maxBytes?: number;
  maxFiles?: number;
}

export type Logger = winston.Logger;

/**
 * One logger per program: JSON lines to size-rotated files for machines, short
 * readable lines for people. Every line carries its component: call
 * `logger.child({ component: 'link' })` in each module.
 */
export function createLogger(options: LoggerOptions): Logger {
  const transports: winston.transport[] = [];
  if (options.dir) {
    makePrivate(options.dir, options.program);
    transports.push(
      new winston.transports.File({
        filename: join(options.dir, `${options.program}.log`),
        // Logs name pupils, devices and programs: the owner's alone, whatever the umask (and so is every rotated file).
        options: { flags: 'a', mode: 0o600 },
        maxsize: options.maxBytes ?? 10 * 1024 * 1024,
        maxFiles: options.maxFiles ?? 5,
        tailable: true,
        format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
      }),
    );
  }
  if (options.console) {
    transports.push(
      new winston.transports.Console({
        stderrLevels: [...LOG_LEVELS],
        format: winston.format.combine(winston.format.timestamp({ format: 'HH:mm:ss' }), winston.format.printf(readableLine)),
      }),
    );
  }
  if (transports.length === 0) transports.push(new winston.transports.Console({ silent: true }));
  return winston.createLogger({ level: options.level, defaultMeta: { component: options.program }, transports });
}

/** The log folder 0700 and this program's log files 0600, also when an older version left them looser. */
function makePrivate(dir: string, program: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const strip = (path: string) => {
    const mode = statSync(path).mode;
    if (mode & 0o077) chmodSync(path, mode & 0o700);
  };
  strip(dir);
  for (const name of readdirSync(dir)) if (name.startsWith(program) && name.includes('.log')) strip(join(dir, name));
}

function readableLine(info: winston.Logform.TransformableInfo): string {
  const { timestamp, level, message, component, ...rest } = info;
  const extra = Object.keys(rest).length ? ` ${safeJson(rest)}` : '';
  return `${String(timestamp)} ${level.padEnd(5)} [${String(component)}] ${String(message)}${extra}`;
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value, (_k, v: unknown) => (v instanceof Error ? { name: v.name, message: v.message } : v));
  } catch {
    return '[unserialisable]';
  }
}

/** Flushes file transports before a process exits, so the last lines are not lost. */
export async function closeLogger(logger: Logger): Promise<void> {
  await new Promise<void>((resolve) => {
    logger.on('finish', () => resolve());
    logger.end();
    setTimeout(resolve, 2000).unref();
  });
}

/**
 * The last warnings and errors a logger wrote, kept in memory, so a problem
 * report from the person at the computer can say what went wrong lately
 * without anyone opening the log files.
 */
export function recentWarnings(logger: Logger, max = 20): { lines(): string[]; detach(): void } {
  const kept: string[] = [];
  const stream = new Writable({
    objectMode: true,
    write(info: { level?: unknown; message?: unknown; component?: unknown }, _encoding, done) {
      kept.push(`${new Date().toISOString()} ${String(info.level)} [${String(info.component ?? '')}] ${String(info.message).slice(0, 300)}`);
      if (kept.length > max) kept.shift();
      done();
    },
  });
  const transport = new winston.transports.Stream({ stream, level: 'warn' });
  logger.add(transport);
  return { lines: () => [...kept], detach: () => void logger.remove(transport) };
}
