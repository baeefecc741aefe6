// The agentsec:needs section: encoding, limits, and what the host will read.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  MAX_NEEDS,
  MAX_NEEDS_SIZE,
  NEEDS_SECTION,
  appendCustomSection,
  customSection,
  needProblem,
  needsPayload,
  topLevelCustomSections,
  uleb128,
} from '../lib/section.js';

const EMPTY_COMPONENT = Uint8Array.from([0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00]);

test('uleb128 matches the binary format', () => {
  assert.deepEqual(uleb128(0), [0]);
  assert.deepEqual(uleb128(127), [0x7f]);
  assert.deepEqual(uleb128(128), [0x80, 0x01]);
  assert.deepEqual(uleb128(624485), [0xe5, 0x8e, 0x26]);
  assert.throws(() => uleb128(-1), RangeError);
  assert.throws(() => uleb128(1.5), RangeError);
});

test('a custom section is id 0, size, length-prefixed name, payload', () => {
  const s = customSection('ab', Uint8Array.from([1, 2, 3]));
  assert.deepEqual([...s], [0, 6, 2, 0x61, 0x62, 1, 2, 3]);
  // A payload past 127 bytes takes a two-byte size.
  const big = customSection(NEEDS_SECTION, new Uint8Array(200));
  assert.deepEqual([...big.subarray(0, 3)], [0, 0xd7, 0x01]);
});

test('the payload is one need per line, deduplicated, in order', () => {
  const bytes = needsPayload(['a.b', 'c.*.d', 'a.b', 'é.x']);
  assert.equal(new TextDecoder().decode(bytes), 'a.b\nc.*.d\né.x\n');
  assert.equal(needsPayload([]).length, 0);
});

test('malformed needs and the host limits fail the build', () => {
  assert.equal(needProblem('a.b'), undefined);
  assert.equal(needProblem(''), 'is empty');
  assert.equal(needProblem(' a.b'), 'has leading or trailing blanks');
  assert.match(needProblem('a\nb'), /control character at index 1/);
  assert.match(needProblem('a\u0085b'), /control character/);
  assert.throws(() => needsPayload(['ok', 'a\tb']), /declared need "a\\tb" holds a control character/);
  const many = Array.from({ length: MAX_NEEDS + 1 }, (_, i) => `p${i}`);
  assert.throws(() => needsPayload(many), /at most 256/);
  assert.doesNotThrow(() => needsPayload(many.slice(0, MAX_NEEDS)));
  const long = Array.from({ length: 3 }, (_, i) => `${i}${'x'.repeat(MAX_NEEDS_SIZE / 2)}`);
  assert.throws(() => needsPayload(long), /at most 65536/);
});

test('the section is appended at the top level and reads back', () => {
  const payload = needsPayload(['communication.github.token']);
  const out = appendCustomSection(EMPTY_COMPONENT, NEEDS_SECTION, payload);
  assert.deepEqual([...out.subarray(0, 8)], [...EMPTY_COMPONENT]);
  const sections = topLevelCustomSections(out);
  assert.equal(sections.length, 1);
  assert.equal(sections[0].name, NEEDS_SECTION);
  assert.equal(new TextDecoder().decode(sections[0].data), 'communication.github.token\n');
});

test('a core module or junk is not taken for a component', () => {
  const core = Uint8Array.from([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
  assert.throws(() => appendCustomSection(core, NEEDS_SECTION, new Uint8Array()), /not a WebAssembly component/);
  assert.throws(() => topLevelCustomSections(Uint8Array.from([1, 2])), /not a WebAssembly component/);
  const truncated = Uint8Array.from([...EMPTY_COMPONENT, 0, 9, 1]);
  assert.throws(() => topLevelCustomSections(truncated), /runs past the end/);
});
