import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = join(__dirname, '../..');
const eslintBin = join(root, 'node_modules/eslint/bin/eslint.js');
const fixture = (name: string) => readFileSync(join(root, 'test/fixtures/lint', name), 'utf8');

/** Runs the real ESLint with the project's configuration on a fixture, as though the fixture lived at `asPath`. */
function layerMessages(name: string, asPath: string): string[] {
  const run = spawnSync(process.execPath, [eslintBin, '--stdin', '--stdin-filename', asPath, '--format', 'json'], {
    cwd: root,
    input: fixture(name),
    encoding: 'utf8',
    env: { ...process.env, INVIGILATOR_LINT_WITHOUT_TYPES: '1' },
  });
  if (run.status !== 0 && run.status !== 1) throw new Error(`eslint failed to run: ${run.stderr}`);
  const [result] = JSON.parse(run.stdout) as Array<{ messages: Array<{ ruleId: string | null; message: string }> }>;
  return (result?.messages ?? [])
    .filter((m) => m.ruleId === 'invigilator/layers' || m.ruleId === 'no-restricted-globals')
    .map((m) => `${m.ruleId}: ${m.message}`);
}

describe('the layer rule', () => {
  it.each([
    ['shared-imports-node.ts', 'shared/violation.ts', /invigilator\/layers: shared\/ runs where Node is not available: it must not import "node:fs"/],
    ['agent-imports-electron.ts', 'agent/violation.ts', /invigilator\/layers: agent\/ must not import Electron/],
    ['agent-imports-collector.ts', 'agent/violation.ts', /invigilator\/layers: agent\/ must not import from collector\//],
    ['renderer-requires-child-process.ts', 'tray-ui/renderer/notice/violation.ts', /invigilator\/layers: tray-ui\/renderer\/ .* "child_process"/],
    ['shared-uses-document.ts', 'shared/violation.ts', /no-restricted-globals: .*document/],
    ['core-imports-capability.ts', 'agent/core/violation.ts', /invigilator\/layers: agent\/core\/ must not import from agent\/ \("..\/sessions\/roles"\)/],
    ['os-imports-capability.ts', 'agent/os/violation.ts', /invigilator\/layers: agent\/os\/ must not import from agent\/ \("..\/usb\/usb-guard"\)/],
    [
      'os-win32-imports-capability.ts',
      'agent/os/win32/violation.ts',
      /invigilator\/layers: agent\/os\/ must not import from agent\/ \("..\/..\/software\/software-guard"\)/,
    ],
  ])('fires on %s placed at %s', (name, asPath, expected) => {
    expect(layerMessages(name, asPath)).toEqual([expect.stringMatching(expected)]);
  });

  it('stays quiet on a file that keeps to its layer', () => {
    expect(layerMessages('shared-clean.ts', 'shared/clean.ts')).toEqual([]);
  });

  it('lets a capability import the OS plumbing, and the composition root too', () => {
    expect(layerMessages('capability-imports-os.ts', 'agent/usb/clean.ts')).toEqual([]);
    expect(layerMessages('capability-imports-os.ts', 'agent/clean.ts')).toEqual([]);
    expect(layerMessages('capability-imports-core.ts', 'agent/sessions/clean.ts')).toEqual([]);
  });

  it('lets tests import anything', () => {
    expect(layerMessages('agent-imports-electron.ts', 'test/anything.ts')).toEqual([]);
  });
});
