import { descriptorText, descriptorTextFromUtf16le, descriptorTextFromUtf8, hex4 } from '../../shared/usb/descriptor-text';

describe('USB descriptor strings', () => {
  it('keeps ordinary names as they are, spaces tidied', () => {
    expect(descriptorText('  SanDisk   Cruzer\tBlade ')).toBe('SanDisk Cruzer Blade');
    expect(descriptorText('Kingston DataTraveler 3.0 – Zürich')).toBe('Kingston DataTraveler 3.0 – Zürich');
  });

  it('removes controls, bidi overrides, zero-width and tag characters, and private use', () => {
    const hostile = 'Evil\u001b[31m\u202eCorp\u200b\u2066x\u{E0041}\u{E007F}\uE000\u2028end\u0085';
    const clean = descriptorText(hostile)!;
    expect(clean).toBe('Evil [31m Corp x end');
    expect(clean).not.toMatch(/[\p{Cc}\p{Cf}\p{Co}\p{Zl}]/u);
  });

  it('replaces broken UTF-8 and UTF-16 with U+FFFD and caps the length by code point', () => {
    expect(descriptorTextFromUtf8(Buffer.from([0x41, 0xff, 0xc3]))).toBe('A\ufffd\ufffd');
    expect(descriptorTextFromUtf16le(Buffer.from([0x41, 0x00, 0x00, 0xd8, 0x42]))).toMatch(/^A\ufffd+$/);
    expect(descriptorText('\ud800x\udc00')).toBe('\ufffdx\ufffd');
    const long = descriptorText('😀'.repeat(500))!;
    expect(Array.from(long)).toHaveLength(126);
    expect(long.endsWith('😀')).toBe(true);
    expect(descriptorText('\u0000\u0001')).toBeUndefined();
  });

  it('reads vendor and product ids as four lower-case hex digits, or not at all', () => {
    expect(hex4(0x781)).toBe('0781');
    expect(hex4('0x05AC')).toBe('05ac');
    expect(hex4('12345')).toBeUndefined();
    expect(hex4(70000)).toBeUndefined();
    expect(hex4('<b>')).toBeUndefined();
  });
});
