// The committed TypeScript declarations are the ones generated from wit/
// and src/index.js, and the SDK and the example skill type-check against them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

import { generateWitTypes } from '../lib/types.js';
import { SDK_DIR } from '../lib/wit.js';

test('types/wit/ is what jco generates from wit/ today', async () => {
  const files = await generateWitTypes();
  assert.deepEqual(Object.keys(files), ['interfaces/agentsec-skill-secrets.d.ts', 'skill.d.ts']);
  for (const [name, text] of Object.entries(files)) {
    const committed = readFileSync(join(SDK_DIR, 'types', 'wit', name), 'utf8');
    assert.equal(committed, text, `types/wit/${name} is stale: run \`npm run types\` in sdk/js`);
  }
  const secrets = files['interfaces/agentsec-skill-secrets.d.ts'];
  assert.match(secrets, /export function getSecret\(path: string\): string;/);
  assert.match(secrets, /tag: 'not-found'/);
});

test('the SDK and js-release-notes type-check against the generated types', () => {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  // Throws, with tsc's diagnostics, on any type error.
  execFileSync(process.execPath, [tsc, '-p', join(SDK_DIR, 'tsconfig.json')], { encoding: 'utf8' });
  // types/index.d.ts is what tsc emits from src/index.js's JSDoc.
  execFileSync(process.execPath, [tsc, '-p', join(SDK_DIR, 'tsconfig.types.json'), '--outDir', join(SDK_DIR, 'node_modules', '.types-check')]);
  assert.equal(
    readFileSync(join(SDK_DIR, 'node_modules', '.types-check', 'index.d.ts'), 'utf8'),
    readFileSync(join(SDK_DIR, 'types', 'index.d.ts'), 'utf8'),
    'types/index.d.ts is stale: run `npm run types` in sdk/js',
  );
});
