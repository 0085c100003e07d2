/**
 * The log levels, on their own: the configuration schemas name them, and
 * importing them from `logging.ts` would load winston just for four words.
 */
export type LogLevel = 'error' | 'warn' | 'info' | 'debug';
export const LOG_LEVELS: readonly LogLevel[] = ['error', 'warn', 'info', 'debug'];
