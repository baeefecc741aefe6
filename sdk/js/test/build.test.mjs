// The build: a real componentize run of js-release-notes (about 15 s), and
// the CLI's refusals, which come before componentize.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { componentWit } from '@bytecodealliance/jco-transpile/wasm-tools';

import { buildSkill } from '../lib/build.js';
import { NEEDS_SECTION, topLevelCustomSections } from '../lib/section.js';
import { SDK_DIR } from '../lib/wit.js';

const EXAMPLE = join(SDK_DIR, '..', '..', 'example-skills', 'js-release-notes');
const BUILD = join(SDK_DIR, 'build.mjs');

test('js-release-notes builds to a component with its needs and only granted imports', async () => {
  const { component, needs, modules } = await buildSkill(EXAMPLE);
  assert.deepEqual(needs, ['communication.github.token']);
  assert.deepEqual(modules, ['index.js']);
  const sections = topLevelCustomSections(component).filter((s) => s.name === NEEDS_SECTION);
  assert.equal(sections.length, 1);
  assert.equal(new TextDecoder().decode(sections[0].data), 'communication.github.token\n');

  const world = await componentWit(component);
  const imports = [...world.matchAll(/^\s*import ([^;]+);/gm)].map((m) => m[1]);
  assert.ok(imports.includes('agentsec:skill/secrets@0.1.0'), world);
  for (const name of imports) {
    // What agentsec-run links: WASI p2 (no http; sockets are linked but no
    // network is granted, and the SDK needs none) and the secrets interface.
    assert.match(name, /^(agentsec:skill\/secrets|wasi:(io|clocks|cli|filesystem|random)\/)/, name);
  }
  assert.match(world, /export run: func\(input: string\) -> result<string, string>;/);
});

function cli(...args) {
  return spawnSync(process.execPath, [BUILD, ...args], { encoding: 'utf8' });
}

test('the CLI refuses misuse (exit 2) and unreadable needs (exit 1, file:line)', (t) => {
  const usage = cli(EXAMPLE);
  assert.equal(usage.status, 2);
  assert.match(usage.stderr, /usage: node sdk\/js\/build\.mjs SKILL_DIR\|ENTRY\.js -o OUT\.wasm/);
  assert.equal(cli('--bogus').status, 2);

  const dir = mkdtempSync(join(tmpdir(), 'agentsec-js-cli-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(
    join(dir, 'index.js'),
    "import { needs, skill } from 'agentsec-skill';\nconst p = 'a.b';\nneeds(p);\nexport const run = skill(() => '');\n",
  );
  const bad = cli(dir, '-o', join(dir, 'out.wasm'));
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /^build\.mjs: index\.js:3:7: needs\(\) takes string literals only/);

  writeFileSync(join(dir, 'index.js'), "import { needs } from 'agentsec-skill';\nneeds('a\\u0007b');\n");
  const control = cli(dir, '-o', join(dir, 'out.wasm'));
  assert.equal(control.status, 1);
  assert.match(control.stderr, /index\.js:2:7: declared need "a\\u0007b" holds a control character/);

  const missing = cli(join(dir, 'nope'), '-o', join(dir, 'out.wasm'));
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /nope: no such file or directory/);
});
