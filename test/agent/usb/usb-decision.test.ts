import { type UsbDecisionInput, decideUsb } from '../../../agent/usb/usb-decision';
import type { StorageAssessment } from '../../../agent/usb/storage-assessment';
import { settingsFor } from '../../../shared/policy/resolve';
import { preset } from '../../../shared/policy/presets';
import type { UsbDevice } from '../../../shared/protocol';
import { usbAllowDigest, usbAllowKey } from '../../../node-common/usb-allow-digest';

const NOW = Date.parse('2026-11-23T10:00:00Z');
const stick: UsbDevice = { vendorId: '0781', productId: '5567', serial: 'SN1', deviceClass: 0, interfaceClasses: [8] };
const keyboard: UsbDevice = { vendorId: '046d', productId: 'c31c', deviceClass: 0, interfaceClasses: [3, 3] };
const printer: UsbDevice = { vendorId: '04b8', productId: '0005', deviceClass: 0, interfaceClasses: [7] };
const badUsb: UsbDevice = { vendorId: '1234', productId: '5678', deviceClass: 0, interfaceClasses: [8, 3] };

const media = (encrypted: true | false | 'unknown', unreadable = false): StorageAssessment => ({
  encrypted,
  scheme: encrypted === true ? 'luks2' : encrypted === false ? 'none' : 'unknown',
  volumes: [{ device: '/dev/sdb', encrypted, scheme: encrypted === true ? 'luks2' : encrypted === false ? 'none' : 'unknown' }],
  bytesRead: 4096,
  unreadable,
});

function input(
  policyName: 'basildon-primary' | 'carrington-infant',
  device: UsbDevice,
  extra: Partial<UsbDecisionInput> = {},
  role = 'pupil',
): UsbDecisionInput {
  const policy = preset(policyName)!;
  return {
    device,
    storageSettings: settingsFor(policy, 'usbStorage', role),
    deviceSettings: settingsFor(policy, 'usbDevices', role),
    allowlist: policy.usbAllowlist,
    hardwareEncryptedModels: policy.hardwareEncryptedModels,
    unreadableVolume: policy.failsafe.unreadableVolume,
    computerId: 'dev-this',
    nowMs: NOW,
    ...extra,
  };
}

describe('allowlist entries keyed to this computer (approvals for every computer)', () => {
  const key = usbAllowKey(Buffer.alloc(32, 9));
  const digestsOf = (d: UsbDevice) => ({
    withSerial: d.serial === undefined ? undefined : usbAllowDigest(key, d),
    withoutSerial: usbAllowDigest(key, { vendorId: d.vendorId, productId: d.productId }),
  });
  const keyed = (digest: string, serial: boolean, extra: { expiresAt?: string } = {}) => ({
    id: 'allow-keyed',
    match: { scheme: 'hmac-sha256-v1' as const, digest, serial },
    note: 'approved for every school computer',
    ...extra,
  });

  it('match the device whose digest under this computer’s key they hold, with its serial when they cover one', () => {
    const bySerial = keyed(usbAllowDigest(key, stick), true);
    const byModel = keyed(usbAllowDigest(key, { vendorId: '0781', productId: '5567' }), false);
    const allowed = { action: 'allow', exception: { kind: 'allowlist', id: 'allow-keyed' } };

    expect(decideUsb(input('carrington-infant', stick, { allowlist: [bySerial], digests: digestsOf(stick) }))).toMatchObject(allowed);
    expect(decideUsb(input('carrington-infant', stick, { allowlist: [byModel], digests: digestsOf(stick) }))).toMatchObject(allowed);
    const sameModelOtherSerial = { ...stick, serial: 'SN2' };
    expect(decideUsb(input('carrington-infant', sameModelOtherSerial, { allowlist: [bySerial], digests: digestsOf(sameModelOtherSerial) }))).toMatchObject({
      action: 'block',
    });
    expect(decideUsb(input('carrington-infant', sameModelOtherSerial, { allowlist: [byModel], digests: digestsOf(sameModelOtherSerial) }))).toMatchObject(
      allowed,
    );
  });

  it('match nothing without this computer’s digests, under another computer’s key, or once expired', () => {
    const other = usbAllowKey(Buffer.alloc(32, 8));
    expect(decideUsb(input('carrington-infant', stick, { allowlist: [keyed(usbAllowDigest(key, stick), true)] }))).toMatchObject({ action: 'block' });
    expect(decideUsb(input('carrington-infant', stick, { allowlist: [keyed(usbAllowDigest(other, stick), true)], digests: digestsOf(stick) }))).toMatchObject({
      action: 'block',
    });
    expect(
      decideUsb(
        input('carrington-infant', stick, {
          allowlist: [keyed(usbAllowDigest(key, stick), true, { expiresAt: '2026-11-23T09:59:59Z' })],
          digests: digestsOf(stick),
        }),
      ),
    ).toMatchObject({ action: 'block' });
  });
});

describe('the USB rule', () => {
  describe('under basildon-primary (encrypted sticks allowed)', () => {
    it('asks for the media before deciding a stick, then allows an encrypted one and blocks a plain one', () => {
      expect(decideUsb(input('basildon-primary', stick))).toEqual({ action: 'inspect' });
      expect(decideUsb(input('basildon-primary', stick, { storage: media(true) }))).toMatchObject({ action: 'allow', subject: 'storage' });
      expect(decideUsb(input('basildon-primary', stick, { storage: media(false) }))).toMatchObject({
        action: 'block',
        reason: 'unencrypted',
        clauseId: 'bps-connections-encrypted',
        canAsk: true,
      });
    });

    it('blocks media with no recognisable signature, and media that cannot be read, as the policy says', () => {
      expect(decideUsb(input('basildon-primary', stick, { storage: media('unknown') }))).toMatchObject({ action: 'block', reason: 'unknown-encryption' });
      expect(decideUsb(input('basildon-primary', stick, { storage: media('unknown', true) }))).toMatchObject({ action: 'block', reason: 'unreadable' });
      expect(decideUsb(input('basildon-primary', stick, { storage: media('unknown', true), unreadableVolume: 'allow' }))).toMatchObject({ action: 'allow' });
    });

    it('allows a listed hardware-encrypted model without reading it', () => {
      const models = [{ vendorId: '0781', productId: '5567', note: 'IronKey-style stick that unlocks to FAT' }];
      expect(decideUsb(input('basildon-primary', stick, { hardwareEncryptedModels: models }))).toMatchObject({ action: 'allow', scheme: 'hardware' });
    });

    it('makes a plain stick read-only instead of blocking it when the policy says so', () => {
      const i = input('basildon-primary', stick, { storage: media(false) });
      i.storageSettings = { ...i.storageSettings, readOnlyInsteadOfBlock: true };
      expect(decideUsb(i)).toMatchObject({ action: 'readonly', reason: 'unencrypted' });
      expect(decideUsb({ ...i, storage: media('unknown', true) })).toMatchObject({ action: 'block', reason: 'unreadable' });
    });

    it('allows a keyboard, and blocks a printer for a pupil but only logs it for staff', () => {
      expect(decideUsb(input('basildon-primary', keyboard))).toMatchObject({ action: 'allow', subject: 'device' });
      expect(decideUsb(input('basildon-primary', printer))).toMatchObject({ action: 'block', subject: 'device', reason: 'needs-permission', canAsk: true });
      expect(decideUsb(input('basildon-primary', printer, {}, 'staff'))).toMatchObject({ action: 'allow', subject: 'device' });
    });

    it('blocks a stick that also presents a keyboard (BadUSB), whatever its media', () => {
      expect(decideUsb(input('basildon-primary', badUsb, { storage: media(true) }))).toMatchObject({ action: 'block', reason: 'bad-usb' });
    });
  });

  describe('under carrington-infant (all USB storage blocked)', () => {
    it('blocks every stick without reading it, encrypted or not, and offers no request', () => {
      expect(decideUsb(input('carrington-infant', stick))).toMatchObject({
        action: 'block',
        reason: 'block-all',
        clauseId: 'cis-usb-mass-storage',
        canAsk: false,
      });
      expect(decideUsb(input('carrington-infant', stick, { storage: media(true) }))).toMatchObject({ action: 'block', reason: 'block-all' });
    });

    it('logs a printer rather than blocking it', () => {
      expect(decideUsb(input('carrington-infant', printer))).toMatchObject({ action: 'allow', subject: 'device' });
    });
  });

  describe('exceptions', () => {
    const entry = { id: 'allow-1', vendorId: '0781', productId: '5567', note: 'art project' };

    it('allows an allowlisted stick, and an allowlisted BadUSB-looking device, under block-all', () => {
      expect(decideUsb(input('carrington-infant', stick, { allowlist: [entry] }))).toMatchObject({
        action: 'allow',
        exception: { kind: 'allowlist', id: 'allow-1' },
      });
      expect(decideUsb(input('carrington-infant', badUsb, { allowlist: [{ ...entry, vendorId: '1234', productId: '5678' }] }))).toMatchObject({
        action: 'allow',
      });
    });

    it('does not apply an entry that has expired, names another serial or another computer', () => {
      expect(decideUsb(input('carrington-infant', stick, { allowlist: [{ ...entry, expiresAt: '2026-11-23T09:59:59Z' }] }))).toMatchObject({ action: 'block' });
      expect(decideUsb(input('carrington-infant', stick, { allowlist: [{ ...entry, serial: 'OTHER' }] }))).toMatchObject({ action: 'block' });
      expect(decideUsb(input('carrington-infant', stick, { allowlist: [{ ...entry, devices: ['dev-other'] }] }))).toMatchObject({ action: 'block' });
      expect(
        decideUsb(input('carrington-infant', stick, { allowlist: [{ ...entry, devices: ['dev-this'], expiresAt: '2026-11-24T00:00:00Z' }] })),
      ).toMatchObject({
        action: 'allow',
      });
    });

    it('allows this attachment when a valid offline code was typed for it', () => {
      expect(decideUsb(input('carrington-infant', stick, { offlineGrant: 'ABCD-EFGH-JKMN' }))).toMatchObject({
        action: 'allow',
        exception: { kind: 'offline-code' },
      });
    });
  });

  it('in audit mode allows everything and says what it would have blocked', () => {
    const i = input('basildon-primary', stick, { storage: media(false) });
    i.storageSettings = { ...i.storageSettings, mode: 'audit' };
    expect(decideUsb(i)).toMatchObject({ action: 'allow', auditWouldBlock: 'unencrypted' });
    expect(decideUsb({ ...i, storage: media(true) })).toEqual({ action: 'allow', subject: 'storage', clauseId: 'bps-connections-encrypted' });
  });
  describe('devices that are not what they seem', () => {
    const ethernetStick: UsbDevice = { vendorId: '1d6b', productId: '0104', deviceClass: 0, interfaceClasses: [8, 2, 10] };

    it('blocks a device whose descriptors could not be read whole, whatever exception names its ids', () => {
      const entry = { id: 'allow-1', vendorId: '046d', productId: 'c31c', note: 'keyboards' };
      expect(decideUsb(input('basildon-primary', keyboard, { descriptorsIncomplete: true, allowlist: [entry] }))).toMatchObject({
        action: 'block',
        reason: 'bad-usb',
        canAsk: false,
      });
    });

    it('judges a stick that is also a network adapter by the class rules for its other functions', () => {
      expect(decideUsb(input('basildon-primary', ethernetStick, { storage: media(true) }))).toMatchObject({ action: 'block', reason: 'class-blocked' });
      expect(decideUsb(input('basildon-primary', ethernetStick, { storage: media(true) }, 'staff'))).toMatchObject({ action: 'allow' });
    });
  });
});
