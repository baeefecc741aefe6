// The SDK as a skill sees it (src/index.js over a fake host).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';

import * as host from './fake-host/secrets.mjs';
import {
  Denied,
  InvalidPath,
  NotFound,
  Secret,
  SecretError,
  Unavailable,
  errorText,
  getSecret,
  listSecrets,
  needs,
  skill,
} from '../src/index.js';

const PLANTED = 'ghp_hunter2-planted-value';
host.store.set('communication.github.token', PLANTED);
host.store.set('communication.slack.bot_token', 'xoxb-planted');
host.denied.add('databases.postgres.production.password');

test('a Secret never shows its value, except through expose()', () => {
  const s = getSecret('communication.github.token');
  const shown = [
    String(s),
    `${s}`,
    s + '',
    s.toString(),
    JSON.stringify(s),
    JSON.stringify({ token: s }),
    inspect(s),
    inspect({ nested: [s] }, { depth: 5, showHidden: true }),
    Object.keys(s).join(','),
    JSON.stringify(Object.getOwnPropertyNames(s)),
  ];
  for (const text of shown) {
    assert.ok(!text.includes('hunter2'), `value shown in ${text}`);
  }
  assert.equal(String(s), 'Secret([REDACTED])');
  assert.equal(JSON.stringify({ token: s }), '{"token":"Secret([REDACTED])"}');
  assert.equal(s.expose(), PLANTED);
  assert.equal(s.length, PLANTED.length);
  assert.equal(s.isEmpty(), false);
  assert.equal(new Secret('').isEmpty(), true);
  assert.throws(() => new Secret(42), TypeError);
});

test('each WIT error case throws its own subclass of SecretError', () => {
  const cases = [
    ['databases.postgres.production.password', Denied, 'denied', /may not read/],
    ['no.such.path', NotFound, 'not-found', /no secret at/],
    ['', InvalidPath, 'invalid-path', /empty/],
    ['store.down', Unavailable, 'unavailable', /decrypted/],
  ];
  for (const [path, type, kind, message] of cases) {
    assert.throws(
      () => getSecret(path),
      (e) => {
        assert.ok(e instanceof type, `${path}: ${e}`);
        assert.ok(e instanceof SecretError);
        assert.ok(e instanceof Error);
        assert.equal(e.kind, kind);
        assert.equal(e.name, type.name);
        assert.match(e.message, message);
        assert.equal(String(e), `${kind}: ${e.message}`);
        return true;
      },
    );
  }
});

test('a thrown value that is not a WIT error passes through unchanged', () => {
  assert.throws(() => getSecret('host.trap'), RangeError);
});

test('a path that is not a string is refused before the host is asked', () => {
  const before = host.calls.length;
  assert.throws(() => getSecret(undefined), /getSecret: the path must be a string, not undefined/);
  assert.throws(() => listSecrets(7), TypeError);
  assert.equal(host.calls.length, before);
});

test('listSecrets gives names only and defaults to the whole store', () => {
  assert.deepEqual(listSecrets('communication'), [
    'communication.github.token',
    'communication.slack.bot_token',
  ]);
  assert.deepEqual(listSecrets(), listSecrets(''));
  assert.ok(!JSON.stringify(listSecrets()).includes('hunter2'));
});

test('needs() does nothing at run time but checks its arguments', () => {
  assert.equal(needs('a.b', 'c.*.d'), undefined);
  assert.throws(() => needs('a.b', 3), TypeError);
});

test('skill() turns results into text and anything thrown into the err text', async () => {
  assert.equal(skill(() => 'plain')('{}'), 'plain');
  assert.equal(skill((input) => ({ got: JSON.parse(input) }))('{"a":1}'), '{"got":{"a":1}}');
  assert.equal(skill(() => ({ t: getSecret('communication.github.token') }))(''), '{"t":"Secret([REDACTED])"}');
  const thrown = (fn) => {
    try {
      fn();
    } catch (e) {
      return e;
    }
    assert.fail('did not throw');
  };
  assert.equal(
    thrown(skill(() => getSecret('databases.postgres.production.password'))),
    'denied: agent may not read `databases.postgres.production.password`; add it to rule x',
  );
  assert.equal(thrown(skill(() => { throw new Error('bad input'); })), 'bad input');
  assert.equal(thrown(skill(() => { throw 'as is'; })), 'as is');
  assert.equal(await skill(async () => ({ ok: 1 }))(''), '{"ok":1}');
  await assert.rejects(skill(async () => getSecret('no.such.path'))(''), (e) => {
    assert.equal(e, 'not-found: no secret at `no.such.path`');
    return true;
  });
  assert.throws(() => skill('not a function'), TypeError);
  assert.equal(errorText(new NotFound('x')), 'not-found: x');
  assert.equal(errorText(42), '42');
});
