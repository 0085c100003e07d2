import { PRESETS, PRESET_NAMES, preset } from '../../../shared/policy/presets';
import { citeClause, roleForGroups, settingsFor } from '../../../shared/policy/resolve';
import { validatePolicy } from '../../../shared/policy/validate';
import type { Policy } from '../../../shared/policy/schema';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const basildon = () => preset('basildon-primary') as Policy;
const carrington = () => preset('carrington-infant') as Policy;

describe('the presets', () => {
  it.each(PRESET_NAMES)('%s is a valid policy', (name) => {
    expect(validatePolicy(PRESETS[name])).toEqual({ ok: true, value: PRESETS[name] });
  });

  it.each(PRESET_NAMES)("%s quotes its school's document word for word", (name) => {
    // The source documents wrap lines and use OCR'd '|' for 'I'; compare on normalised words.
    const normalise = (s: string) => s.replace(/[|]/g, 'I').replace(/[’]/g, "'").replace(/\s+/g, ' ').trim();
    const file = name === 'basildon-primary' ? 'basildon-primary-ict-aup.txt' : 'carrington-infant-ict-policy.txt';
    const source = normalise(readFileSync(join(__dirname, '../../../docs/school-policies', file), 'utf8').replace(/<[^>]+>/g, ' '));
    for (const [id, clause] of Object.entries(PRESETS[name]!.clauses)) {
      for (const fragment of clause.quote.split(' ... ')) {
        expect({ id, found: source.includes(normalise(fragment).replace(/\.$/, '')) }).toEqual({ id, found: true });
      }
    }
  });

  it('basildon-primary allows encrypted sticks, limits a login to two devices and forbids hacking tools', () => {
    const p = basildon();
    expect(settingsFor(p, 'usbStorage', 'pupil').mode).toBe('allow-encrypted');
    expect(settingsFor(p, 'loginLimit', 'pupil').maxDevices).toBe(2);
    expect(settingsFor(p, 'software', 'pupil').categories['hacking-tool']?.action).toBe('terminate');
    expect(settingsFor(p, 'usbDevices', 'pupil').otherClasses).toBe('block');
    expect(citeClause(p, settingsFor(p, 'loginLimit', 'staff').clause).quote).toMatch(/more than two school devices/);
  });

  it('carrington-infant blocks all USB storage for every role and runs only approved programmes', () => {
    const p = carrington();
    for (const role of p.roles.definitions.map((r) => r.id)) expect(settingsFor(p, 'usbStorage', role).mode).toBe('block-all');
    expect(settingsFor(p, 'software', 'pupil').mode).toBe('allowlist');
    expect(settingsFor(p, 'software', 'pupil').categories['personal-cloud-storage']?.action).toBe('terminate');
    expect(settingsFor(p, 'software', 'pupil').downloads.action).toBe('quarantine');
    expect(settingsFor(p, 'software', 'staff').downloads.action).toBe('report');
  });

  it('hands out copies, so a caller cannot change a preset', () => {
    const copy = basildon();
    copy.usbStorage.default.mode = 'audit';
    expect(basildon().usbStorage.default.mode).toBe('allow-encrypted');
  });
});

describe('roles', () => {
  it('maps OS groups to roles, first definition first, ignoring case and directory prefixes', () => {
    const p = basildon();
    expect(roleForGroups(p, ['Domain Users', 'BASILDON\\Staff'])).toBe('staff');
    expect(roleForGroups(p, ['PUPILS'])).toBe('pupil');
    expect(roleForGroups(p, ['pupils', 'staff'])).toBe('staff');
    expect(roleForGroups(p, ['nobody-knows'])).toBe('pupil');
  });

  it('overrides only the fields a role names', () => {
    const p = basildon();
    const staff = settingsFor(p, 'logoff', 'staff');
    expect(staff.idle?.afterMinutes).toBe(30);
    expect(staff.clause).toBe('bps-logging-off');
    expect(settingsFor(p, 'logoff', 'pupil').idle?.afterMinutes).toBe(15);
  });
});

describe('validating a policy with several mistakes', () => {
  it('reports one coded error per mistake, each with its JSON path', () => {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the test breaks the policy on purpose
    const p = basildon() as unknown as Record<string, any>;
    p.usbStorage.default.mode = 'allow-everything';
    p.loginLimit.default.maxDevices = 0;
    p.logoff.default.endOfDay.time = '25:00';
    p.colour = 'blue';
    delete p.school;
    const result = validatePolicy(p);
    expect(result.ok ? [] : result.problems.map((x) => [x.code, x.path])).toEqual(
      expect.arrayContaining([
        ['INV_ERR_SCHEMA_VALUE', '$.usbStorage.default.mode'],
        ['INV_ERR_SCHEMA_RANGE', '$.loginLimit.default.maxDevices'],
        ['INV_ERR_SCHEMA_FORMAT', '$.logoff.default.endOfDay.time'],
        ['INV_ERR_SCHEMA_UNKNOWN_FIELD', '$.colour'],
        ['INV_ERR_SCHEMA_REQUIRED', '$.school'],
      ]),
    );
    expect(result.ok ? 0 : result.problems.length).toBe(5);
  });

  it('finds references the schema cannot see: unknown clauses and roles, duplicate ids', () => {
    const p = basildon();
    p.usbStorage.default.clause = 'no-such-clause';
    p.software.roles = { ...p.software.roles, wizard: { mode: 'audit' } };
    p.roles.definitions.push({ id: 'staff', label: 'Staff again', groups: [] });
    const result = validatePolicy(p);
    expect(result.ok ? [] : result.problems.map((x) => [x.code, x.path])).toEqual([
      ['INV_ERR_POLICY_DUPLICATE', '$.roles.definitions[6].id'],
      ['INV_ERR_POLICY_UNKNOWN_CLAUSE', '$.usbStorage.default.clause'],
      ['INV_ERR_POLICY_UNKNOWN_ROLE', '$.software.roles.wizard'],
    ]);
  });
});
