#!/usr/bin/env node
// Builds a JavaScript skill into an agentsec component:
//
//     node sdk/js/build.mjs example-skills/js-release-notes -o OUT/js_release_notes.wasm
//
// SKILL is a directory (entry: package.json "main", else index.js) or an
// entry file. Works offline once `npm ci` has run in sdk/js. Exit codes: 0
// built, 1 the build failed (the message names the file and line), 2 usage.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';

import { buildSkill } from './lib/build.js';
import { SourceError } from './lib/scan.js';

const USAGE = 'usage: node sdk/js/build.mjs SKILL_DIR|ENTRY.js -o OUT.wasm [--wit WIT_DIR]';

let args;
try {
  args = parseArgs({
    allowPositionals: true,
    options: { out: { type: 'string', short: 'o' }, wit: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
} catch (e) {
  console.error(`build.mjs: ${e.message}\n${USAGE}`);
  process.exit(2);
}
if (args.values.help) {
  console.log(USAGE);
  process.exit(0);
}
if (args.positionals.length !== 1 || !args.values.out) {
  console.error(`build.mjs: name one skill and the output file\n${USAGE}`);
  process.exit(2);
}

const started = process.hrtime.bigint();
const out = resolve(args.values.out);
try {
  const { component, needs } = await buildSkill(args.positionals[0], { wit: args.values.wit });
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, component);
  const secs = Number(process.hrtime.bigint() - started) / 1e9;
  const mb = (component.length / (1024 * 1024)).toFixed(1);
  const declared = needs.length ? `; needs: ${needs.join(', ')}` : '; no needs declared';
  console.error(`built ${args.values.out} (${mb} MiB) in ${secs.toFixed(1)} s${declared}`);
} catch (e) {
  console.error(`build.mjs: ${e instanceof SourceError ? e.message : e.stack ?? e}`);
  process.exit(1);
}
