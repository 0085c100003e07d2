import { randomUUID } from 'node:crypto';
import type { EventEnvelope } from '../../shared/protocol';
import { RawClient, type TestCollector, startTestCollector } from '../support/harness';
import { sampleEvent } from '../support/samples';

/** U+202E turns the rest of a line around: "CLASS3-01\u202Efdp.exe" shows as "CLASS3-01exe.pdf". */
const RLO = '\u202e';
const HOSTILE_HOSTNAME = `HEAD${RLO}RETCAEH\u0007-PC\u001b[31m\u200b\u2066x\u2069\u0085`;
const UNSAFE = /[\p{Cc}\p{Cf}\p{Co}\p{Zl}\p{Zp}\ufffe\uffff]/u;
/** Free text may keep line breaks and tabs, nothing else of its kind. */
const UNSAFE_IN_TEXT = /(?![\n\t])[\p{Cc}\p{Cf}\p{Co}\p{Zl}\p{Zp}\ufffe\uffff]/u;

/**
 * Issue 13, item 12: hostnames, labels and report text kept their control and
 * direction-reversing characters when stored and served. What a device or a
 * person types is cleaned where it enters (the protocol's `name` and `text`),
 * so the API serves plain text; free text keeps its line breaks.
 */
describe('hostile text from a device, read back from the API', () => {
  let c: TestCollector;
  beforeEach(async () => (c = await startTestCollector()));
  afterEach(async () => c.close());

  const get = async <T>(path: string): Promise<T> =>
    (await (await fetch(`${c.httpUrl}${path}`, { headers: { authorization: `Bearer ${c.adminToken}` } })).json()) as T;

  async function hostileDevice(): Promise<{ client: RawClient; deviceId: string }> {
    const client = new RawClient(c.agentUrl);
    await client.opened;
    client.send({
      v: 1,
      type: 'hello',
      agentVersion: `0.1.0${RLO}`,
      hostname: HOSTILE_HOSTNAME,
      platform: 'linux',
      auth: { kind: 'enroll', token: await c.enrollmentToken(), installationId: `inst-${randomUUID()}` },
    });
    const { deviceId } = await client.next('enrolled');
    await client.next('welcome');
    return { client, deviceId };
  }

  it('serves a hostname from a hostile hello without controls or direction marks, in the device list and in sessions', async () => {
    const { client, deviceId } = await hostileDevice();
    client.send({ v: 1, type: 'login.claim', claimId: 'k-1', user: { name: `amy.p${RLO}` }, sessionId: 's-1', role: 'pupil', at: new Date().toISOString() });
    await client.next('login.verdict');
    const { devices } = await get<{ devices: Array<{ id: string; hostname: string; agentVersion: string }> }>('/api/devices');
    const device = devices.find((d) => d.id === deviceId)!;
    expect(device.hostname).toBe('HEAD RETCAEH -PC [31m x');
    expect(device.agentVersion).toBe('0.1.0');
    const { sessions } = await get<{ sessions: Array<{ hostname: string; user: string }> }>('/api/sessions');
    expect(sessions).toEqual([expect.objectContaining({ hostname: 'HEAD RETCAEH -PC [31m x', user: 'amy.p' })]);
    client.ws.close();
  });

  it('lists an enrollment token’s note as plain text, its line breaks kept', async () => {
    const headers = { authorization: `Bearer ${c.adminToken}`, 'content-type': 'application/json' };
    const made = await fetch(`${c.httpUrl}/api/enrollment-tokens`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ note: `Year 3${RLO}spotpal\u0007\r\nroom 12\u200b` }),
    });
    expect(made.status).toBe(201);
    const { id } = (await made.json()) as { id: string };
    const { tokens } = await get<{ tokens: Array<{ id: string; note: string }> }>('/api/enrollment-tokens');
    expect(tokens.find((t) => t.id === id)?.note).toBe('Year 3 spotpal \nroom 12 ');
  });

  it('serves permission-request labels and reasons as plain text, the reason keeping its line breaks', async () => {
    const { client, deviceId } = await hostileDevice();
    client.send({
      v: 1,
      type: 'permission.request',
      requestId: 'r-1',
      kind: 'usb-device',
      subject: { vendorId: '0781', productId: '5567', serial: `X1${RLO}`, label: `SanDisk${RLO}gpj.exe\u0000` },
      user: { name: 'amy.p' },
      reason: `line one\u202e\r\nline two\u0007\u2028line three\ttabbed`,
    });
    const request = await (async () => {
      for (let i = 0; i < 100; i++) {
        const { requests } = await get<{ requests: Array<Record<string, unknown>> }>(`/api/permission-requests?device=${deviceId}`);
        if (requests.length > 0) return requests[0]!;
        await new Promise((r) => setTimeout(r, 20));
      }
      throw new Error('the request never arrived');
    })();
    expect(request.subject).toEqual({ vendorId: '0781', productId: '5567', serial: 'X1', label: 'SanDisk gpj.exe' });
    expect(request.reason).toBe('line one \nline two \nline three\ttabbed');
    client.ws.close();
  });

  it('serves problem-report text and event strings without controls or direction marks, line breaks kept', async () => {
    const { client, deviceId } = await hostileDevice();
    const events = [
      {
        ...sampleEvent('problem.reported'),
        id: randomUUID(),
        deviceId,
        seq: 1,
        user: { name: `amy${RLO}.p` },
        data: {
          kind: 'upsetting',
          text: `Someone wrote\u001b[2J\r\n\u202etxet sdrawkcab\u0008\u0008 on my\u200b screen\n\nplease help`,
          systemDetails: 'agent: ok\n\tlink: up\u0000',
        },
      },
      { ...sampleEvent('agent.started'), id: randomUUID(), deviceId, seq: 2, data: { agentVersion: '0.1.0', platform: 'linux', hostname: HOSTILE_HOSTNAME } },
    ] as EventEnvelope[];
    client.send({ v: 1, type: 'event.batch', events });
    await client.next('ack');
    const served = (await get<{ events: Array<{ user?: { name: string }; data: Record<string, string> }> }>(`/api/events?device=${deviceId}`)).events;
    expect(served[0]!.data.text).toBe('Someone wrote [2J\n txet sdrawkcab   on my  screen\n\nplease help');
    expect(served[0]!.data.systemDetails).toBe('agent: ok\n\tlink: up ');
    expect(served[0]!.user?.name).toBe('amy .p');
    expect(served[1]!.data.hostname).toBe('HEAD RETCAEH -PC [31m x');
    for (const e of served) {
      for (const value of Object.values(e.data)) expect(UNSAFE_IN_TEXT.test(value)).toBe(false);
      expect(UNSAFE.test(e.user?.name ?? '')).toBe(false);
    }
    client.ws.close();
  });
});
