// @ts-check
/*
 * Lint rules of the whole repository (apps/, libs/, test/, bench/). Besides the usual TypeScript checks it
 * enforces the server's architecture: no import cycles anywhere, and the server's modules (the folders of
 * apps/server/src) depend on each other in one direction only, each through its facade `index.ts`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import prettier from 'eslint-config-prettier';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';
import importX from 'eslint-plugin-import-x';
import globals from 'globals';
import tseslint from 'typescript-eslint';

const ROOT = path.dirname(fileURLToPath(import.meta.url));
const SERVER_SRC = 'apps/server/src';

/*
 * THE SERVER'S LAYERS, top to bottom: the one list to edit when a module is added or moves.
 *
 * Each entry is a folder (a module, whose facade is its index.ts) or a single file of apps/server/src. A module
 * may import only modules of the layers BELOW its own: never one above it, and never one beside it in the
 * same layer (that would be the first half of a cycle). Outside a module, only its facade `index.ts` may be
 * imported; a module's other files are its internals. Spec files beside the code follow the layers too but
 * may reach into internals; test/, bench/ and libs/test-kit are not restricted.
 */
const SERVER_LAYERS = [
  ['main.ts', 'token-digest.command.ts'],
  ['bootstrap.ts'],
  ['app.module.ts'],
  ['rpc', 'health'],
  ['queue', 'live-session'],
  ['delivery'],
  ['push'],
  ['session-registry', 'pubsub'],
  ['database', 'redis'],
  ['config', 'metrics', 'lifecycle', 'json-lines.logger.ts'],
];

const layerEntries = SERVER_LAYERS.flat();
const modules = layerEntries.filter((entry) => !entry.endsWith('.ts'));
/** @param {string} entry a folder or file of apps/server/src */
const serverPath = (entry) => `${SERVER_SRC}/${entry}`;

// A folder or file created in apps/server/src but missing from the list would be bound by no layer at all.
const unlisted = fs
  .readdirSync(path.join(ROOT, SERVER_SRC), { withFileTypes: true })
  .filter(
    (dirent) =>
      (dirent.isDirectory() || (dirent.name.endsWith('.ts') && !dirent.name.endsWith('.spec.ts'))) && !layerEntries.includes(dirent.name),
  )
  .map((dirent) => dirent.name);
if (unlisted.length > 0) {
  throw new Error(`eslint.config.mjs: add ${unlisted.map((name) => `${SERVER_SRC}/${name}`).join(', ')} to SERVER_LAYERS`);
}

/** For every entry: it may not import any entry of its own layer or of a layer above it. */
const layerZones = SERVER_LAYERS.flatMap((layer, index) => {
  const notBelow = SERVER_LAYERS.slice(0, index + 1).flat();
  const below = SERVER_LAYERS.slice(index + 1).flat();
  return layer.map((entry) => ({
    target: serverPath(entry),
    from: notBelow.filter((other) => other !== entry).map(serverPath),
    message: `Server layers: ${entry} may import ${below.length > 0 ? `only ${below.join(', ')}` : 'no other module'} (see SERVER_LAYERS in eslint.config.mjs).`,
  }));
}).filter((zone) => zone.from.length > 0);

/** For every module: from anywhere else in apps/server/src, only its facade index.ts may be imported. */
const facadeZones = modules.map((module) => ({
  target: [serverPath('*.ts'), serverPath(`!(${module})/**`)],
  from: serverPath(module),
  except: ['./index.ts'],
  message: `Import the ${module} module through its facade (${serverPath(module)}/index.ts), not its internals.`,
}));

/** Shipped code never imports the tests, the benchmark or the test kit; no library imports the server. */
const SHIPPED = [SERVER_SRC, 'libs/!(test-kit)/**'];
const TEST_CODE = ['test', 'bench', 'libs/test-kit'];
const shippedZones = [
  { target: SHIPPED, from: TEST_CODE, message: 'Shipped code may not import test/, bench/ or libs/test-kit.' },
  { target: 'libs', from: 'apps', message: 'The libraries may not import the server.' },
];
// Spec files beside the code are tests: they may use the test kit.
const specShippedZones = shippedZones.slice(1);

const TS_FILES = ['**/*.ts'];
/** Where test/lint/import-rules.spec.ts writes its short-lived import-cycle probes (no tsconfig covers them). */
const LINT_PROBES = 'test/lint/.cycle-probe-*/**';

export default defineConfig(
  {
    ignores: ['**/dist/**', '**/node_modules/**', 'coverage/**', '**/.data/**', 'bench/results/**'],
  },
  js.configs.recommended,
  {
    files: ['**/*.js'],
    languageOptions: { sourceType: 'commonjs', globals: globals.node },
  },
  {
    files: ['**/*.mjs'],
    languageOptions: { sourceType: 'module', globals: globals.node },
  },
  {
    files: TS_FILES,
    extends: [tseslint.configs.recommended],
    languageOptions: {
      // Types for the promise rules below: each file is checked against the tsconfig.json that covers it.
      parserOptions: { projectService: true, tsconfigRootDir: ROOT },
    },
    plugins: { 'import-x': importX },
    settings: {
      // The tsconfig's "paths" map @didcomm-mpr/* to libs/*/src, so imports of the libraries resolve to source.
      'import-x/resolver-next': [createTypeScriptImportResolver({ project: path.join(ROOT, 'tsconfig.json') })],
      // Without these, import-x parses no .ts file it resolves, and no-cycle silently finds nothing.
      'import-x/extensions': ['.ts', '.js'],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts'] },
      'import-x/external-module-folders': ['node_modules', 'node_modules/@types'],
    },
    rules: {
      // Type-only imports are left out (they vanish from the emitted JavaScript); every other cycle fails.
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
      // A leading underscore marks a name that is unused on purpose: a parameter an interface or a framework
      // hook requires (`afterInit(_server)`, a no-op adapter), or a property destructured away from a rest.
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' },
      ],
      // The few type-aware rules worth their cost here: a promise nobody awaits or handles becomes an
      // unhandled rejection, which ends the Node process. (The rest of the type-checked preset was mostly
      // noise on this code; with these three a full run takes about 15 s on 2 cores instead of 5 s.)
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      // `Promise.all(sessions.map((s) => (held ? undefined : unsubscribe(s))))` is a deliberate idiom here;
      // an iterable with no promise at all is still reported.
      '@typescript-eslint/await-thenable': ['error', { allowMixedPromiseArrays: true }],
    },
  },
  {
    files: [LINT_PROBES],
    extends: [tseslint.configs.disableTypeChecked],
  },
  {
    files: [`${SERVER_SRC}/**/*.ts`, 'libs/**/*.ts'],
    ignores: ['**/*.spec.ts'],
    rules: {
      'import-x/no-restricted-paths': ['error', { basePath: ROOT, zones: [...layerZones, ...facadeZones, ...shippedZones] }],
    },
  },
  {
    files: [`${SERVER_SRC}/**/*.spec.ts`, 'libs/**/*.spec.ts'],
    rules: {
      'import-x/no-restricted-paths': ['error', { basePath: ROOT, zones: [...layerZones, ...specShippedZones] }],
    },
  },
  // Last: turns off every stylistic rule that Prettier owns.
  prettier,
);
