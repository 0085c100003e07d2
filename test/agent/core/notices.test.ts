import type { TrayNotice, TrayStatus } from '../../../shared/protocol';
import { type NoticeSink, bothSinks } from '../../../agent/core/notices';
import { refusal } from '../../../agent/core/result';
import { ERRORS } from '../../../shared/errors';

function recording(withStatus: boolean) {
  const seen: string[] = [];
  const sink: NoticeSink = {
    show: (n) => seen.push(`show ${n.noticeId}`),
    withdraw: (id) => seen.push(`withdraw ${id}`),
    ...(withStatus ? { status: (s: TrayStatus) => seen.push(`status ${s.state}`) } : {}),
  };
  return { sink, seen };
}

describe('the notice port', () => {
  it('bothSinks gives every notice, withdrawal and status to both, and skips a status neither can show', () => {
    const root = recording(false);
    const users = recording(true);
    const both = bothSinks(root.sink, users.sink);
    both.show({ noticeId: 'usb-1' } as TrayNotice);
    both.withdraw('usb-1');
    both.status?.({ state: 'protected' } as TrayStatus);
    expect(root.seen).toEqual(['show usb-1', 'withdraw usb-1']);
    expect(users.seen).toEqual(['show usb-1', 'withdraw usb-1', 'status protected']);
  });
});

describe('refusal', () => {
  it("says the catalogue's words unless given its own", () => {
    expect(refusal('INV_ERR_USB_DEVICE_GONE')).toEqual({ ok: false, code: 'INV_ERR_USB_DEVICE_GONE', message: ERRORS.INV_ERR_USB_DEVICE_GONE });
    expect(refusal('INV_ERR_BUSY', 'the school’s server cannot be reached just now')).toEqual({
      ok: false,
      code: 'INV_ERR_BUSY',
      message: 'the school’s server cannot be reached just now',
    });
  });
});
