#!/usr/bin/env node
// Regenerates sdk/js/types/wit/ from wit/ (`npm run types` in sdk/js). The
// test `types.test.mjs` fails while the committed files differ from these.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { generateWitTypes } from '../lib/types.js';

const out = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'types', 'wit');
const files = await generateWitTypes();
rmSync(out, { recursive: true, force: true });
for (const [name, text] of Object.entries(files)) {
  mkdirSync(dirname(join(out, name)), { recursive: true });
  writeFileSync(join(out, name), text);
  console.error(`wrote ${join(out, name)}`);
}

// The SDK's own declarations, from the JSDoc in src/index.js.
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
const sdk = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
execFileSync(process.execPath, [tsc, '-p', join(sdk, 'tsconfig.types.json')], { stdio: 'inherit' });
console.error(`wrote ${join(sdk, 'types', 'index.d.ts')}`);
