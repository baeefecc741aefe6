// The `agentsec:needs` custom section: checking declared needs and appending
// the section to a component. Format (runtime/host/src/needs.rs): UTF-8 text,
// one path or pattern per line; the host concatenates every section of that
// name, anywhere in the component, and reads it before the skill runs.

/** Name of the custom section that holds a skill's declared needs. */
export const NEEDS_SECTION = 'agentsec:needs';

/**
 * Largest total size of the section the host accepts (`MAX_NEEDS_SIZE` in
 * runtime/host/src/needs.rs); checked here so the build fails, not the run.
 */
export const MAX_NEEDS_SIZE = 64 * 1024;

/** Most declared needs the host accepts (`MAX_NEEDS` in runtime/host/src/needs.rs). */
export const MAX_NEEDS = 256;

/** The 8-byte preamble of a component: magic, version 0x0d, layer 1. */
const COMPONENT_PREAMBLE = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];

/** Section id of a custom section, in core modules and components alike. */
const CUSTOM_SECTION_ID = 0;

/**
 * Why a declared need is refused, or `undefined` when it is acceptable: the
 * same rule as the Rust SDK's `needs!` (non-empty, no control characters),
 * plus no surrounding blanks (the host trims lines, so they would be lost).
 * @param {string} need
 * @returns {string | undefined}
 */
export function needProblem(need) {
  if (typeof need !== 'string') {
    return 'is not a string';
  }
  if (need.length === 0) {
    return 'is empty';
  }
  if (need.trim() !== need) {
    return 'has leading or trailing blanks';
  }
  // eslint-disable-next-line no-control-regex
  const control = need.search(/[\u0000-\u001f\u007f-\u009f]/u);
  if (control !== -1) {
    return `holds a control character at index ${control}`;
  }
  return undefined;
}

/**
 * The section payload for `needs`: each need on its own `\n`-terminated line,
 * duplicates dropped, in first-seen order.
 * @param {string[]} needs
 * @returns {Uint8Array}
 * @throws {Error} a need is malformed, or a host limit is exceeded
 */
export function needsPayload(needs) {
  const unique = [];
  for (const need of needs) {
    const problem = needProblem(need);
    if (problem !== undefined) {
      throw new Error(`declared need ${JSON.stringify(need)} ${problem}`);
    }
    if (!unique.includes(need)) {
      unique.push(need);
    }
  }
  if (unique.length > MAX_NEEDS) {
    throw new Error(`${unique.length} needs are declared; the host accepts at most ${MAX_NEEDS}`);
  }
  const bytes = new TextEncoder().encode(unique.map((n) => `${n}\n`).join(''));
  if (bytes.length > MAX_NEEDS_SIZE) {
    throw new Error(
      `the declared needs take ${bytes.length} bytes; the host accepts at most ${MAX_NEEDS_SIZE}`,
    );
  }
  return bytes;
}

/**
 * Unsigned LEB128, the encoding of every size in the binary format.
 * @param {number} n a non-negative safe integer
 * @returns {number[]}
 */
export function uleb128(n) {
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new RangeError(`uleb128: ${n} is not a non-negative integer`);
  }
  const out = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n !== 0) {
      byte |= 0x80;
    }
    out.push(byte);
  } while (n !== 0);
  return out;
}

/**
 * A custom section: id 0, the LEB128 size of what follows, the
 * LEB128-length-prefixed UTF-8 name, then the payload.
 * @param {string} name
 * @param {Uint8Array} payload
 * @returns {Uint8Array}
 */
export function customSection(name, payload) {
  const nameBytes = new TextEncoder().encode(name);
  const body = [...uleb128(nameBytes.length), ...nameBytes];
  const size = uleb128(body.length + payload.length);
  const out = new Uint8Array(1 + size.length + body.length + payload.length);
  out[0] = CUSTOM_SECTION_ID;
  out.set(size, 1);
  out.set(body, 1 + size.length);
  out.set(payload, 1 + size.length + body.length);
  return out;
}

/**
 * `component` with a custom section appended at its top level (allowed
 * anywhere among a component's sections).
 * @param {Uint8Array} component
 * @param {string} name
 * @param {Uint8Array} payload
 * @returns {Uint8Array}
 * @throws {Error} `component` is not a component
 */
export function appendCustomSection(component, name, payload) {
  if (!isComponent(component)) {
    throw new Error('not a WebAssembly component (bad preamble); was it built by componentize?');
  }
  const section = customSection(name, payload);
  const out = new Uint8Array(component.length + section.length);
  out.set(component, 0);
  out.set(section, component.length);
  return out;
}

/** @param {Uint8Array} bytes */
function isComponent(bytes) {
  return bytes.length >= 8 && COMPONENT_PREAMBLE.every((b, i) => bytes[i] === b);
}

/**
 * The custom sections at the top level of a component (not inside nested
 * modules), as `{ name, data }`: how the tests check what the build wrote.
 * @param {Uint8Array} component
 * @returns {{ name: string, data: Uint8Array }[]}
 */
export function topLevelCustomSections(component) {
  if (!isComponent(component)) {
    throw new Error('not a WebAssembly component (bad preamble)');
  }
  const sections = [];
  let at = 8;
  while (at < component.length) {
    const id = component[at];
    const [size, sizeLen] = readUleb(component, at + 1);
    const start = at + 1 + sizeLen;
    const end = start + size;
    if (end > component.length) {
      throw new Error(`section at byte ${at} runs past the end of the component`);
    }
    if (id === CUSTOM_SECTION_ID) {
      const [nameLen, nameLenLen] = readUleb(component, start);
      const nameEnd = start + nameLenLen + nameLen;
      const name = new TextDecoder('utf-8', { fatal: true }).decode(
        component.subarray(start + nameLenLen, nameEnd),
      );
      sections.push({ name, data: component.subarray(nameEnd, end) });
    }
    at = end;
  }
  return sections;
}

/**
 * @param {Uint8Array} bytes
 * @param {number} at
 * @returns {[number, number]} the value and how many bytes it took
 */
function readUleb(bytes, at) {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 5; i++) {
    if (at + i >= bytes.length) {
      break;
    }
    const byte = bytes[at + i];
    value += (byte & 0x7f) * scale;
    scale *= 128;
    if ((byte & 0x80) === 0) {
      return [value, i + 1];
    }
  }
  throw new Error(`bad LEB128 size at byte ${at}`);
}
