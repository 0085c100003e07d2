import { join, resolve } from 'node:path';
import { buildCollector } from '../../collector/collector';
import { ensureAdminToken, ensureEnrollmentToken } from '../../collector/bootstrap';
import { COLLECTOR_ENV, collectorConfigSchema } from '../../collector/config';
import { PostgresCommandBus } from '../../collector/command-bus';
import { SECRET_KEY_FILE, loadSecretKey } from '../../collector/secret-key-file';
import { openStore } from '../../collector/store/open-store';
import { PostgresStore } from '../../collector/store/postgres/postgres-store';
import { closeLogger, createLogger } from '../../node-common/logging';
import { preparePrivateDir } from '../../node-common/private-dir';
import { InvigilatorError } from '../../shared/errors';
import { parse } from '../args';
import { untilSignalled } from '../lifecycle';
import { EXIT, type Io } from '../output';
import { loadServiceSettings } from '../service-settings';
import { readTlsFiles } from '../tls-files';
import { VERSION } from '../version';

export const COLLECTOR_HELP = `Usage: invigilator collector --db sqlite:PATH|postgres://URL [options]

Runs the collector: the agent socket at /agent and the HTTP API.

Options:
  --db URL            sqlite:PATH (one school) or postgres://URL (env INVIGILATOR_DB)
  --port N            port to listen on, default 8470 (env INVIGILATOR_PORT)
  --host HOST         address to listen on, default 127.0.0.1 (env INVIGILATOR_HOST)
  --data-dir DIR      admin token, enrollment token, device secret key and logs, default ./data
                      (env INVIGILATOR_DATA_DIR)
  --policy NAME|FILE  the policy pushed to agents, default basildon-primary (env INVIGILATOR_POLICY)
                      (a config file may also set silentAfterHours, default 168: env INVIGILATOR_SILENT_AFTER_HOURS;
                      enrollmentApproval, manual or automatic, for the enrollment token in DIR, default manual:
                      env INVIGILATOR_ENROLLMENT_APPROVAL; loginLimit: maxUsersPerDevice, newUsersPerDevicePerHour,
                      evictionsPerDevicePerHour)
  --config FILE       a JSON file with any of: db, port, host, dataDir, policy, logLevel, secretKeyFile,
                      handshakesPerAddress
  --log-level LEVEL   error, warn, info or debug (env INVIGILATOR_LOG_LEVEL)
  --tls-cert FILE     PEM certificate: serve https:// and wss:// (env INVIGILATOR_TLS_CERT)
  --tls-key FILE      its PEM private key (env INVIGILATOR_TLS_KEY)
  --handshakes-per-address N
                      connections still authenticating from one address, default 50;
                      raise it behind NAT or a proxy, 0: no cap (env INVIGILATOR_HANDSHAKES_PER_ADDRESS)
  --secret-key-file FILE
                      the key device secrets are sealed under, default DIR/device-secret-key,
                      made on first start; collectors sharing PostgreSQL name one file
                      (env INVIGILATOR_SECRET_KEY_FILE)
  -h, --help          this help

Command line beats environment beats the config file. SIGINT or SIGTERM
stops it cleanly (exit 0).`;

/** A whole number given as text becomes a number; anything else is left for the schema to refuse by name. */
const asNumber = (value: string | undefined) => (value === undefined ? undefined : /^\d+$/.test(value) ? Number(value) : value);

export async function collectorCommand(argv: string[], io: Io, posix: boolean): Promise<number> {
  const { values } = parse(argv, {
    db: { type: 'string' },
    port: { type: 'string' },
    host: { type: 'string' },
    'data-dir': { type: 'string' },
    policy: { type: 'string' },
    config: { type: 'string' },
    'log-level': { type: 'string' },
    'tls-cert': { type: 'string' },
    'tls-key': { type: 'string' },
    'handshakes-per-address': { type: 'string' },
    'secret-key-file': { type: 'string' },
  });
  if (values.help) {
    io.out(COLLECTOR_HELP);
    return EXIT.OK;
  }
  const settings = await loadServiceSettings(io, 'collector', collectorConfigSchema, {
    file: values.config,
    bindings: COLLECTOR_ENV,
    overrides: {
      db: values.db,
      port: asNumber(values.port),
      host: values.host,
      dataDir: values['data-dir'],
      policy: values.policy,
      logLevel: values['log-level'],
      'tls.certFile': values['tls-cert'],
      'tls.keyFile': values['tls-key'],
      handshakesPerAddress: asNumber(values['handshakes-per-address']),
      secretKeyFile: values['secret-key-file'],
    },
  });
  if (typeof settings === 'number') return settings;
  const { config, policy } = settings;
  const tls = config.tls ? readTlsFiles(config.tls) : undefined;
  const dataDir = resolve(config.dataDir);
  const tightened = preparePrivateDir(dataDir, { posix, setting: '--data-dir (INVIGILATOR_DATA_DIR)' });
  const logger = createLogger({ program: 'collector', level: config.logLevel, dir: resolve(dataDir, 'logs'), console: true });
  if (tightened.length > 0) logger.warn('the data folder could be read by other users; made it private', { tightened: tightened.slice(0, 20) });
  const secretKeyPath = resolve(config.secretKeyFile ?? join(dataDir, SECRET_KEY_FILE));
  const secretKey = loadSecretKey(secretKeyPath);
  // Never the key itself: only where it is, and that it must be kept with the database's backups.
  if (secretKey.created) logger.info('device secret key created; back it up (without it the devices must enroll again)', { path: secretKeyPath });
  const store = await openStore(config.db, { secretKey: secretKey.key, posix, claimTransactions: config.loginLimit.claimTransactions });
  // Several collector processes share PostgreSQL, so commands are announced through it; one SQLite process needs no bus.
  const bus = store instanceof PostgresStore ? await PostgresCommandBus.start(config.db, store.pool, logger) : undefined;
  const collector = buildCollector({
    store,
    logger,
    policy,
    version: VERSION,
    silentAfterMs: config.silentAfterHours * 3_600_000,
    limits: { maxHandshakesPerAddress: config.handshakesPerAddress },
    loginLeases: Object.fromEntries(Object.entries(config.loginLimit).filter(([, v]) => v !== undefined)),
    ...(bus ? { bus } : {}),
    ...(tls ? { tls } : {}),
  });
  let address;
  try {
    address = await collector.listen(config.port, config.host);
  } catch (e) {
    await store.close();
    throw listenError(e, config.host, config.port);
  }
  const adminTokenPath = await ensureAdminToken(store, dataDir, Date.now(), logger);
  const enrollment = await ensureEnrollmentToken(store, dataDir, Date.now(), config.enrollmentApproval);
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `${tls ? 'https' : 'http'}://${host}:${address.port}`;
  io.out(`Invigilator collector listening on ${url} (agents connect to ${tls ? 'wss' : 'ws'}://${host}:${address.port}/agent)`);
  if (adminTokenPath) io.out(`Admin API token: ${adminTokenPath}`);
  io.out(`Enrollment token for installers: ${enrollment.path}`);
  process.send?.({ type: 'collector.ready', url, port: address.port, enrollmentTokenPath: enrollment.path, adminTokenPath: adminTokenPath ?? null });

  return untilSignalled(async (signal) => {
    logger.info('stopping', { signal });
    await collector.close();
    await store.close();
    await closeLogger(logger);
  });
}

/** The listening errors an operator can fix, each with the setting to change. */
function listenError(e: unknown, host: string, port: number): unknown {
  if (!(e instanceof InvigilatorError) || e.code !== 'INV_ERR_LISTEN_FAILED') return e;
  const address = `${host}:${port}`;
  if (/: EADDRINUSE$/.test(e.message)) {
    return new InvigilatorError(
      'INV_ERR_PORT_IN_USE',
      `${address} is taken by another program (another collector?): stop it, or choose another port with --port N (INVIGILATOR_PORT).`,
    );
  }
  if (/: EACCES$/.test(e.message)) {
    return new InvigilatorError(
      'INV_ERR_LISTEN_FAILED',
      `${address}: EACCES; ports below 1024 need privileges: choose another port with --port N (INVIGILATOR_PORT).`,
    );
  }
  if (/: (EADDRNOTAVAIL|ENOTFOUND|EAI_AGAIN)$/.test(e.message)) {
    return new InvigilatorError(
      'INV_ERR_LISTEN_FAILED',
      `${host} is not an address of this computer: choose one with --host ADDRESS (INVIGILATOR_HOST), for example 0.0.0.0 for every network.`,
    );
  }
  return e;
}
