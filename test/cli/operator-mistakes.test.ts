import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { type Server, createServer } from 'node:net';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { type CliResult, UNPRIVILEGED, runCli, tempDir } from '../support/cli';

/**
 * The mistakes an operator makes on the first day, each run through the real
 * built CLI: every one gets its own code, a sentence saying what to do, exit 2,
 * and never a stack trace or INV_ERR_INTERNAL.
 */
function expectOperatorError(result: CliResult, code: string, ...hints: RegExp[]): void {
  expect(result.stderr).not.toMatch(/\n\s+at /);
  expect(result.stderr).not.toContain('INV_ERR_INTERNAL');
  expect(result.stderr).toMatch(new RegExp(`^${code}: `, 'm'));
  for (const hint of hints) expect(result.stderr).toMatch(hint);
  expect(result.status).toBe(2);
}

/** A folder the unprivileged user can enter and use. */
function usableDir(prefix: string): string {
  const dir = tempDir(prefix);
  chmodSync(dir, 0o700);
  if (UNPRIVILEGED) chownSync(dir, UNPRIVILEGED.uid, UNPRIVILEGED.gid);
  return dir;
}

/** A folder the unprivileged user can enter and read but not write. */
function readOnlyDir(prefix: string): string {
  const dir = tempDir(prefix);
  chmodSync(dir, UNPRIVILEGED ? 0o755 : 0o555);
  return dir;
}

const agentArgs = (dataDir: string) => [
  'agent',
  '--collector',
  'ws://127.0.0.1:1/agent',
  '--data-dir',
  dataDir,
  '--usb-control',
  'off',
  '--sessions-control',
  'off',
  '--software-control',
  'off',
];
const collectorArgs = (dataDir: string, db = `sqlite:${join(usableDir('db'), 'collector.db')}`) => [
  'collector',
  '--db',
  db,
  '--data-dir',
  dataDir,
  '--port',
  '0',
];

describe('a data folder that cannot be used', () => {
  const aFile = () => {
    const file = join(tempDir('in-the-way'), 'not-a-folder');
    writeFileSync(file, 'x');
    return file;
  };

  it.each([
    ['the agent', agentArgs],
    ['the collector', (dir: string) => collectorArgs(dir)],
    ['start', (dir: string) => ['start', '--data-dir', dir, '--port', '0']],
  ])('%s: a path under a file is INV_ERR_DATA_DIR_NOT_A_FOLDER, naming the file and --data-dir', (_name, args) => {
    const file = aFile();
    const result = runCli(args(join(file, 'data')));
    expectOperatorError(result, 'INV_ERR_DATA_DIR_NOT_A_FOLDER', new RegExp(`${file} is a file`), /--data-dir/);
  });

  it.each([
    ['the agent', agentArgs],
    ['the collector', (dir: string) => collectorArgs(dir)],
    ['start', (dir: string) => ['start', '--data-dir', dir, '--port', '0']],
  ])('%s: a folder it may not create is INV_ERR_DATA_DIR_UNWRITABLE, saying who must be able to write where', (_name, args) => {
    const parent = readOnlyDir('ro-parent');
    const result = runCli(args(join(parent, 'data')), { unprivileged: true });
    expectOperatorError(result, 'INV_ERR_DATA_DIR_UNWRITABLE', new RegExp(`${parent}`), /--data-dir/, /EACCES/);
  });

  it('an existing folder it may not write is INV_ERR_DATA_DIR_UNWRITABLE', () => {
    const dir = readOnlyDir('ro-data');
    expectOperatorError(runCli(agentArgs(dir), { unprivileged: true }), 'INV_ERR_DATA_DIR_UNWRITABLE', /--data-dir/);
  });
});

describe('a SQLite database that cannot be used', () => {
  it('an unwritable SQLite path is INV_ERR_STORE_UNWRITABLE, naming --db', () => {
    const parent = readOnlyDir('ro-db');
    const result = runCli(collectorArgs(usableDir('data'), `sqlite:${join(parent, 'collector.db')}`), { unprivileged: true });
    expectOperatorError(result, 'INV_ERR_STORE_UNWRITABLE', new RegExp(join(parent, 'collector.db')), /--db/, /EACCES/);
  });

  it('a SQLite path under a file is INV_ERR_STORE_UNWRITABLE, naming the file in the way', () => {
    const file = join(tempDir('db-in-the-way'), 'plain-file');
    writeFileSync(file, 'x');
    const result = runCli(collectorArgs(tempDir('data'), `sqlite:${join(file, 'collector.db')}`));
    expectOperatorError(result, 'INV_ERR_STORE_UNWRITABLE', new RegExp(`${file} is a file`), /--db/);
  });

  it('a file that is not a SQLite database is INV_ERR_STORE_CORRUPT, and is left as it was', () => {
    const db = join(tempDir('corrupt'), 'collector.db');
    const bytes = Buffer.alloc(20_000, 'not a database at all ');
    writeFileSync(db, bytes);
    const result = runCli(collectorArgs(tempDir('data'), `sqlite:${db}`));
    expectOperatorError(result, 'INV_ERR_STORE_CORRUPT', new RegExp(db), /backup/);
    expect(readFileSync(db).equals(bytes)).toBe(true);
  });

  it('a SQLite database whose pages are damaged is INV_ERR_STORE_CORRUPT', () => {
    const dir = tempDir('damaged');
    const good = join(dir, 'good.db');
    const made = new Database(good);
    made.exec('CREATE TABLE t (x TEXT); INSERT INTO t VALUES (randomblob(100000))');
    made.close();
    const db = join(dir, 'collector.db');
    copyFileSync(good, db);
    const bytes = readFileSync(db);
    bytes.fill(0xa5, 100, bytes.length); // keep the 100-byte header, ruin every page
    writeFileSync(db, bytes);
    const result = runCli(collectorArgs(tempDir('data'), `sqlite:${db}`));
    expectOperatorError(result, 'INV_ERR_STORE_CORRUPT', new RegExp(db));
  });
});

describe('TLS files that are not what they should be', () => {
  const dir = tempDir('tls-files');
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'a.key', '-out', 'a.pem', '-days', '1', '-subj', '/CN=127.0.0.1');
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'b.key', '-out', 'b.pem', '-days', '1', '-subj', '/CN=127.0.0.1');
  openssl('x509', '-in', 'a.pem', '-outform', 'DER', '-out', 'a.der');
  writeFileSync(join(dir, 'notes.txt'), 'this is not a certificate\n');
  const tls = (cert: string, key: string) => [...collectorArgs(tempDir('data')), '--tls-cert', join(dir, cert), '--tls-key', join(dir, key)];

  it.each([
    ['a text file as the certificate', 'notes.txt', 'a.key', /notes\.txt is not a PEM certificate/],
    ['a DER certificate', 'a.der', 'a.key', /a\.der is not a PEM certificate/],
    ['a certificate as the key', 'a.pem', 'a.pem', /a\.pem is not a PEM private key/],
    ["another certificate's key", 'a.pem', 'b.key', /b\.key is not the private key of .*a\.pem/],
  ])('%s is INV_ERR_TLS_INVALID, naming the file and --tls-cert/--tls-key', (_name, cert, key, hint) => {
    expectOperatorError(runCli(tls(cert, key)), 'INV_ERR_TLS_INVALID', hint, /--tls-(cert|key)/);
  });
});

describe('a port that is taken', () => {
  let server: Server;
  let port: number;
  beforeAll(async () => {
    server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('is INV_ERR_PORT_IN_USE, naming --port and INVIGILATOR_PORT', () => {
    const result = runCli(['collector', '--db', `sqlite:${join(tempDir('db'), 'c.db')}`, '--data-dir', tempDir('data'), '--port', String(port)]);
    expectOperatorError(result, 'INV_ERR_PORT_IN_USE', new RegExp(`127\\.0\\.0\\.1:${port}`), /--port/, /INVIGILATOR_PORT/);
  });

  it('start says the same', () => {
    const result = runCli(['start', '--data-dir', tempDir('start'), '--port', String(port)]);
    expect(result.stderr).toMatch(/^INV_ERR_PORT_IN_USE: .*--port.*INVIGILATOR_PORT/m);
    expect(result.stderr).not.toMatch(/\n\s+at /);
    expect(result.status).toBe(2);
  });
});

describe('the agent without its settings', () => {
  it('`invigilator agent` alone says to give it --config', () => {
    const result = runCli(['agent']);
    expectOperatorError(result, 'INV_ERR_USAGE', /--config FILE/);
  });
});

describe('JSON files with a syntax error say where', () => {
  const broken = '{\n  "collector": {\n    "url": "ws://127.0.0.1:1/agent",\n  },\n  "dataDir": "/tmp/x"\n}\n';

  it('a configuration file: line and column', () => {
    const file = join(tempDir('config'), 'agent.json');
    writeFileSync(file, broken);
    const result = runCli(['agent', '--config', file]);
    expect(result.stderr).toMatch(new RegExp(`INV_ERR_INVALID_JSON at \\$: ${file}: line 4, column 3: `));
    expect(result.stderr).not.toMatch(/\n\s+at /);
    expect(result.status).toBe(2);
  });

  it('a collector configuration file: line and column', () => {
    const file = join(tempDir('config'), 'collector.json');
    writeFileSync(file, '{"db": "sqlite:/tmp/x.db",\n "port": 8470\n "host": "127.0.0.1"}');
    expect(runCli(['collector', '--config', file]).stderr).toMatch(/INV_ERR_INVALID_JSON at \$: .*collector\.json: line 3, column 2: /);
  });

  it('a policy file: line and column, for validate and for the collector', () => {
    const file = join(tempDir('policy'), 'policy.json');
    writeFileSync(file, '{\n  "id": "x",\n  "revision": 1,,\n}');
    const validated = runCli(['policy', 'validate', file]);
    expect(validated.stderr).toMatch(/INV_ERR_INVALID_JSON at \$: line 3, column 17: /);
    expect(validated.status).toBe(1);
    const collector = runCli(['collector', '--db', `sqlite:${join(tempDir('db'), 'c.db')}`, '--data-dir', tempDir('data'), '--policy', file]);
    expect(collector.stderr).toMatch(/INV_ERR_INVALID_JSON at \$: line 3, column 17: /);
    expect(collector.status).toBe(2);
  });
});

describe('a data folder that is not private', () => {
  it("one owned by another user is refused with INV_ERR_DATA_DIR_UNSAFE: that user could read the device's secret", () => {
    if (!UNPRIVILEGED) {
      process.stdout.write('skipped: making a folder owned by another user needs root\n');
      return;
    }
    const dir = tempDir('someone-elses');
    chownSync(dir, 1234, 1234);
    chmodSync(dir, 0o777);
    expectOperatorError(runCli(agentArgs(dir)), 'INV_ERR_DATA_DIR_UNSAFE', /uid 1234/, /chown/);
  });

  it("a loose folder holding other programs' files (a mistaken --data-dir /var/lib) is refused, and nothing in it is changed", () => {
    const dir = join(tempDir('foreign'), 'lib');
    mkdirSync(join(dir, 'postgresql'), { recursive: true });
    writeFileSync(join(dir, 'postgresql', 'PG_VERSION'), '16\n');
    chmodSync(dir, 0o755);
    chmodSync(join(dir, 'postgresql', 'PG_VERSION'), 0o644);
    expectOperatorError(runCli(agentArgs(dir)), 'INV_ERR_DATA_DIR_UNSAFE', /not Invigilator's/, /--data-dir/);
    expect(statSync(dir).mode & 0o7777).toBe(0o755);
    expect(statSync(join(dir, 'postgresql', 'PG_VERSION')).mode & 0o7777).toBe(0o644);
  });

  it('a shared folder such as /tmp (sticky bit) is refused with INV_ERR_DATA_DIR_UNSAFE', () => {
    const dir = join(tempDir('shared'), 'tmp-like');
    mkdirSync(dir);
    chmodSync(dir, 0o1777);
    expectOperatorError(runCli(agentArgs(dir)), 'INV_ERR_DATA_DIR_UNSAFE', /shared/, /--data-dir/);
  });
});
