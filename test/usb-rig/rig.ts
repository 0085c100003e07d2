import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { buildGuest, missingBuildInputs } from './build-guest';
import { CommandChannel } from './channel';
import type { RunResult } from './channel';
import { createGadgetScript, removeGadgetScript } from './gadget';
import type { GadgetOptions } from './gadget';
import { Qmp } from './qmp';
import type { QmpEvent } from './qmp';

/**
 * A Linux guest under QEMU with a real USB bus, for tests that need the real
 * kernel, udev and sysfs. See /work/shared/notes/linux-usb-rig.md.
 */

export type { RunResult } from './channel';
export type { GadgetOptions } from './gadget';

export interface StartOptions {
  /** Host image files attached as virtio disks /dev/vda, /dev/vdb, ... (snapshot=on: the files never change). Gadget backing stores. */
  disks?: string[];
  memoryMb?: number;
  /** From QEMU's start to /init reporting ready (udev settled). */
  bootTimeoutMs?: number;
  /** Hard cap on the guest's whole life: QEMU is killed then, whatever the test is doing. */
  lifetimeMs?: number;
}

export interface Guest {
  /** Runs a shell script in the guest (dash; stdin /dev/null; stdout and stderr together, at most 1 MiB). Rejects on timeout. */
  run(command: string, timeoutMs?: number): Promise<RunResult>;
  /** Starts a background process in the guest; its output is appended to SPAWN_LOG there. */
  spawn(command: string): Promise<void>;
  /** Hot-plugs a QEMU usb-storage stick (46f4:0001) backed by a host image file (snapshot=on: the file never changes). */
  plug(id: string, image: string, options: { serial: string }): Promise<void>;
  /** Hot-unplugs a stick; resolves once QEMU reports it gone. */
  unplug(id: string): Promise<void>;
  /** Plugs a configfs gadget with any VID:PID on the guest's emulated UDC, backed by a guest disk. */
  gadget(id: string, options: GadgetOptions): Promise<void>;
  removeGadget(id: string): Promise<void>;
  /** Stops QEMU and removes its files. Safe to call twice. */
  close(): Promise<void>;
  /** The guest's serial console (kernel messages, /init's log), for diagnosing a failure. */
  readonly consoleLog: string;
}

/** Where spawn() output goes in the guest. */
export const SPAWN_LOG = '/tmp/spawn.log';

const QEMU = 'qemu-system-x86_64';
const HOST_COMMANDS = [QEMU, 'timeout', 'setpriv', 'apt-cache', 'apt-get', 'dpkg-deb', 'dpkg-query', 'depmod', 'modprobe', 'ldd', 'npm'];

/** Why the rig cannot run on this machine, or undefined when it can. */
export function rigUnavailable(): string | undefined {
  if (process.platform !== 'linux' || process.arch !== 'x64') return `the rig needs an x86-64 Linux host (this is ${process.platform}/${process.arch})`;
  const missing = HOST_COMMANDS.filter((c) => spawnSync('sh', ['-c', `command -v ${c}`]).status !== 0);
  if (missing.length) return `missing host commands: ${missing.join(', ')} (apt-get install qemu-system-x86 kmod; see .ci/run)`;
  const inputs = missingBuildInputs();
  if (inputs.length) return `missing inputs for the guest: ${inputs.join(', ')}`;
  return undefined;
}

/** Polls a guest command until `accept` likes its result. Bounded by timeoutMs. */
export async function waitFor(guest: Guest, command: string, accept: (result: RunResult) => boolean, timeoutMs = 15_000, intervalMs = 200): Promise<RunResult> {
  const deadline = Date.now() + timeoutMs;
  let last: RunResult = { code: -1, output: '' };
  while (Date.now() < deadline) {
    last = await guest.run(command, Math.max(5_000, deadline - Date.now()));
    if (accept(last)) return last;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting on: ${command}\nlast (exit ${last.code}):\n${last.output}`);
}

export async function startGuest(options: StartOptions = {}): Promise<Guest> {
  const unavailable = rigUnavailable();
  if (unavailable) throw new Error(`the USB rig cannot run here: ${unavailable}`);
  const disks = options.disks ?? [];
  for (const d of disks) if (!isAbsolute(d) || !existsSync(d)) throw new Error(`disk image must be an existing absolute path: ${d}`);

  const build = buildGuest((m) => process.stderr.write(`usb-rig: ${m}\n`));
  const dir = mkdtempSync(join(tmpdir(), 'invigilator-rig-'));
  const vm = new Vm(dir);
  try {
    await vm.boot(build.kernel, build.initramfs, disks, options);
    return new QemuGuest(vm);
  } catch (e) {
    await vm.stop();
    throw e;
  }
}

/** QEMU itself: its process, its sockets and its files. */
class Vm {
  readonly consoleLog: string;
  qmp: Qmp | undefined;
  channel: CommandChannel | undefined;
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private stderr = '';
  private readonly servers: Server[] = [];
  private readonly killOnExit = (): void => {
    this.child?.kill('SIGKILL');
  };

  constructor(readonly dir: string) {
    this.consoleLog = join(dir, 'console.log');
  }

  async boot(kernel: string, initramfs: string, disks: string[], options: StartOptions): Promise<void> {
    const bootTimeoutMs = options.bootTimeoutMs ?? 120_000;
    // QEMU connects to these as a client at start-up, before the guest runs a
    // single instruction: nothing the guest writes can be lost for want of a
    // listener (a QEMU socket server drops output while no client is connected).
    const qmpSocket = this.accept(join(this.dir, 'qmp.sock'), bootTimeoutMs);
    const cmdSocket = this.accept(join(this.dir, 'cmd.sock'), bootTimeoutMs);
    await Promise.all([qmpSocket.listening, cmdSocket.listening]);

    const args = qemuArgs(this.dir, kernel, initramfs, disks, options.memoryMb ?? 1024);
    const lifetimeS = Math.ceil((options.lifetimeMs ?? 30 * 60_000) / 1000);
    // Hard limits: timeout(1) ends QEMU after its lifetime whatever happens, and
    // parent-death signals end timeout and QEMU if this Node process dies first.
    const child = spawn(
      'setpriv',
      ['--pdeathsig', 'TERM', '--', 'timeout', '--kill-after=10', String(lifetimeS), 'setpriv', '--pdeathsig', 'KILL', '--', QEMU, ...args],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    this.child = child;
    process.on('exit', this.killOnExit);
    const keep = (chunk: Buffer): void => {
      this.stderr = (this.stderr + chunk.toString()).slice(-8192);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    let exitReason: string | undefined;
    this.exited = new Promise<void>((resolve) => {
      child.on('exit', (code, signal) => {
        exitReason = `QEMU exited (${signal ?? `code ${code}`})`;
        process.removeListener('exit', this.killOnExit);
        resolve();
      });
    });
    const died = this.exited.then(() => {
      throw new Error(exitReason);
    });
    died.catch(() => undefined);

    const booted = (async () => {
      const [qmp, cmd] = await Promise.all([qmpSocket.connection, cmdSocket.connection]);
      this.qmp = await Qmp.open(qmp, 30_000);
      this.channel = new CommandChannel(cmd);
      await this.channel.ready(bootTimeoutMs);
    })();
    try {
      await Promise.race([booted, died]);
    } catch (e) {
      throw new Error(`${(e as Error).message}\n${this.diagnostics()}`);
    }
  }

  /** The tail of the console and of QEMU's own output, to put in an error. */
  diagnostics(): string {
    const console = existsSync(this.consoleLog) ? readFileSync(this.consoleLog, 'utf8').slice(-4000) : '(no console output)';
    return `--- guest console (tail) ---\n${console}\n--- QEMU output ---\n${this.stderr}`;
  }

  async stop(): Promise<void> {
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) {
      await this.qmp?.execute('quit', {}, 3_000).catch(() => undefined);
      if (!(await settles(this.exited, 5_000))) {
        // SIGTERM reaches timeout(1), which passes it on to QEMU.
        this.child.kill('SIGTERM');
        if (!(await settles(this.exited, 5_000))) {
          // timeout(1) dies; QEMU's parent-death signal (KILL) ends QEMU.
          this.child.kill('SIGKILL');
          await settles(this.exited, 5_000);
        }
      }
    }
    process.removeListener('exit', this.killOnExit);
    this.qmp?.close();
    this.channel?.close();
    for (const s of this.servers) s.close();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** A unix socket server that takes exactly one connection (QEMU's). */
  private accept(path: string, timeoutMs: number): { listening: Promise<void>; connection: Promise<Socket> } {
    const server = createServer();
    this.servers.push(server);
    const connection = new Promise<Socket>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`QEMU did not connect to ${path}`)), timeoutMs);
      server.once('connection', (socket) => {
        clearTimeout(timer);
        server.close();
        resolve(socket);
      });
    });
    connection.catch(() => undefined);
    const listening = new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => resolve());
    });
    return { listening, connection };
  }
}

function qemuArgs(dir: string, kernel: string, initramfs: string, disks: string[], memoryMb: number): string[] {
  const args = [
    // No KVM: /dev/kvm here cannot run a stock kernel (see the notes). TCG is fast enough.
    ...['-accel', 'tcg', '-smp', '2', '-m', String(memoryMb)],
    ...['-nodefaults', '-nographic', '-no-reboot', '-no-user-config'],
    ...['-kernel', kernel, '-initrd', initramfs],
    // delay_use=0: a stick's disk appears 0.6 s after the plug rather than 1.6 s.
    ...['-append', 'console=ttyS0 panic=-1 quiet rdinit=/init usb_storage.delay_use=0'],
    ...['-chardev', `file,id=console,path=${qemuPath(join(dir, 'console.log'))}`, '-serial', 'chardev:console'],
    ...['-chardev', `socket,id=qmp,path=${qemuPath(join(dir, 'qmp.sock'))}`, '-mon', 'chardev=qmp,mode=control'],
    // The command channel is virtio-serial, not a second UART: under emulation a UART delivers input late.
    ...['-device', 'virtio-serial-pci,id=vser'],
    ...['-chardev', `socket,id=cmd,path=${qemuPath(join(dir, 'cmd.sock'))}`, '-device', 'virtserialport,bus=vser.0,chardev=cmd,name=invigilator.cmd'],
    ...['-device', 'qemu-xhci,id=xhci'],
  ];
  for (const d of disks) args.push('-drive', `file=${qemuPath(d)},if=virtio,format=raw,snapshot=on`);
  return args;
}

/** QEMU option values escape a comma by doubling it. */
function qemuPath(path: string): string {
  return path.replace(/,/g, ',,');
}

async function settles(p: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  const result = await Promise.race([p.then(() => true), timeout]);
  clearTimeout(timer);
  return result;
}

/** The Guest API over a booted Vm. */
class QemuGuest implements Guest {
  private spawned = 0;
  private plugs = 0;
  private readonly drives = new Map<string, string>();
  private closing: Promise<void> | undefined;

  constructor(private readonly vm: Vm) {}

  get consoleLog(): string {
    return this.vm.consoleLog;
  }

  async run(command: string, timeoutMs = 60_000): Promise<RunResult> {
    return this.channel().run(command, timeoutMs);
  }

  async spawn(command: string): Promise<void> {
    const n = ++this.spawned;
    const script = `/run/rig/spawn-${n}.sh`;
    // The command travels as base64 and runs from a file: no quoting to get wrong.
    const result = await this.run(
      [
        `printf '%s' ${Buffer.from(command).toString('base64')} | base64 -d > ${script}`,
        `echo "== spawn ${n} at $(date +%T): see ${script}" >> ${SPAWN_LOG}`,
        `setsid /bin/sh ${script} </dev/null >>${SPAWN_LOG} 2>&1 &`,
      ].join('\n'),
      15_000,
    );
    if (result.code !== 0) throw new Error(`spawn failed (exit ${result.code}): ${result.output}`);
  }

  async plug(id: string, image: string, options: { serial: string }): Promise<void> {
    checkQemuId(id);
    if (!isAbsolute(image) || !existsSync(image)) throw new Error(`image must be an existing absolute path: ${image}`);
    // The human monitor splits its arguments on spaces and cannot quote them.
    if (/\s/.test(image)) throw new Error(`image path cannot contain white space (QEMU monitor limit): ${image}`);
    const drive = `rigdrv${++this.plugs}`;
    const out = await this.qmp().human(`drive_add 0 if=none,id=${drive},file=${qemuPath(image)},format=raw,snapshot=on`);
    if (!/OK/.test(out)) throw new Error(`drive_add for ${id} failed: ${out.trim()}`);
    try {
      await this.qmp().execute('device_add', { driver: 'usb-storage', bus: 'xhci.0', drive, id, serial: options.serial, removable: true });
    } catch (e) {
      await this.qmp()
        .human(`drive_del ${drive}`)
        .catch(() => undefined);
      throw e;
    }
    this.drives.set(id, drive);
  }

  async unplug(id: string): Promise<void> {
    checkQemuId(id);
    const qmp = this.qmp();
    const gone = (e: QmpEvent): boolean => e.event === 'DEVICE_DELETED' && e.data?.device === id;
    qmp.forgetEvents(gone);
    await qmp.execute('device_del', { id });
    if (!(await qmp.waitForEvent(gone, 15_000))) throw new Error(`QEMU did not report ${id} removed within 15 s`);
    const drive = this.drives.get(id);
    this.drives.delete(id);
    // Usually deleted with its device; an explicit drive_del covers the case where it was not.
    if (drive) await qmp.human(`drive_del ${drive}`).catch(() => undefined);
  }

  async gadget(id: string, options: GadgetOptions): Promise<void> {
    const result = await this.run(createGadgetScript(id, options), 30_000);
    if (result.code !== 0) {
      await this.run(removeGadgetScript(id), 30_000).catch(() => undefined);
      throw new Error(`gadget ${id} failed (exit ${result.code}): ${result.output}`);
    }
  }

  async removeGadget(id: string): Promise<void> {
    const result = await this.run(removeGadgetScript(id), 30_000);
    if (result.code !== 0) throw new Error(`removing gadget ${id} failed (exit ${result.code}): ${result.output}`);
  }

  close(): Promise<void> {
    this.closing ??= this.vm.stop();
    return this.closing;
  }

  private channel(): CommandChannel {
    if (!this.vm.channel || this.closing) throw new Error('the guest is closed');
    return this.vm.channel;
  }

  private qmp(): Qmp {
    if (!this.vm.qmp || this.closing) throw new Error('the guest is closed');
    return this.vm.qmp;
  }
}

/** QEMU device ids start with a letter and hold letters, digits, '-', '.', '_'. */
function checkQemuId(id: string): void {
  if (!/^[A-Za-z][A-Za-z0-9._-]{0,31}$/.test(id)) throw new Error(`device id must start with a letter and be at most 32 of [A-Za-z0-9._-]: ${id}`);
}
