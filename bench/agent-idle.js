'use strict';
/**
 * The agent idle, next to a bare `node` process started at the same time
 * (issue 14). Two agents run side by side against one collector:
 *
 * - full: the default policy, every capability on in observe mode (as
 *   `npm start` runs it: USB, sessions, software), with a signed-in desktop
 *   user and that user's tray connected to its per-user socket, saying hello
 *   and reporting idle time every 30 s as the real tray does.
 * - minimal: USB, sessions and software off; a tray on the root socket.
 *
 * The window starts once both trays have a status saying the agent is
 * connected to the collector, and lasts INVIGILATOR_BENCH_IDLE_SECONDS
 * (default 300; shorten it to iterate). Figures:
 *
 * - ratio, ratioMinimal: each agent's resident memory at the end over the
 *   bare node's. Goals: <= 1.35 and <= 1.15.
 * - cpuPercent: the full agent's CPU over the window, one core = 100,
 *   counting the programs it runs (reaped ones and those still alive, such as
 *   `udevadm monitor`). Goal: <= 0.5.
 *
 * logind is not running here, so the full agent runs in a mount namespace of
 * its own (`unshare -m`, root) whose /run/systemd/sessions is a tmpfs with one
 * session file in it: the agent sees a desktop user, and nothing on the
 * machine changes. Without unshare or root it prints why and exits 0 with no
 * result, as usb-rig does without QEMU.
 *
 * For investigation only: INVIGILATOR_BENCH_AGENT_FLAGS adds node flags to
 * both agents (e.g. `--max-semi-space-size=1`, `-r bench/idle-probe.js`);
 * INVIGILATOR_BENCH_HEAP_SNAPSHOT_DIR writes a heap snapshot of each agent
 * there at the end, after the memory is read; INVIGILATOR_BENCH_FULL_CONFIG
 * (JSON) replaces top-level settings of the full agent's configuration, to
 * turn one capability off at a time; INVIGILATOR_BENCH_EMPTY_OPT=1 gives the
 * full agent an empty /opt (this machine's holds thousands of entries the
 * file watch watches). A run with any of them writes its
 * result as agent-idle-probe.json, so the committed figures stay the plain ones.
 */
const { execFileSync, spawn, spawnSync } = require('node:child_process');
const { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } = require('node:fs');
const { once } = require('node:events');
const { connect, createServer } = require('node:net');
const { join } = require('node:path');
const { ROOT, sleep, tempDir, writeResult } = require('./lib');
const { startCollector } = require('./sim-agents');

const IDLE_SECONDS = Number(process.env.INVIGILATOR_BENCH_IDLE_SECONDS || 300);
const AGENT_FLAGS = (process.env.INVIGILATOR_BENCH_AGENT_FLAGS || '').split(/\s+/).filter(Boolean);
const SNAPSHOT_DIR = process.env.INVIGILATOR_BENCH_HEAP_SNAPSHOT_DIR || '';
const FULL_OVERRIDES = JSON.parse(process.env.INVIGILATOR_BENCH_FULL_CONFIG || '{}');
const EMPTY_OPT = process.env.INVIGILATOR_BENCH_EMPTY_OPT === '1';
const GOAL = { ratio: 1.35, cpuPercent: 0.5, ratioMinimal: 1.15 };
/** How long the agents may take to start, enroll and tell their trays they are connected. */
const READY_WITHIN_MS = 60_000;
/** The real tray reports idle time every 30 s (tray-ui/main/tray-app.ts). */
const TRAY_IDLE_EVERY_MS = 30_000;
const SAMPLE_EVERY_MS = 10_000;
const SESSION_ID = '3';

function unavailable() {
  if (process.platform !== 'linux') return 'the idle bench runs the agent as on a Linux lab PC';
  if (process.getuid() !== 0) return 'the idle bench needs root: per-user tray sockets are opened by root';
  const probe = spawnSync('unshare', ['-m', '--propagation', 'private', 'true'], { stdio: 'ignore' });
  if (probe.status !== 0) return 'unshare -m is not available, so no desktop session can be shown to the agent';
  if (!existsSync('/run/systemd/sessions') && !existsSync('/run/systemd')) return 'no /run/systemd to lay a session folder over';
  return undefined;
}

/** A person who can sign in here: the first ordinary account in /etc/passwd, so `getent` finds a home as at a school. */
function desktopUser() {
  for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const [name, , uid] = line.split(':');
    if (Number(uid) >= 1000 && Number(uid) < 65534) return { name, uid: Number(uid) };
  }
  return { name: 'amy', uid: 1000 };
}

function freePort() {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

const clockTicks = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** utime, stime, cutime, cstime and the parent of a process, from /proc/PID/stat; undefined once it has gone. */
function statOf(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(f[1]), user: Number(f[11]), system: Number(f[12]), ticks: Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]) };
  } catch {
    return undefined;
  }
}

/** Every live descendant of `root`. */
function descendantsOf(root) {
  const children = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = statOf(name);
    if (!s) continue;
    if (!children.has(s.ppid)) children.set(s.ppid, []);
    children.get(s.ppid).push(Number(name));
  }
  const found = [];
  const queue = [...(children.get(root) ?? [])];
  while (queue.length > 0 && found.length < 10_000) {
    const pid = queue.shift();
    found.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return found;
}

/**
 * The CPU a process has used with what it runs, in clock ticks: its own, its
 * reaped children's (cutime, cstime) and its live descendants'. A child alive
 * at one sample and reaped by the next moves from the second sum to the
 * first with all its ticks, so differences between samples stay right.
 */
function cpuTicksOf(pid) {
  const own = statOf(pid);
  if (!own) throw new Error(`process ${pid} has gone`);
  let children = 0;
  for (const d of descendantsOf(pid)) children += statOf(d)?.ticks ?? 0;
  return { own: own.ticks, ownUser: own.user, ownSystem: own.system, children, total: own.ticks + children };
}

/** Resident memory by kind (kB in /proc/PID/status), in bytes. */
function memoryOf(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), anon: kb('RssAnon'), file: kb('RssFile'), shmem: kb('RssShmem'), hwm: kb('VmHWM') };
}

/** Entries under `dir` down to `depth` levels, bounded: how much the file watch has to watch there. */
function countEntries(dir, depth) {
  let count = 0;
  const walk = (d, left) => {
    let names;
    try {
      names = readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const n of names) {
      if (++count > 100_000) return;
      if (left > 1 && n.isDirectory()) walk(join(d, n.name), left - 1);
    }
  };
  walk(dir, depth);
  return count;
}

function rssOfDescendants(pid) {
  let sum = 0;
  for (const d of descendantsOf(pid)) {
    try {
      sum += memoryOf(d).rss;
    } catch {
      // gone between the listing and the read
    }
  }
  return sum;
}

/** A tray on an agent's socket, as tray-ui's is: hello, then idle time every 30 s; resolves `connected` once a status says the agent reached the collector. */
function trayOn(path, sessionId) {
  const statuses = [];
  let socket;
  let idleTimer;
  let resolveConnected;
  const connected = new Promise((r) => (resolveConnected = r));
  const open = () => {
    socket = connect(path, () => {
      socket.write(`${JSON.stringify({ v: 1, type: 'tray.hello', trayVersion: '1', ...(sessionId ? { sessionId } : {}) })}\n`);
      idleTimer = setInterval(() => socket.write(`${JSON.stringify({ v: 1, type: 'tray.idle', idleSeconds: 0 })}\n`), TRAY_IDLE_EVERY_MS);
    });
    let buffer = '';
    socket.setEncoding('utf8');
    socket.on('data', (d) => {
      buffer += d;
      const lines = buffer.split('\n');
      buffer = lines.pop();
      for (const line of lines) {
        const m = JSON.parse(line);
        if (m.type !== 'tray.status') continue;
        statuses.push(m);
        if (m.connectedSince) resolveConnected();
      }
    });
    socket.on('error', () => undefined);
  };
  return {
    statuses,
    connected,
    /** The socket appears once the agent has read the sessions: try until it is there. */
    async open(deadline) {
      while (!existsSync(path)) {
        if (Date.now() > deadline) throw new Error(`no tray socket at ${path}`);
        await sleep(200);
      }
      open();
    },
    get isOpen() {
      return socket && !socket.destroyed;
    },
    close() {
      clearInterval(idleTimer);
      socket?.destroy();
    },
  };
}

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([promise, new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms)))]).finally(() =>
    clearTimeout(timer),
  );
}

function agentConfig(dir, url, overrides) {
  const file = join(dir, 'agent.json');
  const config = {
    collector: { url },
    dataDir: join(dir, 'data'),
    logLevel: 'warn',
    ...overrides,
  };
  writeFileSync(file, `${JSON.stringify(config, null, 2)}\n`);
  return file;
}

function agentArgs(configFile) {
  const diag = SNAPSHOT_DIR ? ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${SNAPSHOT_DIR}`] : [];
  return [...diag, ...AGENT_FLAGS, join(ROOT, 'bin/invigilator.js'), 'agent', '--config', configFile];
}

async function snapshot(pid) {
  const before = new Set(readdirSync(SNAPSHOT_DIR));
  process.kill(pid, 'SIGUSR2');
  for (let i = 0; i < 600; i++) {
    await sleep(100);
    const made = readdirSync(SNAPSHOT_DIR).find((n) => !before.has(n) && n.endsWith('.heapsnapshot'));
    // Written in one go by V8; the size stops growing when it is done.
    if (made) {
      let size = -1;
      for (let j = 0; j < 600; j++) {
        const now = readFileSync(join(SNAPSHOT_DIR, made)).length;
        if (now === size) return join(SNAPSHOT_DIR, made);
        size = now;
        await sleep(500);
      }
    }
  }
  return undefined;
}

async function main() {
  const why = unavailable();
  if (why) {
    process.stdout.write(`agent-idle: not run: ${why}.\n`);
    return;
  }
  if (SNAPSHOT_DIR) mkdirSync(SNAPSHOT_DIR, { recursive: true });
  const collectorDir = tempDir('idle-collector');
  const port = await freePort();
  const collector = await startCollector(`sqlite:${join(collectorDir, 'collector.db')}`, port, collectorDir, { INVIGILATOR_ENROLLMENT_APPROVAL: 'automatic' });
  const token = readFileSync(join(collectorDir, 'enrollment-token'), 'utf8').trim();
  const url = `ws://127.0.0.1:${port}/agent`;
  const env = { ...process.env, INVIGILATOR_ENROLLMENT_TOKEN: token };
  const user = desktopUser();

  // Outside /tmp: the full agent gets a /tmp of its own (see layOver).
  const fullDir = mkdtempSync('/run/invigilator-bench-idle-');
  const trays = join(fullDir, 'trays');
  const fullConfig = agentConfig(fullDir, url, {
    tray: { userSockets: trays },
    usb: { control: 'observe' },
    sessions: { control: 'observe' },
    software: { control: 'observe' },
    ...FULL_OVERRIDES,
  });
  const session = `UID=${user.uid}\nUSER=${user.name}\nACTIVE=1\nIS_DISPLAY=1\nSTATE=active\nREMOTE=0\nTYPE=x11\nCLASS=user\nSEAT=seat0\nDISPLAY=:0\nREALTIME=${Date.now() * 1000}\n`;
  // The file watch looks at /tmp and /var/tmp, which on this machine other programs (and this bench's collector)
  // write to all the time: the agent gets empty ones, as on a lab PC nobody is using. sh execs node, so the pid
  // spawned is the agent's own.
  const layOver = [
    'mkdir -p /run/systemd/sessions',
    'mount -t tmpfs -o size=1m,mode=755 tmpfs /run/systemd/sessions',
    'printf %s "$SESSION" > "/run/systemd/sessions/$SESSION_ID"',
    'mount -t tmpfs -o size=64m,mode=1777 tmpfs /tmp',
    'mount -t tmpfs -o size=64m,mode=1777 tmpfs /var/tmp',
    ...(EMPTY_OPT ? ['mount -t tmpfs -o size=1m,mode=755 tmpfs /opt'] : []),
    'exec "$@"',
  ].join(' && ');
  const full = spawn('unshare', ['-m', '--propagation', 'private', 'sh', '-c', layOver, 'sh', process.execPath, ...agentArgs(fullConfig)], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...env, SESSION: session, SESSION_ID },
  });

  const minimalDir = tempDir('idle-agent-minimal');
  const minimalConfig = agentConfig(minimalDir, url, {
    tray: { socket: join(minimalDir, 'tray.sock'), userSockets: 'off' },
    usb: { control: 'off' },
    sessions: { control: 'off' },
    software: { control: 'off' },
  });
  const minimal = spawn(process.execPath, agentArgs(minimalConfig), { stdio: ['ignore', 'ignore', 'inherit'], env });
  const bare = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  const all = [full, minimal, bare];
  let stopping = false;
  for (const [name, child] of [
    ['full agent', full],
    ['minimal agent', minimal],
  ]) {
    child.once('exit', (code, signal) => {
      if (!stopping) {
        process.stderr.write(`the ${name} exited (${signal ?? code}) during the run\n`);
        process.exit(1);
      }
    });
  }

  // With sessions off (an ablation run) there are no per-user sockets: the tray is on the root socket then.
  const fullTray =
    FULL_OVERRIDES.sessions?.control === 'off' ? trayOn(join(fullDir, 'data', 'tray.sock')) : trayOn(join(trays, `${user.uid}.sock`), SESSION_ID);
  const minimalTray = trayOn(join(minimalDir, 'tray.sock'));
  const startedAt = Date.now();
  try {
    const deadline = startedAt + READY_WITHIN_MS;
    await Promise.all([fullTray.open(deadline), minimalTray.open(deadline)]);
    await withTimeout(Promise.all([fullTray.connected, minimalTray.connected]), deadline - Date.now(), 'both agents connected to the collector');
    const readyMs = Date.now() - startedAt;
    if (readFileSync(`/proc/${full.pid}/comm`, 'utf8').trim() !== 'node') throw new Error('the full agent is not the process spawned');

    const cpuStart = { full: cpuTicksOf(full.pid), minimal: cpuTicksOf(minimal.pid), bare: cpuTicksOf(bare.pid) };
    const windowStart = process.hrtime.bigint();
    const samples = [];
    for (let waited = 0; waited < IDLE_SECONDS * 1000;) {
      const step = Math.min(SAMPLE_EVERY_MS, IDLE_SECONDS * 1000 - waited);
      await sleep(step);
      waited += step;
      samples.push({
        atSeconds: waited / 1000,
        fullRssBytes: memoryOf(full.pid).rss,
        minimalRssBytes: memoryOf(minimal.pid).rss,
        bareRssBytes: memoryOf(bare.pid).rss,
      });
    }
    const windowSeconds = Number(process.hrtime.bigint() - windowStart) / 1e9;
    const cpuEnd = { full: cpuTicksOf(full.pid), minimal: cpuTicksOf(minimal.pid), bare: cpuTicksOf(bare.pid) };
    const mem = { full: memoryOf(full.pid), minimal: memoryOf(minimal.pid), bare: memoryOf(bare.pid) };
    const fullChildrenRss = rssOfDescendants(full.pid);
    const trayStillOpen = fullTray.isOpen;
    const percent = (name, part = 'total') => Number((((cpuEnd[name][part] - cpuStart[name][part]) / clockTicks / windowSeconds) * 100).toFixed(3));

    const snapshots = SNAPSHOT_DIR ? { full: await snapshot(full.pid), minimal: await snapshot(minimal.pid) } : undefined;
    const probing = AGENT_FLAGS.length > 0 || SNAPSHOT_DIR !== '' || Object.keys(FULL_OVERRIDES).length > 0 || EMPTY_OPT;
    const ratio = (a, b) => Number((a / b).toFixed(3));
    writeResult(probing ? 'agent-idle-probe' : 'agent-idle', {
      idleSeconds: IDLE_SECONDS,
      windowSeconds: Number(windowSeconds.toFixed(1)),
      readyMs,
      ...(AGENT_FLAGS.length ? { agentFlags: AGENT_FLAGS } : {}),
      ...(Object.keys(FULL_OVERRIDES).length ? { fullConfig: FULL_OVERRIDES } : {}),
      ...(EMPTY_OPT ? { emptyOpt: true } : {}),
      /** What the file watch covers in /opt (depth 2) on this machine: a lab PC has a browser or two there. */
      optEntries: EMPTY_OPT ? 0 : countEntries('/opt', 3),
      ...(snapshots ? { snapshots } : {}),
      ratio: ratio(mem.full.rss, mem.bare.rss),
      cpuPercent: percent('full'),
      ratioMinimal: ratio(mem.minimal.rss, mem.bare.rss),
      goal: GOAL,
      met: {
        ratio: mem.full.rss / mem.bare.rss <= GOAL.ratio,
        cpuPercent: percent('full') <= GOAL.cpuPercent,
        ratioMinimal: mem.minimal.rss / mem.bare.rss <= GOAL.ratioMinimal,
      },
      agentRssBytes: mem.full.rss,
      minimalAgentRssBytes: mem.minimal.rss,
      bareNodeRssBytes: mem.bare.rss,
      memoryBytes: mem,
      /** What the full agent's own children (udevadm monitor and the like) hold besides. */
      fullAgentChildrenRssBytes: fullChildrenRss,
      cpu: {
        fullOwnPercent: percent('full', 'own'),
        fullOwnUserPercent: percent('full', 'ownUser'),
        fullOwnSystemPercent: percent('full', 'ownSystem'),
        fullChildrenPercent: percent('full', 'children'),
        minimalPercent: percent('minimal'),
        bareNodePercent: percent('bare'),
      },
      tray: { user: user.uid, session: SESSION_ID, statusesSeen: fullTray.statuses.length, stillConnected: trayStillOpen },
      samples,
    });
  } finally {
    stopping = true;
    fullTray.close();
    minimalTray.close();
    for (const p of [...all, collector]) p.kill('SIGTERM');
    await Promise.all([full, minimal].map((p) => (p.exitCode === null && p.signalCode === null ? once(p, 'exit') : undefined)));
    rmSync(fullDir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
