import { type ChildProcess, spawn } from 'node:child_process';

/** One udev event: the action, the sysfs path and the properties udev attached. */
export interface Uevent {
  action: string;
  devpath: string;
  subsystem: string;
  devtype?: string;
  devname?: string;
  properties: Map<string, string>;
}

const MAX_PENDING = 64 * 1024;
const MAX_PROPERTIES = 200;

/**
 * Parses the text `udevadm monitor --udev --property` prints: a header line
 * per event (`UDEV  [1234.56] add  /devices/... (usb)`), then KEY=value lines,
 * then a blank line. Fed in chunks as they arrive; lines that fit no event
 * (the banner) are ignored, and an oversized line is dropped, not buffered.
 */
export class UeventParser {
  private pending = '';
  private current: Map<string, string> | undefined;

  constructor(private readonly onEvent: (event: Uevent) => void) {}

  push(chunk: string): void {
    this.pending += chunk;
    if (this.pending.length > MAX_PENDING && !this.pending.includes('\n')) this.pending = '';
    let newline: number;
    while ((newline = this.pending.indexOf('\n')) >= 0) {
      const line = this.pending.slice(0, newline).replace(/\r$/, '');
      this.pending = this.pending.slice(newline + 1);
      this.line(line);
    }
  }

  /** The stream ended: an event without its closing blank line still counts. */
  end(): void {
    if (this.pending) this.line(this.pending);
    this.pending = '';
    this.line('');
  }

  private line(line: string): void {
    if (line === '') {
      const props = this.current;
      this.current = undefined;
      const action = props?.get('ACTION');
      const devpath = props?.get('DEVPATH');
      const subsystem = props?.get('SUBSYSTEM');
      if (!props || !action || !devpath || !subsystem) return;
      const devtype = props.get('DEVTYPE');
      const devname = props.get('DEVNAME');
      this.onEvent({ action, devpath, subsystem, ...(devtype ? { devtype } : {}), ...(devname ? { devname } : {}), properties: props });
      return;
    }
    if (/^(UDEV|KERNEL)\s*\[/.test(line)) {
      this.current = new Map();
      return;
    }
    const eq = line.indexOf('=');
    if (!this.current || eq <= 0 || this.current.size >= MAX_PROPERTIES) return;
    this.current.set(line.slice(0, eq), line.slice(eq + 1, eq + 1 + 4096));
  }
}

export interface UeventSource {
  start(onEvent: (event: Uevent) => void, onExit: (reason: string) => void): void;
  stop(): void;
}

/**
 * udev's own events through one long-lived `udevadm monitor`. It must start
 * after udevd is up: started earlier it silently sees only kernel events,
 * whose device nodes may not exist yet (found on the QEMU rig).
 */
export class UdevadmMonitor implements UeventSource {
  private child: ChildProcess | undefined;

  constructor(private readonly udevadm = 'udevadm') {}

  start(onEvent: (event: Uevent) => void, onExit: (reason: string) => void): void {
    const child = spawn(this.udevadm, ['monitor', '--udev', '--property', '--subsystem-match=usb', '--subsystem-match=block'], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    this.child = child;
    const parser = new UeventParser(onEvent);
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => parser.push(chunk));
    child.on('error', (e) => onExit(`udevadm could not start: ${e.message}`));
    child.on('exit', (code, signal) => {
      parser.end();
      if (this.child === child) onExit(`udevadm monitor exited (${code ?? signal})`);
    });
  }

  stop(): void {
    const child = this.child;
    this.child = undefined;
    child?.kill();
  }
}
