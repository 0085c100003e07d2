import { z } from 'zod';
import { type EnvBinding, asInteger } from '../node-common/config-loader';
import { LOG_LEVELS, type LogLevel } from '../node-common/log-levels';

export const DEFAULT_COLLECTOR_PORT = 8470;

export const collectorConfigSchema = z.strictObject({
  /** `sqlite:PATH` (one school) or `postgres://…` (several collectors sharing one database). */
  db: z.string().regex(/^(sqlite:.+|postgres(ql)?:\/\/.+)$/, 'sqlite:PATH or postgres://URL'),
  /** Loopback by default: exposing the collector to the network is a deliberate choice. */
  host: z.string().min(1).default('127.0.0.1'),
  port: z.number().int().min(0).max(65535).default(DEFAULT_COLLECTOR_PORT),
  dataDir: z.string().min(1).default('./data'),
  logLevel: z.enum(LOG_LEVELS as [LogLevel, ...LogLevel[]]).default('info'),
  /** The policy pushed to agents: a preset name or the path of a policy file. */
  policy: z.string().min(1).default('basildon-primary'),
  /** PEM files: with both, the collector serves https:// and wss:// itself. */
  tls: z.strictObject({ certFile: z.string().min(1), keyFile: z.string().min(1) }).optional(),
  /**
   * The key device secrets are sealed under (docs/deployment.md): default `<dataDir>/device-secret-key`,
   * made on first start. Collectors sharing one PostgreSQL must all name the same key.
   */
  secretKeyFile: z.string().min(1).optional(),
  /** Hours without a word from a device before it is reported silent (`device.silent`). */
  silentAfterHours: z
    .number()
    .int()
    .min(1)
    .max(24 * 365)
    .default(24 * 7),
  /**
   * Connections still authenticating from one source address that have not yet named a known device
   * (docs/protocol.md, "Admission control"). Raise it when many computers reach the collector through
   * one address (a school behind NAT, a TLS proxy); 0 turns the cap off.
   */
  handshakesPerAddress: z.number().int().min(0).max(20_000).default(50),
  /**
   * Whether devices enrolled with the token this collector keeps in `<dataDir>/enrollment-token`
   * count at once (`automatic`: `invigilator start`, a test rig) or wait for the network manager (`manual`).
   */
  enrollmentApproval: z.enum(['manual', 'automatic']).default('manual'),
  /** What one computer may do in the login limit (collector/login-leases.ts); each has a default. */
  loginLimit: z
    .strictObject({
      maxUsersPerDevice: z.number().int().min(1).max(10_000).optional(),
      newUsersPerDevicePerHour: z.number().int().min(1).max(100_000).optional(),
      evictionsPerDevicePerHour: z.number().int().min(0).max(10_000).optional(),
      /**
       * PostgreSQL only: how many transactions at once may decide one burst of claims (docs/architecture.md,
       * "A burst in parts"). 1 unless the database server has cores to spare beyond the collectors'.
       */
      claimTransactions: z.number().int().min(1).max(8).optional(),
    })
    .default({}),
});

export type CollectorConfig = z.infer<typeof collectorConfigSchema>;

export const COLLECTOR_ENV: readonly EnvBinding[] = [
  { variable: 'INVIGILATOR_DB', path: ['db'] },
  { variable: 'INVIGILATOR_HOST', path: ['host'] },
  { variable: 'INVIGILATOR_PORT', path: ['port'], parse: asInteger },
  { variable: 'INVIGILATOR_DATA_DIR', path: ['dataDir'] },
  { variable: 'INVIGILATOR_LOG_LEVEL', path: ['logLevel'] },
  { variable: 'INVIGILATOR_POLICY', path: ['policy'] },
  { variable: 'INVIGILATOR_TLS_CERT', path: ['tls', 'certFile'] },
  { variable: 'INVIGILATOR_TLS_KEY', path: ['tls', 'keyFile'] },
  { variable: 'INVIGILATOR_SILENT_AFTER_HOURS', path: ['silentAfterHours'], parse: asInteger },
  { variable: 'INVIGILATOR_HANDSHAKES_PER_ADDRESS', path: ['handshakesPerAddress'], parse: asInteger },
  { variable: 'INVIGILATOR_SECRET_KEY_FILE', path: ['secretKeyFile'] },
  { variable: 'INVIGILATOR_ENROLLMENT_APPROVAL', path: ['enrollmentApproval'] },
];
