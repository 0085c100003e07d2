import { ERRORS, InvigilatorError } from '../../../../shared/errors';
import { EVENT_DATA } from '../../../../shared/protocol/events';
import {
  INVENTORY_TEXT_MAX,
  type InventorySnapshot,
  type InventorySource,
  MAX_PROGRAMS_PER_SOURCE,
  programKey,
} from '../../../../agent/software/installed/inventory-source';

/**
 * What the inventory keeper (and so the collector's `software` table)
 * relies on from every OS's reader:
 * - `ordinary`: the computer as it is; its sources include text nobody
 *   should trust where the OS allows that (a user's uninstall key, an app's
 *   Info.plist);
 * - `one-unreadable`: one source cannot be read this time (it fails, or
 *   holds more than a source may): the rest is still read;
 * - `nothing-readable`: the OS command or folder fails outright.
 */
export type InventoryScenario = 'ordinary' | 'one-unreadable' | 'nothing-readable';

export interface InventoryRig {
  source: InventorySource;
  /** `one-unreadable`: the source that cannot be read. */
  unreadable?: string;
}

/** Controls, bidi overrides and lone surrogates: what inventoryText takes out of everything a reader passes on. */
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** What every snapshot must be, whatever the OS held: events the protocol accepts, for sources read in full, each program once. */
function expectWellFormed(snapshot: InventorySnapshot): void {
  expect(new Set(snapshot.sources).size).toBe(snapshot.sources.length);
  for (const s of snapshot.sources) expect(typeof s === 'string' && s.length > 0 && s.length <= INVENTORY_TEXT_MAX).toBe(true);
  expect(new Set(snapshot.programs.map(programKey)).size).toBe(snapshot.programs.length);
  for (const p of snapshot.programs) {
    expect(EVENT_DATA['software.installed'].safeParse(p).success).toBe(true);
    // A program is reported only from a source read in full: only those can later say it was removed.
    expect(snapshot.sources).toContain(p.source);
    for (const text of [p.name, p.version, p.publisher]) {
      if (text === undefined) continue;
      expect(text.length).toBeGreaterThan(0);
      expect(text.length).toBeLessThanOrEqual(INVENTORY_TEXT_MAX);
      expect(text).not.toMatch(UNSAFE);
    }
  }
  for (const source of snapshot.sources) expect(snapshot.programs.filter((p) => p.source === source).length).toBeLessThanOrEqual(MAX_PROGRAMS_PER_SOURCE);
  for (const u of snapshot.unread) {
    expect(u.code).toBe('INV_ERR_INVENTORY_UNREADABLE');
    expect(u.message.length).toBeLessThanOrEqual(500);
    expect(snapshot.sources).not.toContain(u.source);
  }
  if (snapshot.skipped !== undefined) expect(Number.isSafeInteger(snapshot.skipped) && snapshot.skipped >= 0).toBe(true);
}

/** Every OS's InventorySource passes this suite; `makeRig` builds a fresh reader seeing the scenario. */
export function inventorySourceContract(name: string, makeRig: (scenario: InventoryScenario) => Promise<InventoryRig>): void {
  describe(`the ${name} inventory (contract)`, () => {
    it('lists programs with their sources, every entry one the protocol accepts, each once', async () => {
      const { source } = await makeRig('ordinary');
      const snapshot = await source.list();
      expect(snapshot.sources.length).toBeGreaterThan(0);
      expect(snapshot.programs.length).toBeGreaterThan(0);
      expect(snapshot.unread).toEqual([]);
      expectWellFormed(snapshot);
    });

    it('answers the same when asked again, so the keeper reports no change where there was none', async () => {
      const { source } = await makeRig('ordinary');
      expect(await source.list()).toEqual(await source.list());
    });

    it('leaves a source it cannot read unread, with a code, and still lists the others', async () => {
      const { source, unreadable } = await makeRig('one-unreadable');
      const snapshot = await source.list();
      expectWellFormed(snapshot);
      expect(snapshot.unread.map((u) => u.source)).toEqual([unreadable]);
      expect(snapshot.sources).not.toContain(unreadable);
      expect(snapshot.programs.some((p) => p.source === unreadable)).toBe(false);
      expect(snapshot.programs.length).toBeGreaterThan(0);
    });

    it('fails with INV_ERR_INVENTORY_UNREADABLE, its message bounded, when nothing could be read', async () => {
      const { source } = await makeRig('nothing-readable');
      const error = await source.list().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(InvigilatorError);
      expect((error as InvigilatorError).code).toBe('INV_ERR_INVENTORY_UNREADABLE');
      // The catalogue's text, then at most 500 characters of detail: never a program's whole output.
      expect((error as InvigilatorError).message.length).toBeLessThanOrEqual(ERRORS.INV_ERR_INVENTORY_UNREADABLE.length + 2 + 500);
    });
  });
}
