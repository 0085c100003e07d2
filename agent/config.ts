import { z } from 'zod';
import { type EnvBinding, asBoolean } from '../node-common/config-loader';
import { LOG_LEVELS, type LogLevel } from '../node-common/log-levels';

export const agentConfigSchema = z.strictObject({
  collector: z.strictObject({
    /** `wss://host:port/agent`; `ws://` only to loopback or with `allowInsecure`. */
    url: z.string().min(1).max(2048),
    /** Given by the installer; used once, to enroll. */
    enrollmentToken: z
      .string()
      .regex(/^[A-Za-z0-9_-]{10,200}$/, 'an enrollment token as the collector printed it')
      .optional(),
    allowInsecure: z.boolean().default(false),
    caFile: z.string().min(1).optional(),
  }),
  /** Identity, outbox and the current policy live here: `/var/lib/invigilator` when installed. */
  dataDir: z.string().min(1),
  logLevel: z.enum(LOG_LEVELS as [LogLevel, ...LogLevel[]]).default('info'),
  /** The policy enforced until the collector pushes one: a preset name or a policy file. */
  policy: z.string().min(1).default('basildon-primary'),
  outbox: z
    .strictObject({
      capBytes: z
        .number()
        .int()
        .min(1024 * 1024)
        .max(16 * 1024 ** 3)
        .default(256 * 1024 * 1024),
    })
    .default({ capBytes: 256 * 1024 * 1024 }),
  tray: z
    .strictObject({
      /** The local channel to the tray: a Unix socket (default `<dataDir>/tray.sock`, inside the root-only data folder) or, on Windows, a named pipe. */
      socket: z.string().min(1).max(1024).optional(),
      /** Linux: a socket per signed-in user in this folder, owned by that user (needs root). `off` to have none. */
      userSockets: z.union([z.literal('off'), z.string().min(1).max(512)]).default('/run/invigilator/trays'),
    })
    .prefault({}),
  sessions: z
    .strictObject({
      /**
       * `enforce` signs sessions out (idle, end of day, login limit, remote);
       * `observe` decides and reports but signs nobody out (`invigilator start`
       * on a developer's own machine); `off` watches no sessions at all.
       */
      control: z.enum(['enforce', 'observe', 'off']).default('enforce'),
    })
    .prefault({}),
  software: z
    .strictObject({
      /**
       * `enforce` stops programs and quarantines downloads as the policy says;
       * `observe` decides and reports as audit, touching nothing
       * (`invigilator start` on a developer's own machine); `off`.
       */
      control: z.enum(['enforce', 'observe', 'off']).default('enforce'),
    })
    .prefault({}),
  usb: z
    .strictObject({
      /** `enforce` on school computers; `observe` decides and reports but touches no device (`invigilator start` on a developer's machine); `off`. */
      control: z.enum(['enforce', 'observe', 'off']).default('enforce'),
      /** Linux: hold every new device (authorized_default=0) until decided, so nothing types or mounts first. */
      holdNewDevices: z.boolean().default(true),
      /** Linux: where the kernel's and udev's views live (tests point these elsewhere). */
      linux: z
        .strictObject({
          sysRoot: z.string().min(1).default('/sys'),
          devRoot: z.string().min(1).default('/dev'),
          allowedDir: z.string().min(1).default('/run/invigilator/usb-allowed'),
          mountInfo: z.string().min(1).default('/proc/self/mountinfo'),
          udevadm: z.string().min(1).default('udevadm'),
        })
        .prefault({}),
    })
    .prefault({}),
});

export type AgentConfig = z.infer<typeof agentConfigSchema>;

export const AGENT_ENV: readonly EnvBinding[] = [
  { variable: 'INVIGILATOR_COLLECTOR_URL', path: ['collector', 'url'] },
  { variable: 'INVIGILATOR_ENROLLMENT_TOKEN', path: ['collector', 'enrollmentToken'] },
  { variable: 'INVIGILATOR_ALLOW_INSECURE', path: ['collector', 'allowInsecure'], parse: asBoolean },
  { variable: 'INVIGILATOR_CA_FILE', path: ['collector', 'caFile'] },
  { variable: 'INVIGILATOR_DATA_DIR', path: ['dataDir'] },
  { variable: 'INVIGILATOR_LOG_LEVEL', path: ['logLevel'] },
  { variable: 'INVIGILATOR_POLICY', path: ['policy'] },
  { variable: 'INVIGILATOR_USB_CONTROL', path: ['usb', 'control'] },
  { variable: 'INVIGILATOR_SESSIONS_CONTROL', path: ['sessions', 'control'] },
  { variable: 'INVIGILATOR_SOFTWARE_CONTROL', path: ['software', 'control'] },
];
