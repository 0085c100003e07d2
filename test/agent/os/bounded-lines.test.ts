import { boundedLines } from '../../../agent/os/bounded-lines';

describe('boundedLines', () => {
  it('gives the lines in order, the last without a newline too', () => {
    expect([...boundedLines('a\nbb\n\nccc', 10, 10)]).toEqual(['a', 'bb', '', 'ccc']);
    expect([...boundedLines('a\n', 10, 10)]).toEqual(['a', '']);
  });

  it('stops after maxLines, counting the lines it skipped', () => {
    expect([...boundedLines('1\n2\n3\n4', 2, 10)]).toEqual(['1', '2']);
    expect([...boundedLines(`${'x'.repeat(20)}\n2\n3`, 2, 10)]).toEqual(['2']);
  });

  it('skips a line over maxChars and carries on after it', () => {
    expect([...boundedLines(`ok\n${'y'.repeat(11)}\nfine`, 10, 10)]).toEqual(['ok', 'fine']);
  });
});
