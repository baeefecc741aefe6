// Reading needs() and imports from a skill's sources.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { SourceError, rewriteSpecifiers, scanGraph, scanModule } from '../lib/scan.js';
import { resolveEntry } from '../lib/build.js';

test('needs() calls at the top level are read, under any local name', () => {
  const src = [
    "import { needs, getSecret } from 'agentsec-skill';",
    "import { needs as declare } from 'agentsec-skill';",
    "import * as sdk from 'agentsec-skill';",
    "needs('a.b', `c.*.d`);",
    "declare('e.f');",
    "sdk.needs('g.h');",
    'export const run = () => sdk.getSecret("a.b") && getSecret("x");',
    'const o = { needs: 1 }; o.needs;',
  ].join('\n');
  const scan = scanModule('m.js', src);
  assert.deepEqual(scan.needs.map((n) => n.path), ['a.b', 'c.*.d', 'e.f', 'g.h']);
  assert.equal(scan.needs[2].where, 'm.js:5:9');
  assert.equal(scan.sdkSpecifiers.length, 3);
  const rewritten = rewriteSpecifiers(src, scan.sdkSpecifiers, '../sdk/index.js');
  assert.equal(rewritten.match(/"\.\.\/sdk\/index\.js"/g).length, 3);
  assert.ok(!rewritten.includes("'agentsec-skill'"));
});

test('needs() the build could not read is a build error naming the line', () => {
  const head = "import { needs } from 'agentsec-skill';\n";
  const bad = {
    'needs(path);': /m\.js:2:7: needs\(\) takes string literals only/,
    'needs(`a.${x}`);': /string literals only/,
    'needs();': /declares nothing/,
    "if (x) needs('a');": /m\.js:2:8: needs\(\) must be called as a statement at the top level/,
    "function f() { needs('a'); }": /top level/,
    'const n = needs;': /top level/,
  };
  for (const [line, message] of Object.entries(bad)) {
    assert.throws(() => scanModule('m.js', head + line), (e) => e instanceof SourceError && message.test(e.message), line);
  }
  assert.throws(
    () => scanModule('m.js', "import * as sdk from 'agentsec-skill';\nconst s = sdk;"),
    /namespace may only be used as `sdk.member`/,
  );
  assert.throws(
    () => scanModule('m.js', "export { needs } from 'agentsec-skill';"),
    /re-exporting from 'agentsec-skill' is not supported/,
  );
  assert.throws(() => scanModule('m.js', "import x from 'lodash';"), /m\.js:1:15: cannot import 'lodash'/);
  assert.throws(() => scanModule('m.js', 'export const = ;'), /m\.js:1:\d+: cannot parse/);
});

test('the graph follows relative imports and stays in the skill directory', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'agentsec-js-test-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'lib'));
  writeFileSync(join(dir, 'package.json'), '{"main": "main.mjs"}');
  writeFileSync(
    join(dir, 'main.mjs'),
    "import { needs } from 'agentsec-skill';\nimport { x } from './lib/x.js';\nneeds('a.b');\nexport const run = () => x;\n",
  );
  writeFileSync(
    join(dir, 'lib', 'x.js'),
    "import { needs } from 'agentsec-skill';\nexport * from './y.js';\nneeds('c.d', 'a.b');\nexport const x = 1;\n",
  );
  writeFileSync(join(dir, 'lib', 'y.js'), 'export const y = 2;\n');
  const { root, entry } = resolveEntry(dir);
  assert.equal(entry, join(dir, 'main.mjs'));
  const graph = scanGraph(root, entry);
  assert.deepEqual([...graph.values()].map((m) => m.rel).sort(), ['lib/x.js', 'lib/y.js', 'main.mjs']);
  assert.deepEqual([...graph.values()].flatMap((m) => m.needs.map((n) => n.path)).sort(), ['a.b', 'a.b', 'c.d']);

  writeFileSync(join(dir, 'lib', 'y.js'), "import '../../outside.js';\n");
  assert.throws(() => scanGraph(root, entry), /lies outside the skill directory/);
  writeFileSync(join(dir, 'lib', 'y.js'), "import './missing.js';\n");
  assert.throws(() => scanGraph(root, entry), /cannot read .*missing\.js: ENOENT/);
  assert.throws(() => resolveEntry(join(dir, 'nope')), /no such file or directory/);
});
