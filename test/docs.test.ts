import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLOSE } from '../collector/close-codes';
import { ERROR_CODES } from '../shared/errors';
import { policySchema } from '../shared/policy/schema';
import { AGENT_TO_COLLECTOR, AGENT_TO_TRAY, COLLECTOR_TO_AGENT, EVENT_TYPES, TRAY_TO_AGENT } from '../shared/protocol';

/** Docs stay true: what the code defines, the docs name. */
const doc = (name: string) => readFileSync(join(__dirname, '../docs', name), 'utf8');
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** A markdown table row starting with these cells, however Prettier pads them. */
const row = (...cells: string[]) => new RegExp(`^\\|\\s*${cells.map(escape).join('\\s*\\|\\s*')}\\s*\\|`, 'm');

describe('docs/protocol.md', () => {
  const protocol = doc('protocol.md');
  const messageTypes = [...AGENT_TO_COLLECTOR, ...COLLECTOR_TO_AGENT, ...TRAY_TO_AGENT, ...AGENT_TO_TRAY].map((m) => m.shape.type.value);

  it.each(messageTypes)('documents the %s message with an example', (type) => {
    expect(protocol).toContain(`#### \`${type}\``);
    expect(protocol).toMatch(new RegExp(`"type": ?"${type.replace('.', '\\.')}"`));
  });
  it.each(EVENT_TYPES)('documents the %s event', (type) => expect(protocol).toMatch(row(`\`${type}\``)));
  it.each(ERROR_CODES)('documents %s', (code) => expect(protocol).toContain(`\`${code}\``));
  it.each(Object.entries(CLOSE))('documents close code %s (%i)', (name, code) => expect(protocol).toMatch(row(String(code), name)));
});

describe('docs/policy.md', () => {
  const policy = doc('policy.md');
  it.each(Object.keys(policySchema.shape))('documents the top-level field %s', (field) => expect(policy).toContain(`\`${field}\``));

  const sections = ['usbStorage', 'usbDevices', 'loginLimit', 'logoff', 'software'] as const;
  const fields = sections.flatMap((s) => Object.keys(policySchema.shape[s].shape.default.shape).map((f) => [s, f] as const));
  it.each(fields)('documents %s.%s', (_section, field) => expect(policy).toContain(`\`${field}\``));
});
