'use strict';
/**
 * Keeps the runtimes apart: the folder a file is in says where it runs, and so
 * what it may import. `shared/` runs everywhere (Node, Electron, a sandboxed
 * page), so it imports no Node module, no Electron and no other program's code.
 * No program reaches into another program's folder: what two programs share
 * lives in `shared/` (plain TypeScript) or `node-common/` (Node only).
 * Inside the agent, `agent/os/` (the OS plumbing every capability shares: the
 * command runner, the PowerShell session, plist) imports no capability, so
 * any capability may use it; `agent/core/` (what capabilities share: notices,
 * events, the roster and the sessions contract it reads) imports only the OS
 * plumbing besides itself. A layer is the longest folder prefix named here.
 */
const path = require('node:path');
const { builtinModules } = require('node:module');

const NODE_BUILTINS = new Set(builtinModules);

/** For each layer: the layers it may import from, whether Node built-ins and Electron are allowed, and which packages (undefined: any). */
const LAYERS = {
  shared: { may: ['shared'], node: false, electron: false, packages: ['zod'] },
  'node-common': { may: ['shared', 'node-common'], node: true, electron: false },
  agent: { may: ['shared', 'node-common', 'agent', 'agent/core', 'agent/os'], node: true, electron: false },
  'agent/core': { may: ['shared', 'node-common', 'agent/core', 'agent/os'], node: true, electron: false },
  'agent/os': { may: ['shared', 'node-common', 'agent/os'], node: true, electron: false },
  collector: { may: ['shared', 'node-common', 'collector'], node: true, electron: false },
  cli: { may: ['shared', 'node-common', 'agent', 'agent/core', 'agent/os', 'collector', 'cli'], node: true, electron: false },
  installer: { may: ['shared', 'node-common', 'installer'], node: true, electron: false },
  'tray-ui/main': { may: ['shared', 'tray-ui/main'], node: true, electron: true },
  'tray-ui/preload': { may: ['shared', 'tray-ui/preload'], node: false, electron: true },
  'tray-ui/renderer': { may: ['shared', 'tray-ui/renderer'], node: false, electron: false },
};

/** The layer of a repository-relative path (the longest layer folder it is inside), or undefined for code that may import anything (tests, benchmarks, tooling). */
function layerOf(relPath) {
  const parts = relPath.split(/[\\/]/);
  for (let n = parts.length - 1; n > 0; n--) {
    const folder = parts.slice(0, n).join('/');
    if (LAYERS[folder]) return folder;
  }
  return undefined;
}

function packageName(specifier) {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

function isNodeBuiltin(specifier) {
  return specifier.startsWith('node:') || NODE_BUILTINS.has(specifier) || NODE_BUILTINS.has(packageName(specifier));
}

/** @type {import('eslint').Rule.RuleModule} */
module.exports = {
  meta: {
    type: 'problem',
    docs: { description: 'keep runtimes apart: each folder imports only what runs where it runs' },
    schema: [{ type: 'object', properties: { root: { type: 'string' } }, additionalProperties: false }],
    messages: {
      node: '{{layer}} runs where Node is not available: it must not import "{{specifier}}".',
      electron: '{{layer}} must not import Electron ("{{specifier}}").',
      upward: '{{layer}} must not import from {{target}} ("{{specifier}}"); move what both need into shared/ or node-common/.',
      package: '{{layer}} may import only {{allowed}}, not "{{specifier}}".',
    },
  },
  create(context) {
    const root = (context.options[0] && context.options[0].root) || context.cwd;
    const filename = context.filename;
    const layer = layerOf(path.relative(root, filename));
    if (!layer) return {};
    const rules = LAYERS[layer];

    function check(node, specifier) {
      if (typeof specifier !== 'string') return;
      const data = { layer: `${layer}/`, specifier };
      if (specifier.startsWith('.')) {
        const target = layerOf(path.relative(root, path.resolve(path.dirname(filename), specifier)));
        if (target && !rules.may.includes(target)) context.report({ node, messageId: 'upward', data: { ...data, target: `${target}/` } });
        return;
      }
      if (isNodeBuiltin(specifier)) {
        if (!rules.node) context.report({ node, messageId: 'node', data });
        return;
      }
      if (packageName(specifier) === 'electron') {
        if (!rules.electron) context.report({ node, messageId: 'electron', data });
        return;
      }
      if (rules.packages && !rules.packages.includes(packageName(specifier))) {
        context.report({ node, messageId: 'package', data: { ...data, allowed: rules.packages.join(', ') } });
      }
    }

    const sourceOf = (node) => node.source && node.source.value;
    return {
      ImportDeclaration: (node) => check(node, sourceOf(node)),
      ExportNamedDeclaration: (node) => node.source && check(node, sourceOf(node)),
      ExportAllDeclaration: (node) => check(node, sourceOf(node)),
      ImportExpression: (node) => node.source.type === 'Literal' && check(node, node.source.value),
      TSImportEqualsDeclaration: (node) => node.moduleReference.type === 'TSExternalModuleReference' && check(node, node.moduleReference.expression.value),
      CallExpression(node) {
        if (node.callee.type === 'Identifier' && node.callee.name === 'require' && node.arguments[0] && node.arguments[0].type === 'Literal')
          check(node, node.arguments[0].value);
      },
    };
  },
  LAYERS,
  layerOf,
};
