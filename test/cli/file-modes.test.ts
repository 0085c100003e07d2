import { randomBytes } from 'node:crypto';
import { chmodSync, lstatSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
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
        'device-secret-key',
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

/** The collector alone, its database outside `dataDir`; resolves once it listens (then stops it) or exits. */
async function runCollector(root: string, dataDir: string): Promise<{ listened: boolean; code: number | null; output: string }> {
  const run = startCli(['collector', '--db', `sqlite:${join(root, 'db', 'collector.db')}`, '--data-dir', dataDir, '--port', '0', '--log-level', 'info']);
  const exited = run.exited.then((e) => ({ exited: e }));
  const outcome = await Promise.race([exited, eventually(() => (/listening on/.test(run.output()) ? { exited: undefined } : undefined), 600)]);
  if (outcome.exited) return { listened: false, code: outcome.exited.code, output: run.output() };
  run.child.kill('SIGTERM');
  const { code } = await run.exited;
  return { listened: true, code, output: run.output() };
}

describe("the collector's device secret key in a data folder made beforehand", () => {
  const key = () => `${randomBytes(32).toString('base64url')}\n`;

  it("makes the folder Invigilator's: one holding only a key copied in (for collectors sharing PostgreSQL) is tightened and its key used", async () => {
    const root = tempDir('key-only');
    const dataDir = join(root, 'data');
    mkdirSync(dataDir, { mode: 0o755 });
    chmodSync(dataDir, 0o755);
    const copied = key();
    writeFileSync(join(dataDir, 'device-secret-key'), copied, { mode: 0o600 });

    const run = await runCollector(root, dataDir);

    expect(run).toMatchObject({ listened: true });
    expect(run.output).not.toMatch(/device secret key created/);
    expect(readFileSync(join(dataDir, 'device-secret-key'), 'utf8')).toBe(copied);
    expect(octal(lstatSync(dataDir).mode & 0o7777)).toBe('0700');
  });

  it('leaves a key file others can read as it is, and refuses it with a sentence (exit 2), rather than tightening it quietly', async () => {
    const root = tempDir('key-loose');
    const dataDir = join(root, 'data');
    mkdirSync(dataDir, { mode: 0o755 });
    chmodSync(dataDir, 0o755);
    writeFileSync(join(dataDir, 'admin-token'), 'inv_admin_x\n', { mode: 0o644 });
    writeFileSync(join(dataDir, 'device-secret-key'), key(), { mode: 0o644 });
    chmodSync(join(dataDir, 'device-secret-key'), 0o644);

    const run = await runCollector(root, dataDir);

    expect(run).toMatchObject({ listened: false, code: 2 });
    expect(run.output).toMatch(
      /INV_ERR_CONFIG_INVALID: .*the device secret key file .*device-secret-key: mode 644: others can read or change it \(chmod 600 it\)/,
    );
    expect(octal(lstatSync(join(dataDir, 'device-secret-key')).mode & 0o7777)).toBe('0644');
    // The rest of the folder is still made private.
    expect(octal(lstatSync(dataDir).mode & 0o7777)).toBe('0700');
    expect(octal(lstatSync(join(dataDir, 'admin-token')).mode & 0o7777)).toBe('0600');
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
