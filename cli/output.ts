import { type InputProblem, formatProblems } from '../shared/errors';

/** Exit codes, the same for every command. */
export const EXIT = { OK: 0, INVALID: 1, USAGE: 2, FAILED: 3 } as const;

export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
  readStdin: () => Promise<Buffer>;
}

export const processIo: Io = {
  out: (text) => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`),
  err: (text) => process.stderr.write(text.endsWith('\n') ? text : `${text}\n`),
  readStdin: async () => {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  },
};

export function reportProblems(io: Io, heading: string, problems: readonly InputProblem[]): void {
  io.err(`${heading}\n${formatProblems(problems)}`);
}
