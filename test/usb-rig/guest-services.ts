import { shellQuote } from './gadget';
import { SPAWN_LOG, waitFor } from './rig';
import type { Guest, RunResult } from './rig';

/**
 * The project's own services inside the rig guest, for the scenario tests and
 * the usb-rig benchmark: a collector and an agent started from the built CLI,
 * the collector's HTTP API asked from inside the guest (the guest has no
 * network device; loopback works), a tray client on the agent's socket, and
 * what sysfs, udev and /proc/mounts say about a stick.
 */

/** The built CLI, as bin/invigilator.js runs it (the payload has dist/ but not bin/). */
const CLI = '/run/rig/invigilator.js';
const CLI_SOURCE = `require('/invigilator/dist/cli/main.js').main(process.argv.slice(2)).then(
  (c) => { process.exitCode = c; },
  (e) => { process.stderr.write('INV_ERR_INTERNAL: ' + (e && e.stack ? e.stack : e) + '\\n'); process.exitCode = 3; });
`;

/**
 * A tray client: says hello, logs every line the agent sends to OUT, and
 * answers every notice of KIND that offers ask-permission with that action
 * and REASON (not only the first: on a busy machine the hello may replay a
 * notice whose stick is already gone, and answering only that one would ask
 * for nothing). Runs until killed.
 */
const TRAY_CLIENT = '/run/rig/tray-client.js';
const TRAY_CLIENT_SOURCE = `'use strict';
const net = require('node:net');
const fs = require('node:fs');
const [socketPath, out, kind, reason] = process.argv.slice(2);
const log = (line) => fs.appendFileSync(out, line + '\\n');
const c = net.connect(socketPath, () => {
  c.write(JSON.stringify({ v: 1, type: 'tray.hello', trayVersion: '1' }) + '\\n');
  log('CONNECTED');
});
let pending = '';
const answered = new Set();
c.setEncoding('utf8');
c.on('data', (chunk) => {
  pending += chunk;
  let i;
  while ((i = pending.indexOf('\\n')) >= 0) {
    const line = pending.slice(0, i);
    pending = pending.slice(i + 1);
    log(line);
    let m;
    try { m = JSON.parse(line); } catch { continue; }
    if (kind && m.type === 'tray.notice' && m.kind === kind && Array.isArray(m.actions) && m.actions.includes('ask-permission') && !answered.has(m.noticeId)) {
      answered.add(m.noticeId);
      c.write(JSON.stringify({ v: 1, type: 'tray.answer', noticeId: m.noticeId, action: 'ask-permission', text: reason }) + '\\n');
      log('ANSWERED ' + m.noticeId);
    }
  }
});
c.on('error', (e) => log('ERROR ' + e.message));
c.on('close', () => { log('CLOSED'); process.exit(0); });
`;

/** Writes a file in the guest (the contents travel as base64: no quoting to get wrong). */
export async function writeGuestFile(guest: Guest, path: string, contents: string, mode = '0644'): Promise<void> {
  const b64 = Buffer.from(contents).toString('base64');
  const r = await guest.run(
    `mkdir -p "$(dirname ${shellQuote(path)})" && printf '%s' ${b64} | base64 -d > ${shellQuote(path)} && chmod ${mode} ${shellQuote(path)}`,
  );
  if (r.code !== 0) throw new Error(`writing ${path} in the guest failed: ${r.output}`);
}

/** Puts the CLI wrapper and the tray client into the guest. Call once per boot. */
export async function installGuestTools(guest: Guest): Promise<void> {
  await writeGuestFile(guest, CLI, CLI_SOURCE);
  await writeGuestFile(guest, TRAY_CLIENT, TRAY_CLIENT_SOURCE);
}

/** Writes a policy (a JSON object) into the guest and returns its path, for --policy and INVIGILATOR_POLICY. */
export async function writePolicy(guest: Guest, path: string, policy: unknown): Promise<string> {
  await writeGuestFile(guest, path, JSON.stringify(policy, null, 2));
  return path;
}

/** A background process in the guest whose pid is kept in a file. */
async function spawnWithPid(guest: Guest, pidFile: string, script: string): Promise<void> {
  await guest.spawn(`mkdir -p "$(dirname ${shellQuote(pidFile)})"\necho $$ > ${shellQuote(pidFile)}\n${script}`);
}

/** Sends a signal to a process started by spawnWithPid; resolves once it has exited (bounded). */
async function stopByPidFile(guest: Guest, pidFile: string, signal: 'TERM' | 'KILL', timeoutMs = 20_000): Promise<void> {
  const pid = (await guest.run(`cat ${shellQuote(pidFile)} 2>/dev/null`)).output.trim();
  if (!/^\d+$/.test(pid)) return;
  await guest.run(`kill -${signal} ${pid} 2>/dev/null; true`);
  await waitFor(guest, `kill -0 ${pid} 2>/dev/null && echo alive || echo gone`, (r) => r.output.trim() === 'gone', timeoutMs, 100);
  await guest.run(`rm -f ${shellQuote(pidFile)}`);
}

export interface Collector {
  dir: string;
  port: number;
  url: string;
  adminToken: string;
  enrollmentToken: string;
}

/** Starts a collector in the guest (SQLite in DIR) and waits for /health and its token files. */
export async function startCollector(guest: Guest, options: { dir: string; port: number; policy: string }): Promise<Collector> {
  const { dir, port, policy } = options;
  await spawnWithPid(
    guest,
    `${dir}.pid`,
    `mkdir -p ${shellQuote(dir)}\nexport INVIGILATOR_ENROLLMENT_APPROVAL=automatic\nexec node ${CLI} collector --db sqlite:${shellQuote(`${dir}/collector.sqlite`)} --data-dir ${shellQuote(dir)} --policy ${shellQuote(policy)} --port ${port} --host 127.0.0.1`,
  );
  const url = `http://127.0.0.1:${port}`;
  await waitFor(
    guest,
    `wget -q -O - ${url}/health && test -s ${shellQuote(`${dir}/admin-token`)} && test -s ${shellQuote(`${dir}/enrollment-token`)}`,
    (r) => r.code === 0,
    60_000,
    250,
  ).catch(async (e: unknown) => {
    throw new Error(`${(e as Error).message}\n--- ${SPAWN_LOG} ---\n${(await guest.run(`tail -n 40 ${SPAWN_LOG}`)).output}`);
  });
  const tokens = await guest.run(`cat ${shellQuote(`${dir}/admin-token`)} ${shellQuote(`${dir}/enrollment-token`)}`);
  const [adminToken, enrollmentToken] = tokens.output.trim().split('\n');
  if (!adminToken || !enrollmentToken) throw new Error(`collector tokens unreadable: ${tokens.output}`);
  return { dir, port, url, adminToken, enrollmentToken };
}

export async function stopCollector(guest: Guest, collector: Collector): Promise<void> {
  await stopByPidFile(guest, `${collector.dir}.pid`, 'TERM');
}

export interface Agent {
  dir: string;
  policy: string;
  collector: Collector;
}

/** How many times the agent has logged "agent started" (its log survives restarts). */
async function agentStarts(guest: Guest, dir: string): Promise<number> {
  const r = await guest.run(`grep -c 'agent started' ${shellQuote(`${dir}/logs/agent.log`)} 2>/dev/null; true`);
  return Number(r.output.trim()) || 0;
}

/**
 * Starts (or restarts) an agent in the guest, enforcing USB control, with POLICY
 * as its fallback (so it enforces the collector's policy from its first second,
 * before any push), and waits until it has started: USB control is up and the
 * tray socket listens.
 */
export async function startAgent(guest: Guest, agent: Agent): Promise<void> {
  const { dir, policy, collector } = agent;
  const before = await agentStarts(guest, dir);
  await spawnWithPid(
    guest,
    `${dir}.pid`,
    [
      `mkdir -p ${shellQuote(dir)}`,
      `export INVIGILATOR_POLICY=${shellQuote(policy)}`,
      `exec node ${CLI} agent --collector ws://127.0.0.1:${collector.port}/agent --data-dir ${shellQuote(dir)} --enrollment-token ${shellQuote(collector.enrollmentToken)} --usb-control enforce`,
    ].join('\n'),
  );
  try {
    await waitFor(
      guest,
      `grep -c 'agent started' ${shellQuote(`${dir}/logs/agent.log`)} 2>/dev/null; true`,
      (r) => Number(r.output.trim()) > before,
      60_000,
      250,
    );
    await waitFor(guest, `test -S ${shellQuote(`${dir}/tray.sock`)}`, (r) => r.code === 0, 10_000, 100);
  } catch (e) {
    throw new Error(`${(e as Error).message}\n${await agentDiagnostics(guest, agent)}`);
  }
}

/** SIGTERM: a clean stop (the root hubs get authorized_default back). SIGKILL: a crash. */
export async function stopAgent(guest: Guest, agent: Agent, signal: 'TERM' | 'KILL' = 'TERM'): Promise<void> {
  await stopByPidFile(guest, `${agent.dir}.pid`, signal);
}

/** The enrolled device id of the agent, once the collector lists it. */
export async function deviceIdOf(guest: Guest, collector: Collector, timeoutMs = 30_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const body = await apiGet<{ devices: Array<{ id: string; online: boolean }> }>(guest, collector, '/api/devices').catch(() => undefined);
    const online = body?.devices.find((d) => d.online);
    if (online) return online.id;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`no device came online at the collector within ${timeoutMs} ms`);
}

/** GET from the collector's HTTP API, from inside the guest, with the admin token. */
export async function apiGet<T>(guest: Guest, collector: Collector, path: string): Promise<T> {
  const r = await guest.run(`wget -q -O - --header ${shellQuote(`Authorization: Bearer ${collector.adminToken}`)} ${shellQuote(collector.url + path)}`);
  if (r.code !== 0) throw new Error(`GET ${path} failed in the guest (exit ${r.code}): ${r.output}`);
  return JSON.parse(r.output) as T;
}

/** POST JSON to the collector's HTTP API from inside the guest with Node's fetch: status and body, whatever the status. */
export async function apiPost(guest: Guest, collector: Collector, path: string, body: unknown): Promise<{ status: number; body: unknown }> {
  const script = `fetch(${JSON.stringify(collector.url + path)}, { method: 'POST', headers: { authorization: 'Bearer ' + ${JSON.stringify(collector.adminToken)}, 'content-type': 'application/json' }, body: ${JSON.stringify(JSON.stringify(body))} }).then(async (r) => console.log(JSON.stringify({ status: r.status, body: await r.json().catch(() => null) })), (e) => { console.log(JSON.stringify({ status: 0, body: String(e) })); })`;
  await writeGuestFile(guest, '/run/rig/post.js', script);
  const r = await guest.run('node /run/rig/post.js', 60_000);
  const line = r.output.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as { status: number; body: unknown };
  } catch {
    throw new Error(`POST ${path} from the guest gave no answer (exit ${r.code}): ${r.output}`);
  }
}

/** An event envelope as GET /api/events returns it (only what the tests look at). */
export interface StoredEvent {
  type: string;
  deviceId: string;
  seq: number;
  severity: string;
  data: {
    device?: { serial?: string; vendorId?: string; productId?: string; interfaceClasses?: number[] };
    reason?: string;
    scheme?: string;
    allowlisted?: boolean;
    exception?: { kind: string; id: string };
    requestId?: string;
    decision?: string;
    [key: string]: unknown;
  };
  clause?: { id: string };
}

/** Every event of a type at the collector (up to 1000). */
export async function events(guest: Guest, collector: Collector, type: string): Promise<StoredEvent[]> {
  const body = await apiGet<{ events: StoredEvent[] }>(guest, collector, `/api/events?type=${encodeURIComponent(type)}&limit=1000`);
  return body.events;
}

/** Waits for an event of TYPE about the device with SERIAL to reach the collector. */
export async function waitForEvent(guest: Guest, collector: Collector, type: string, serial: string, timeoutMs = 20_000): Promise<StoredEvent> {
  const deadline = Date.now() + timeoutMs;
  let seen: StoredEvent[] = [];
  while (Date.now() < deadline) {
    seen = await events(guest, collector, type);
    const found = seen.find((e) => e.data.device?.serial === serial);
    if (found) return found;
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(
    `no ${type} event for serial ${serial} reached the collector within ${timeoutMs} ms; ${type} events seen: ${JSON.stringify(seen.map((e) => e.data))}`,
  );
}

/** Starts a tray client in the guest that logs to OUT and answers the first notice of KIND with ask-permission. */
export async function startTrayClient(guest: Guest, agent: Agent, out: string, answer?: { kind: string; reason: string }): Promise<void> {
  const args = [`${agent.dir}/tray.sock`, out, answer?.kind ?? '', answer?.reason ?? ''].map(shellQuote).join(' ');
  await spawnWithPid(guest, `${out}.pid`, `exec node ${TRAY_CLIENT} ${args}`);
}

export async function stopTrayClient(guest: Guest, out: string): Promise<void> {
  await stopByPidFile(guest, `${out}.pid`, 'TERM');
}

/** The lines a tray client logged, parsed where they are JSON. */
export async function trayLines(guest: Guest, out: string): Promise<Array<Record<string, unknown> | string>> {
  const r = await guest.run(`cat ${shellQuote(out)} 2>/dev/null; true`);
  return r.output
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        return l;
      }
    });
}

export interface UsbState {
  /** The kernel's name for it, e.g. 2-1. */
  name: string;
  authorized: string;
  vidpid: string;
  /** Whole disks and partitions under it, e.g. ["sda", "sda1"]. */
  blocks: string[];
}

/** What sysfs says about the USB device with this serial, or undefined when none is attached. */
export async function usbState(guest: Guest, serial: string): Promise<UsbState | undefined> {
  const script = [
    'for d in /sys/bus/usb/devices/*; do',
    '  [ -r "$d/serial" ] || continue',
    `  [ "$(cat "$d/serial")" = ${shellQuote(serial)} ] || continue`,
    '  n=$(basename "$d")',
    '  b=',
    '  for k in "$d"/*/host*/target*/*/block/*; do',
    '    [ -e "$k" ] || continue',
    '    b="$b $(basename "$k")"',
    '    for p in "$k"/*/partition; do [ -e "$p" ] && b="$b $(basename "$(dirname "$p")")"; done',
    '  done',
    '  echo "$n|$(cat "$d/authorized")|$(cat "$d/idVendor"):$(cat "$d/idProduct")|$b"',
    'done; true',
  ].join('\n');
  const line = (await guest.run(script)).output.trim().split('\n')[0];
  if (!line) return undefined;
  const [name = '', authorized = '', vidpid = '', blocks = ''] = line.split('|');
  return { name, authorized, vidpid, blocks: blocks.split(' ').filter((b) => /^[a-z]+\d*$/.test(b)) };
}

/** Waits until the device with this serial is attached and `accept` likes what sysfs says. */
export async function waitForUsb(guest: Guest, serial: string, accept: (s: UsbState) => boolean, timeoutMs = 20_000): Promise<UsbState> {
  const deadline = Date.now() + timeoutMs;
  let last: UsbState | undefined;
  while (Date.now() < deadline) {
    last = await usbState(guest, serial);
    if (last && accept(last)) return last;
    await new Promise((r) => setTimeout(r, 150));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting on USB device ${serial}; last seen: ${JSON.stringify(last) ?? 'not attached'}`);
}

/** Root hubs' authorized_default values, e.g. { usb1: '0', usb2: '0' }. */
export async function authorizedDefaults(guest: Guest): Promise<Record<string, string>> {
  const r = await guest.run('for h in /sys/bus/usb/devices/usb*; do echo "$(basename $h) $(cat $h/authorized_default)"; done');
  return Object.fromEntries(
    r.output
      .trim()
      .split('\n')
      .map((l) => l.split(' ') as [string, string]),
  );
}

/** udev's properties for a block device, or '' when it is gone. */
export async function udevProperties(guest: Guest, block: string): Promise<string> {
  return (await guest.run(`udevadm info --query=property --name=/dev/${block} 2>/dev/null; true`)).output;
}

/**
 * A guest-side watch on /proc/mounts: every 50 ms it records any line whose
 * source is a SCSI disk or a device-mapper device (the guest's own root is a
 * tmpfs, so any such line is a stick being mounted) and counts its rounds.
 */
export async function startMountWatch(guest: Guest, name: string): Promise<void> {
  const base = `/run/rig/mounts-${name}`;
  await guest.run(`rm -f ${base}.log ${base}.count`);
  await spawnWithPid(
    guest,
    `${base}.pid`,
    [
      'n=0',
      'while :; do',
      '  n=$((n + 1))',
      `  grep -E '^/dev/(sd|dm-|mapper/)' /proc/mounts >> ${base}.log`,
      `  echo $n > ${base}.count`,
      '  sleep 0.05',
      'done',
    ].join('\n'),
  );
  await waitFor(guest, `cat ${base}.count 2>/dev/null`, (r) => Number(r.output.trim()) > 0, 10_000, 100);
}

/** Stops the watch; returns the mount lines it saw and how many rounds it made. */
export async function stopMountWatch(guest: Guest, name: string): Promise<{ mounts: string[]; rounds: number }> {
  const base = `/run/rig/mounts-${name}`;
  await stopByPidFile(guest, `${base}.pid`, 'TERM');
  const r = await guest.run(`cat ${base}.log 2>/dev/null; echo "rounds $(cat ${base}.count)"`);
  const lines = r.output.trim().split('\n');
  const rounds = Number(/^rounds (\d+)$/.exec(lines.pop() ?? '')?.[1] ?? 0);
  return { mounts: lines.filter((l) => l !== ''), rounds };
}

/** `udevadm monitor` in the background, writing udev's (and optionally the kernel's) events with properties to a file. */
export async function startUdevMonitor(guest: Guest, name: string, options: { kernel?: boolean; subsystems?: string[] } = {}): Promise<string> {
  const log = `/run/rig/udev-${name}.log`;
  const filters = (options.subsystems ?? []).map((s) => `--subsystem-match=${shellQuote(s)}`).join(' ');
  await guest.run(`rm -f ${log}`);
  await spawnWithPid(guest, `${log}.pid`, `exec udevadm monitor --udev ${options.kernel ? '--kernel' : ''} --property ${filters} > ${log} 2>&1`);
  // The banner is printed once its sockets are bound: events from then on are seen.
  await waitFor(guest, `cat ${log} 2>/dev/null`, (r) => r.output.includes('received events'), 10_000, 100);
  return log;
}

export async function stopUdevMonitor(guest: Guest, name: string): Promise<string> {
  const log = `/run/rig/udev-${name}.log`;
  await stopByPidFile(guest, `${log}.pid`, 'TERM');
  return (await guest.run(`cat ${log}`)).output;
}

export interface MonitoredEvent {
  source: 'UDEV' | 'KERNEL';
  /** udevadm's monotonic timestamp, in ms. */
  atMs: number;
  action: string;
  devpath: string;
  subsystem: string;
  properties: Record<string, string>;
}

/** Parses `udevadm monitor --property` output. */
export function parseMonitor(text: string): MonitoredEvent[] {
  const out: MonitoredEvent[] = [];
  let current: MonitoredEvent | undefined;
  for (const line of text.split('\n')) {
    const header = /^(UDEV|KERNEL)\s*\[(\d+\.\d+)\]\s+(\S+)\s+(\S+)\s+\(([^)]*)\)/.exec(line);
    if (header) {
      current = {
        source: header[1] as 'UDEV' | 'KERNEL',
        atMs: Number(header[2]) * 1000,
        action: header[3]!,
        devpath: header[4]!,
        subsystem: header[5]!,
        properties: {},
      };
      out.push(current);
      continue;
    }
    if (line.trim() === '') {
      current = undefined;
      continue;
    }
    const eq = line.indexOf('=');
    if (current && eq > 0) current.properties[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return out;
}

/** Everything worth reading when a scenario fails: sysfs, udev, the spawn log and the agent's own log. */
export async function agentDiagnostics(guest: Guest, agent: Agent, serial?: string): Promise<string> {
  const parts: Array<[string, string]> = [
    [
      'usb devices (name authorized vid:pid serial)',
      'for d in /sys/bus/usb/devices/*; do [ -r $d/idVendor ] && echo "$(basename $d) $(cat $d/authorized) $(cat $d/idVendor):$(cat $d/idProduct) $(cat $d/serial 2>/dev/null)"; done; true',
    ],
    ['authorized_default', 'grep . /sys/bus/usb/devices/usb*/authorized_default'],
    ['lsblk', 'lsblk -o NAME,SERIAL,TRAN,FSTYPE,MOUNTPOINT 2>&1'],
    ['allow markers', 'ls -la /run/invigilator/usb-allowed 2>&1'],
    [
      'udev of sd*',
      'for b in /sys/class/block/sd*; do [ -e "$b" ] || continue; echo "## $(basename $b)"; udevadm info --query=property --name=/dev/$(basename $b) | grep -E "^(ID_SERIAL_SHORT|ID_FS_TYPE|ID_FS_USAGE|UDISKS_)"; done; true',
    ],
    ['/proc/mounts (sd, dm)', "grep -E '^/dev/(sd|dm-|mapper/)' /proc/mounts; true"],
    [SPAWN_LOG, `tail -n 60 ${SPAWN_LOG}`],
    [`${agent.dir}/logs/agent.log`, `tail -n 60 ${shellQuote(`${agent.dir}/logs/agent.log`)}`],
  ];
  if (serial) parts.unshift([`device ${serial}`, `grep -l ${shellQuote(serial)} /sys/bus/usb/devices/*/serial 2>/dev/null; true`]);
  const sections: string[] = [];
  for (const [title, command] of parts) {
    const r: RunResult = await guest.run(command, 20_000).catch((e: unknown) => ({ code: -1, output: String(e) }));
    sections.push(`--- ${title} ---\n${r.output.trimEnd()}`);
  }
  return sections.join('\n');
}
