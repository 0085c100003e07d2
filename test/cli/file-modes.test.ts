import { chmodSync, lstatSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { eventually, startCli, tempDir } from '../support/cli';

/**
 * The collector's database holds device secrets and pupils' events, the
 * agent's folder its identity: whatever the umask, the data folders are 0700
 * and nothing in them can be read by anyone but their owner.
 */
interface Entry {
  path: string;
  kind: 'dir' | 'file' | 'socket' | 'other';
  mode: number;
}

/** Every entry under `root`, bounded. */
function walk(root: string, max = 2000): Entry[] {
  const out: Entry[] = [];
  const queue = [root];
  while (queue.length > 0 && out.length < max) {
    const dir = queue.shift()!;
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      const stat = lstatSync(path);
      const kind = stat.isDirectory() ? 'dir' : stat.isFile() ? 'file' : stat.isSocket() ? 'socket' : 'other';
      out.push({ path: path.slice(root.length + 1), kind, mode: stat.mode & 0o7777 });
      if (kind === 'dir') queue.push(path);
    }
  }
  return out;
}

const octal = (mode: number) => mode.toString(8).padStart(4, '0');
/** What others could reach: anything with a group or other bit. */
const opened = (entries: Entry[]) => entries.filter((e) => (e.mode & 0o077) !== 0).map((e) => `${e.path} ${octal(e.mode)}`);

async function runStart(dataDir: string, umask: string): Promise<Entry[]> {
  const run = startCli(['start', '--data-dir', dataDir, '--port', '0'], {}, { umask });
  try {
    await eventually(() => (/connected to the collector/.test(run.output()) ? true : undefined), 600);
    // The database is written (the device enrolled), so its -wal and -shm exist now.
    return walk(dataDir);
  } finally {
    run.child.kill('SIGTERM');
    await run.exited;
  }
}

describe.each(['022', '000'])('invigilator start under umask %s', (umask) => {
  it('creates the data folders 0700 and every file in them readable by their owner only', async () => {
    const dataDir = join(tempDir(`modes-${umask}`), 'data');
    const entries = await runStart(dataDir, umask);

    const names = entries.map((e) => e.path);
    expect(names).toEqual(
      expect.arrayContaining([
        'collector.db',
        'collector.db-wal',
        'collector.db-shm',
        'admin-token',
        'enrollment-token',
        join('logs', 'collector.log'),
        join('agent', 'identity.json'),
        join('agent', 'logs', 'agent.log'),
      ]),
    );
    expect(octal(lstatSync(dataDir).mode & 0o7777)).toBe('0700');
    expect(opened(entries)).toEqual([]);
    expect(entries.filter((e) => e.kind === 'dir' && e.mode !== 0o700).map((e) => `${e.path} ${octal(e.mode)}`)).toEqual([]);
  });
});

describe('a data folder made beforehand with looser modes', () => {
  it("is tightened, with everything already in it, when it is Invigilator's (an older version's)", async () => {
    const dataDir = join(tempDir('premade'), 'data');
    mkdirSync(join(dataDir, 'logs'), { recursive: true });
    mkdirSync(join(dataDir, 'agent'));
    const files = ['collector.db', join('logs', 'collector.log'), join('logs', 'collector1.log'), 'notes.txt'].map((f) => join(dataDir, f));
    for (const file of files) writeFileSync(file, '');
    for (const dir of [dataDir, join(dataDir, 'logs'), join(dataDir, 'agent')]) chmodSync(dir, 0o777);
    for (const file of files) chmodSync(file, 0o666);

    const entries = await runStart(dataDir, '022');

    expect(octal(lstatSync(dataDir).mode & 0o7777)).toBe('0700');
    expect(opened(entries)).toEqual([]);
  });
});

describe('the collector alone, with its database outside its data folder, under umask 000', () => {
  it('creates the database folder 0700 and the database files 0600', async () => {
    const root = tempDir('db-elsewhere');
    const dbDir = join(root, 'db');
    const run = startCli(
      ['collector', '--db', `sqlite:${join(dbDir, 'collector.db')}`, '--data-dir', join(root, 'data'), '--port', '0', '--log-level', 'error'],
      {},
      { umask: '000' },
    );
    try {
      await eventually(() => (/listening on/.test(run.output()) ? true : undefined), 600);
      const entries = walk(dbDir);
      expect(entries.map((e) => e.path)).toEqual(expect.arrayContaining(['collector.db', 'collector.db-wal', 'collector.db-shm']));
      expect(octal(lstatSync(dbDir).mode & 0o7777)).toBe('0700');
      expect(entries.map((e) => `${e.path} ${octal(e.mode)}`).sort()).toEqual(['collector.db 0600', 'collector.db-shm 0600', 'collector.db-wal 0600']);
      expect(opened(walk(join(root, 'data')))).toEqual([]);
    } finally {
      run.child.kill('SIGTERM');
      await run.exited;
    }
  });
});
