import { join, resolve } from 'node:path';
import { startAgent } from '../../agent/agent';
import { type OsPlumbing, createOsPlumbing } from '../../agent/os/plumbing';
import type * as SessionsFor from '../sessions-for';
import type * as SoftwareFor from '../software-for';
import type * as NodeUsbHotplug from '../../agent/usb/node-usb-hotplug';
import { AGENT_ENV, type AgentConfig, agentConfigSchema } from '../../agent/config';
import { checkCollectorUrl } from '../../agent/link/collector-url';
import type { Platform } from '../../shared/protocol';
import { type Logger, closeLogger, createLogger } from '../../node-common/logging';
import { preparePrivateDir } from '../../node-common/private-dir';
import { InvigilatorError } from '../../shared/errors';
import { IdentityFile } from '../../agent/identity';
import { forgetEnrollmentToken } from '../forget-enrollment-token';
import { parse } from '../args';
import { untilSignalled } from '../lifecycle';
import { EXIT, type Io } from '../output';
import { loadServiceSettings } from '../service-settings';
import type * as UsbPlatformFor from '../usb-platform-for';
import { VERSION } from '../version';

/*
 * A capability that is off is never loaded: its adapters (and node-usb, a
 * native module) would only hold memory in an agent that runs for months
 * (issue 14, `ratioMinimal` in `npm run bench -- agent-idle`).
 */
/* eslint-disable @typescript-eslint/no-require-imports */
const usbAdapters = () => require('../usb-platform-for') as typeof UsbPlatformFor;
const nodeUsbHotplug = () => require('../../agent/usb/node-usb-hotplug') as typeof NodeUsbHotplug;
const sessionAdapters = () => require('../sessions-for') as typeof SessionsFor;
const softwareAdapters = () => require('../software-for') as typeof SoftwareFor;
/* eslint-enable @typescript-eslint/no-require-imports */

/** From SIGTERM to exit, at most (the goal is 5 s, measured by `npm run bench -- agent-stop`). */
const AGENT_EXIT_WITHIN_MS = 4_500;

export const AGENT_HELP = `Usage: invigilator agent --config FILE [options]

Runs the agent service on this machine (as root or LocalSystem when installed).

Options:
  --config FILE              a JSON file: { "collector": { "url", "enrollmentToken",
                             "allowInsecure", "caFile" }, "dataDir", "policy", "logLevel",
                             "outbox": { "capBytes" }, "usb": { "control", "holdNewDevices" },
                             "tray": { "socket" } }
  --collector URL            wss://host:port/agent (env INVIGILATOR_COLLECTOR_URL)
  --enrollment-token TOKEN   used once, to enroll (env INVIGILATOR_ENROLLMENT_TOKEN); once enrolled,
                             the agent removes it from the --config file
  --data-dir DIR             identity, outbox, policy and logs (env INVIGILATOR_DATA_DIR)
  --log-level LEVEL          error, warn, info or debug (env INVIGILATOR_LOG_LEVEL)
  --usb-control MODE         enforce, observe or off (env INVIGILATOR_USB_CONTROL)
  --sessions-control MODE    enforce, observe or off (env INVIGILATOR_SESSIONS_CONTROL)
  --software-control MODE    enforce, observe or off (env INVIGILATOR_SOFTWARE_CONTROL)
  -h, --help                 this help

Command line beats environment beats the config file. SIGINT or SIGTERM
stops it cleanly (exit 0) within 5 s; unsent events stay in the outbox for next time.`;

export async function agentCommand(argv: string[], io: Io, platform: Platform): Promise<number> {
  const { values } = parse(argv, {
    config: { type: 'string' },
    collector: { type: 'string' },
    'enrollment-token': { type: 'string' },
    'data-dir': { type: 'string' },
    'log-level': { type: 'string' },
    'usb-control': { type: 'string' },
    'sessions-control': { type: 'string' },
    'software-control': { type: 'string' },
  });
  if (values.help) {
    io.out(AGENT_HELP);
    return EXIT.OK;
  }
  if (argv.length === 0 && !AGENT_ENV.some((b) => process.env[b.variable])) {
    throw new InvigilatorError(
      'INV_ERR_USAGE',
      'the agent needs its settings: run invigilator agent --config FILE (a JSON file with collector.url, collector.enrollmentToken and dataDir; see --help and docs/deployment.md)',
    );
  }
  const settings = await loadServiceSettings(io, 'agent', agentConfigSchema, {
    file: values.config,
    bindings: AGENT_ENV,
    overrides: {
      'collector.url': values.collector,
      'collector.enrollmentToken': values['enrollment-token'],
      dataDir: values['data-dir'],
      logLevel: values['log-level'],
      'usb.control': values['usb-control'],
      'sessions.control': values['sessions-control'],
      'software.control': values['software-control'],
    },
  });
  if (typeof settings === 'number') return settings;
  const { config, policy: fallback } = settings;
  checkCollectorUrl(config.collector.url, config.collector.allowInsecure);
  const dataDir = resolve(config.dataDir);
  const tightened = preparePrivateDir(dataDir, { posix: platform !== 'win32', setting: '--data-dir or dataDir (INVIGILATOR_DATA_DIR)' });
  const logger = createLogger({ program: 'agent', level: config.logLevel, dir: resolve(dataDir, 'logs'), console: true });
  if (tightened.length > 0) logger.warn('the data folder could be read by other users; made it private', { tightened: tightened.slice(0, 20) });
  // An agent with an identity never needs the enrollment token again: take it out of the file it came from.
  const configFile = values.config;
  const forgetToken = configFile ? () => void forgetEnrollmentToken(configFile, logger) : undefined;
  if (forgetToken && (await new IdentityFile(dataDir).load().catch(() => undefined))) forgetToken();
  // One runner, and on Windows one PowerShell session, for every capability's adapters; closed after the agent stops.
  const os = createOsPlumbing();
  const usb = config.usb.control === 'off' ? undefined : usbFor(platform, { ...config.usb, control: config.usb.control }, logger, os);
  // Inside the data folder (root only) the socket needs no ACL of its own; Windows has no Unix sockets in its services' folders.
  const trayPath = config.tray.socket ?? (platform === 'win32' ? '\\\\.\\pipe\\invigilator-tray' : join(dataDir, 'tray.sock'));
  // Each signed-in user's tray gets its own socket, which only that user can open (docs/architecture.md).
  const sessions = config.sessions.control === 'off' ? undefined : sessionAdapters().sessionsFor(platform, os.runner, logger, config.sessions.control);
  // Per-user sockets are built for Linux only; Windows and macOS need their own channel (docs/architecture.md).
  const userTrays =
    sessions && platform === 'linux' && config.tray.userSockets !== 'off' && process.getuid?.() === 0
      ? { dir: config.tray.userSockets, users: sessions.users }
      : undefined;
  const starting = startAgent({
    ...(userTrays ? { userTrays } : {}),
    ...(sessions ? { sessions } : {}),
    ...(config.software.control === 'off' ? {} : { software: softwareAdapters().softwareFor(platform, os, logger, config.software.control) }),
    config: { ...config, dataDir },
    fallbackPolicy: fallback,
    logger,
    platform,
    version: VERSION,
    trayPath,
    ...(usb ? { usb } : {}),
    ...(forgetToken ? { onEnrolled: forgetToken } : {}),
  });
  // Signals are ours from before the start (reading a large outbox takes seconds): a SIGTERM then waits for the
  // start and stops cleanly, instead of killing the agent, which the next start would report as tampering.
  // A service manager kills an agent that has not stopped within its timeout: stop well before (issue 12).
  const stopped = untilSignalled(
    async (signal) => {
      const agent = await starting.catch(() => undefined);
      await agent?.stop(signal);
      await os.close();
      await closeLogger(logger);
    },
    { exitWithinMs: AGENT_EXIT_WITHIN_MS },
  );
  await starting.catch((e: unknown) => {
    // The 'disconnect' listener would keep a failed agent alive under `invigilator start`.
    if (process.connected) process.disconnect();
    throw e;
  });
  return stopped;
}

function usbFor(platform: Platform, config: AgentConfig['usb'] & { control: 'enforce' | 'observe' }, logger: Logger, os: OsPlumbing) {
  const { usbPlatformFor } = usbAdapters();
  // Linux's arrivals come from udevadm monitor, restarted with a look at sysfs when it dies: node-usb's signal there
  // would repeat them, for a native module and libusb's thread (issue 14). Windows and macOS poll, so it is their signal.
  const hotplug = platform === 'linux' ? undefined : new (nodeUsbHotplug().NodeUsbHotplug)(logger);
  return { platform: usbPlatformFor(platform, config, logger, os), control: config.control, ...(hotplug ? { hotplug } : {}) };
}
