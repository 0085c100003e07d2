import { basildonPrimary } from '../../shared/policy/presets/basildon-primary';
import type { AgentToCollector, AgentToTray, CollectorToAgent, EventEnvelope, EventType, TrayToAgent, UsbDevice } from '../../shared/protocol';

/** One valid example of every message and event type. Tests check that no type is missing. */

export const stick: UsbDevice = {
  vendorId: '0781',
  productId: '5567',
  serial: '4C530001230712115462',
  manufacturer: 'SanDisk',
  product: 'Cruzer Blade',
  deviceClass: 0,
  interfaceClasses: [8],
  bus: '1',
  port: '1-2',
};

const T = '2026-11-23T09:15:00.000Z';
const other = { hostname: 'LIBRARY-07', since: T };
const session = { sessionId: 's-1' };

export const EVENT_DATA_SAMPLES: { [K in EventType]: Extract<EventEnvelope, { type: K }>['data'] } = {
  'agent.started': { agentVersion: '0.1.0', platform: 'linux', hostname: 'CLASS3-01' },
  'agent.stopped': { reason: 'SIGTERM' },
  'agent.tamper': { target: 'tray', action: 'killed', process: { pid: 4242, name: 'taskkill.exe' } },
  'outbox.overflow': { capBytes: 268435456, dropped: { debug: 10, info: 2 } },
  'outbox.corrupt': { segment: '00000003.seg', offset: 4096, bytesSkipped: 312 },
  'outbox.too-large': { eventType: 'login-limit.denied', bytes: 592246, maxBytes: 262144 },
  'device.silent': { deviceId: 'dev-7', hostname: 'LIBRARY-03', lastSeen: T },
  'policy.applied': { policyId: 'basildon-primary', version: 1 },
  'policy.rejected': { policyId: 'basildon-primary', problems: [{ code: 'INV_ERR_SCHEMA_VALUE', path: '$.usbStorage.default.mode' }] },
  'usb.connected': { device: stick },
  'usb.removed': { device: stick },
  'usb.blocked': { device: { ...stick, interfaceClasses: [6] }, reason: 'needs-permission' },
  'usb.storage.allowed': { device: stick, scheme: 'luks2', volumes: [{ device: '/dev/sdb', encrypted: true, scheme: 'luks2' }], allowlisted: false },
  'usb.storage.blocked': {
    device: stick,
    reason: 'unencrypted',
    volumes: [{ device: '/dev/sdb1', filesystem: 'vfat', encrypted: false, scheme: 'none', sizeBytes: 16008609792 }],
  },
  'usb.storage.readonly': { device: stick, scheme: 'none', volumes: [] },
  'usb.enforcement.failed': { device: stick, action: 'block', error: { code: 'INV_ERR_USB_OS_COMMAND_FAILED', message: 'write error' } },
  'usb.offline-code.rejected': { device: stick, code: 'INV_ERR_OFFLINE_CODE_USED' },
  'session.started': { ...session, role: 'pupil' },
  'session.ended': session,
  'session.locked': session,
  'session.unlocked': session,
  'session.idle-warning': { ...session, idleSeconds: 840, logoffInSeconds: 60 },
  'session.logoff': { ...session, reason: 'idle', confirmed: true },
  'login-limit.granted': { ...session, limit: 2 },
  'login-limit.denied': { ...session, limit: 2, others: [other, { ...other, hostname: 'ART-02' }] },
  'login-limit.released': session,
  'software.detected': {
    ruleId: 'cat-hacking-tool',
    category: 'hacking-tool',
    action: 'terminate',
    audit: false,
    process: { pid: 1234, name: 'wireshark', path: '/usr/bin/wireshark' },
  },
  'software.terminated': { ruleId: 'cat-hacking-tool', process: { pid: 1234, name: 'wireshark' } },
  'software.installed': { name: 'GIMP', version: '2.10.34', publisher: 'The GIMP Team', source: 'dpkg' },
  'software.removed': { name: 'GIMP', source: 'dpkg' },
  'software.inventory.full': { deviceId: 'dev-7', hostname: 'LIBRARY-03', cap: 20000 },
  'file.quarantined': { quarantineId: 'q-1', file: { path: 'C:\\Users\\amy\\Downloads\\game.exe', sha256: 'a'.repeat(64), sizeBytes: 1024 } },
  'file.restored': { quarantineId: 'q-1', file: { path: 'C:\\Users\\amy\\Downloads\\game.exe', sha256: 'a'.repeat(64) } },
  'tray.missing': { ...session, sinceSeconds: 130 },
  'permission.requested': { requestId: 'r-1', kind: 'usb-device', subject: 'SanDisk Cruzer Blade', reason: 'My homework is on it' },
  'permission.decided': { requestId: 'r-1', decision: 'approved', expiresAt: '2026-11-30T16:00:00.000Z' },
  'aup.agreed': { ...session, user: 'amy', uid: 1000, policyId: 'basildon-primary', version: 1 },
  'aup.declined': { ...session, user: 'amy', uid: 1000, policyId: 'basildon-primary', version: 1, signedOut: true },
  'problem.reported': { kind: 'virus', text: 'A window says my files are locked' },
  'problem.held-back': { from: 'the tray of uid 1001, session 5', repeats: 2, throttled: 995, since: '2026-11-23T09:00:00.000Z' },
  'command.completed': { commandId: 'c-1', ok: true },
};

let seq = 0;
export function sampleEvent<K extends EventType>(type: K, overrides: Partial<EventEnvelope> = {}): EventEnvelope {
  seq += 1;
  return {
    id: `0b6f3c1e-8f2a-4c3d-9e4f-${String(seq).padStart(12, '0')}`,
    deviceId: 'dev-1',
    seq,
    time: T,
    type,
    severity: 'info',
    user: { name: 'amy.p', role: 'pupil' },
    data: EVENT_DATA_SAMPLES[type],
    ...overrides,
  } as EventEnvelope;
}

export const AGENT_TO_COLLECTOR_SAMPLES: { [K in AgentToCollector['type']]: Extract<AgentToCollector, { type: K }> } = {
  hello: {
    v: 1,
    type: 'hello',
    agentVersion: '0.1.0',
    hostname: 'CLASS3-01',
    platform: 'linux',
    auth: { kind: 'enroll', token: 'tok_abcDEF123', installationId: 'inst-3f9a1c' },
  },
  'auth.proof': { v: 1, type: 'auth.proof', deviceId: 'dev-1', nonce: 'bm9uY2U', proof: 'cHJvb2Y' },
  'event.batch': { v: 1, type: 'event.batch', events: [sampleEvent('usb.storage.blocked', { severity: 'alert' })] },
  'command.result': {
    v: 1,
    type: 'command.result',
    commandId: 'c-1',
    ok: false,
    error: { code: 'INV_ERR_INTERNAL', message: 'logoff did not end the session' },
  },
  'login.claim': { v: 1, type: 'login.claim', claimId: 'k-1', user: { name: 'amy.p' }, sessionId: 's-1', role: 'pupil', at: T },
  'login.renew': { v: 1, type: 'login.renew', sessionIds: ['s-1'] },
  'login.release': { v: 1, type: 'login.release', sessionId: 's-1' },
  'login.evict': {
    v: 1,
    type: 'login.evict',
    claimId: 'k-2',
    user: { name: 'amy.p' },
    sessionId: 's-1',
    role: 'pupil',
    at: T,
    ref: 'ev-Q2xhc3MzLTAxLXMtOQ',
  },
  'permission.request': {
    v: 1,
    type: 'permission.request',
    requestId: 'r-1',
    kind: 'usb-device',
    subject: { vendorId: '0781', productId: '5567', serial: 'X1', label: 'SanDisk Cruzer Blade' },
    user: { name: 'amy.p' },
    reason: 'homework',
  },
};

export const COLLECTOR_TO_AGENT_SAMPLES: { [K in CollectorToAgent['type']]: Extract<CollectorToAgent, { type: K }> } = {
  enrolled: { v: 1, type: 'enrolled', deviceId: 'dev-1', deviceSecret: 'c2VjcmV0' },
  challenge: { v: 1, type: 'challenge', nonce: 'bm9uY2U' },
  welcome: { v: 1, type: 'welcome', deviceId: 'dev-1', serverTime: T, lastAckedSeq: 41 },
  ack: { v: 1, type: 'ack', upToSeq: 42 },
  busy: { v: 1, type: 'busy', retryAfterMs: 5000 },
  'policy.push': { v: 1, type: 'policy.push', policy: basildonPrimary },
  command: {
    v: 1,
    type: 'command',
    commandId: 'c-1',
    issuedAt: T,
    command: { kind: 'logoff', target: { scope: 'user', user: 'amy.p' }, reason: 'end of lesson' },
  },
  'login.verdict': {
    v: 1,
    type: 'login.verdict',
    claimId: 'k-1',
    granted: false,
    limit: 2,
    others: [{ ...other, ref: 'ev-Q2xhc3MzLTAxLXMtOQ' }],
    leaseSeconds: 300,
  },
  'permission.decision': { v: 1, type: 'permission.decision', requestId: 'r-1', decision: 'approved', expiresAt: '2026-11-30T16:00:00.000Z' },
  error: { v: 1, type: 'error', error: { code: 'INV_ERR_AUTH_FAILED', message: 'proof does not match' } },
};

export const TRAY_TO_AGENT_SAMPLES: { [K in TrayToAgent['type']]: Extract<TrayToAgent, { type: K }> } = {
  'tray.hello': { v: 1, type: 'tray.hello', trayVersion: '0.1.0' },
  'tray.idle': { v: 1, type: 'tray.idle', idleSeconds: 30 },
  'tray.answer': { v: 1, type: 'tray.answer', noticeId: 'n-1', action: 'ask-permission', text: 'I need my homework' },
  'tray.report': { v: 1, type: 'tray.report', kind: 'broken', text: 'The printer says error 5', reportId: '6f1c2a9e-3b7d-4c1a-9e2f-5a8b7c6d4e3f' },
};

export const AGENT_TO_TRAY_SAMPLES: { [K in AgentToTray['type']]: Extract<AgentToTray, { type: K }> } = {
  'tray.notice': {
    v: 1,
    type: 'tray.notice',
    noticeId: 'n-1',
    kind: 'usb-blocked',
    title: 'This memory stick cannot be used',
    body: 'School computers only use locked (encrypted) memory sticks. You can ask the School Network Manager to let you use it.',
    clause: { id: 'bps-connections-encrypted', document: 'Basildon', section: '3.7', quote: 'Encrypted USB memory sticks ... may be used' },
    subject: '<img src=x onerror=alert(1)>',
    actions: ['dismiss', 'ask-permission'],
  },
  'tray.withdraw': { v: 1, type: 'tray.withdraw', noticeId: 'n-1' },
  'tray.status': { v: 1, type: 'tray.status', state: 'protected', policyName: 'Basildon Primary', policyRevision: 1, connectedSince: T, lastEvent: null },
  'tray.report.ack': { v: 1, type: 'tray.report.ack', reportId: '6f1c2a9e-3b7d-4c1a-9e2f-5a8b7c6d4e3f', outcome: 'recorded' },
};
