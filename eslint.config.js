// @ts-check
const js = require('@eslint/js');
const tseslint = require('typescript-eslint');
const prettier = require('eslint-config-prettier');
const globals = require('globals');
const layers = require('./eslint-rules/layers');

/** Globals that tie code to one runtime: `shared/` may use none of them. */
const RUNTIME_GLOBALS = [
  'window',
  'document',
  'navigator',
  'location',
  'localStorage',
  'sessionStorage',
  'HTMLElement',
  'fetch',
  'process',
  'Buffer',
  'require',
  '__dirname',
  '__filename',
  'global',
  'setImmediate',
].map((name) => ({
  name,
  message: 'shared/ runs in Node, Electron and pages alike: use no runtime-specific global.',
}));

/**
 * Type-aware rules need every file in a TypeScript project. The layer tests lint
 * fixture text as though it sat at a path that does not exist, so they switch
 * type information off; everything else about the configuration is the same.
 */
const typeAware = process.env.INVIGILATOR_LINT_WITHOUT_TYPES !== '1';

module.exports = tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'data/', 'coverage/', 'bench/results/', 'test/fixtures/lint/', 'test/.cache/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: typeAware ? { projectService: true, tsconfigRootDir: __dirname } : {} },
    plugins: { invigilator: { rules: { layers } } },
    rules: {
      'invigilator/layers': ['error', { root: __dirname }],
      ...(typeAware
        ? {
            '@typescript-eslint/no-floating-promises': 'error',
            '@typescript-eslint/no-misused-promises': 'error',
            '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: false }],
          }
        : {}),
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-syntax': [
        'error',
        { selector: "CallExpression[callee.property.name='only'][callee.object.name=/^(it|test|describe)$/]", message: 'no focused tests' },
      ],
    },
  },
  { files: ['shared/**/*.ts'], rules: { 'no-restricted-globals': ['error', ...RUNTIME_GLOBALS] } },
  // The tray's windows run in a browser page (Chromium, sandboxed): browser globals, still no Node.
  { files: ['tray-ui/renderer/**/*.ts'], languageOptions: { globals: globals.browser } },
  {
    files: ['**/*.js'],
    languageOptions: {
      sourceType: 'commonjs',
      globals: globals.node,
    },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  prettier,
);
