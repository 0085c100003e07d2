import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLOSE, CLOSE_FOR, closeCodeFor } from '../../collector/close-codes';
import { ERROR_CODES, type ErrorCode } from '../../shared/errors';

interface Row {
  code: number;
  name: string;
  errors: string[];
}

/** The rows of the table under "## Close codes" in docs/protocol.md: code | name | error codes | when. */
function documentedCloseCodes(): Row[] {
  const doc = readFileSync(join(__dirname, '../../docs/protocol.md'), 'utf8');
  const section = doc.split(/^## /m).find((s) => s.startsWith('Close codes\n'));
  if (!section) throw new Error('docs/protocol.md has no "## Close codes" section');
  const rows = section
    .split('\n')
    .filter((line) => /^\|\s*\d+\s*\|/.test(line))
    .map((line) => line.split('|').map((cell) => cell.trim()));
  return rows.map((cells) => {
    if (cells.length !== 6) throw new Error(`a close-code row needs 4 cells: ${cells.join('|')}`);
    return { code: Number(cells[1]), name: cells[2]!, errors: [...cells[3]!.matchAll(/`(INV_ERR_[A-Z0-9_]+)`/g)].map((m) => m[1]!) };
  });
}

/** docs/protocol.md's close-code table and collector/close-codes.ts say the same, row by row, so they cannot drift apart. */
describe('the close-code table in docs/protocol.md', () => {
  const rows = documentedCloseCodes();

  it('has one row per close code, with its number and name', () => {
    expect(rows.map((r) => [r.code, r.name]).sort()).toEqual(
      Object.entries(CLOSE)
        .map(([name, code]) => [code, name])
        .sort(),
    );
  });

  it.each(documentedCloseCodes().map((r) => [r.code, r.name, r] as const))('row %i %s lists exactly the error codes that close with it', (code, _name, row) => {
    const mapped = Object.entries(CLOSE_FOR)
      .filter(([, c]) => c === code)
      .map(([e]) => e);
    expect([...row.errors].sort()).toEqual(mapped.sort());
    for (const e of row.errors) {
      expect(ERROR_CODES).toContain(e);
      expect(closeCodeFor(e as ErrorCode)).toBe(code);
    }
  });

  it('names every error code the socket closes with explicitly in some row', () => {
    const listed = new Set(rows.flatMap((r) => r.errors));
    expect(Object.keys(CLOSE_FOR).filter((e) => !listed.has(e))).toEqual([]);
  });
});
