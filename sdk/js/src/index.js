// Write agentsec skills in JavaScript.
//
// This module runs inside the component (StarlingMonkey, built by
// `node sdk/js/build.mjs`). It wraps the bindings componentize-js generates
// for `wit/` (world `agentsec:skill/skill`), the same API as the Rust SDK
// (`sdk/rust`): `getSecret` returns a `Secret` that never prints its value and
// throws one of four typed errors; `listSecrets` lists names; `needs` declares
// the paths the build writes into the `agentsec:needs` custom section.
/// <reference path="../types/wit/interfaces/agentsec-skill-secrets.d.ts" />
import * as wit from 'agentsec:skill/secrets@0.1.0';

/** Name of the custom section that holds a skill's declared needs. */
export const NEEDS_SECTION = 'agentsec:needs';

const REDACTED = 'Secret([REDACTED])';

/**
 * A secret value released by the host. It has no enumerable properties, and
 * `String(s)`, `${s}`, `JSON.stringify(s)` and Node's / the console's
 * inspection all give `Secret([REDACTED])`; `expose()` is the one way to the
 * value. The host also redacts every released value from the skill's result,
 * stdout and stderr.
 */
export class Secret {
  #value;

  /** @param {string} value */
  constructor(value) {
    if (typeof value !== 'string') {
      throw new TypeError('Secret: the value must be a string');
    }
    this.#value = value;
  }

  /**
   * The value. Use it where it is needed (a header, a connection string) and
   * drop it; do not return or print it (the host would redact it anyway).
   * @returns {string}
   */
  expose() {
    return this.#value;
  }

  /** Length in UTF-16 code units, as `String.prototype.length`. */
  get length() {
    return this.#value.length;
  }

  /** Whether the value is the empty string. */
  isEmpty() {
    return this.#value.length === 0;
  }

  toString() {
    return REDACTED;
  }

  toJSON() {
    return REDACTED;
  }

  [Symbol.toPrimitive]() {
    return REDACTED;
  }

  [Symbol.for('nodejs.util.inspect.custom')]() {
    return REDACTED;
  }
}

/** @typedef {import('agentsec:skill/secrets@0.1.0').Error['tag']} SecretErrorKind */

/**
 * Why the host did not return a secret; the base class of `Denied`,
 * `NotFound`, `InvalidPath` and `Unavailable`. `message` is the host's
 * explanation (never a secret value); `kind` is the WIT case name; `String(e)`
 * is `kind: message`, as the Rust SDK's `Display`.
 */
export class SecretError extends Error {
  /**
   * @param {SecretErrorKind} kind
   * @param {string} message
   */
  constructor(kind, message) {
    super(message);
    this.name = new.target.name;
    /** The WIT case: `denied`, `not-found`, `invalid-path` or `unavailable`. */
    this.kind = kind;
  }

  toString() {
    return `${this.kind}: ${this.message}`;
  }
}

/** The policy does not grant this agent and skill the path; the text names the rule to change. */
export class Denied extends SecretError {
  /** @param {string} message */
  constructor(message) {
    super('denied', message);
  }
}

/** No secret at that path (asked only when the policy grants the path). */
export class NotFound extends SecretError {
  /** @param {string} message */
  constructor(message) {
    super('not-found', message);
  }
}

/** The path is malformed, too long, or names a mapping (the text lists the readable children). */
export class InvalidPath extends SecretError {
  /** @param {string} message */
  constructor(message) {
    super('invalid-path', message);
  }
}

/** The store could not answer (e.g. it could not be decrypted); a retry may succeed. */
export class Unavailable extends SecretError {
  /** @param {string} message */
  constructor(message) {
    super('unavailable', message);
  }
}

/** @type {Record<SecretErrorKind, new (message: string) => SecretError>} */
const BY_KIND = {
  denied: Denied,
  'not-found': NotFound,
  'invalid-path': InvalidPath,
  unavailable: Unavailable,
};

/**
 * The typed error for what a generated binding threw, or `undefined` when it
 * is not a `secrets.error` (componentize-js throws `{ payload: { tag, val } }`
 * for a WIT `err`).
 * @param {unknown} thrown
 * @returns {SecretError | undefined}
 */
function fromWitError(thrown) {
  /** @type {any} */
  const payload = thrown && typeof thrown === 'object' ? /** @type {any} */ (thrown).payload : undefined;
  if (!payload || typeof payload !== 'object' || !Object.hasOwn(BY_KIND, payload.tag)) {
    return undefined;
  }
  return new BY_KIND[/** @type {SecretErrorKind} */ (payload.tag)](String(payload.val));
}

/**
 * @param {string} what
 * @param {unknown} path
 */
function checkPath(what, path) {
  if (typeof path !== 'string') {
    throw new TypeError(`${what}: the path must be a string, not ${typeof path}`);
  }
}

/**
 * Reads the secret at `path` (dotted, e.g.
 * `databases.postgres.production.password`, or the bracket form
 * `["a.b"]["c"]`). A denial is an ordinary thrown `Denied` the skill can catch.
 * @param {string} path
 * @returns {Secret}
 * @throws {Denied | NotFound | InvalidPath | Unavailable}
 */
export function getSecret(path) {
  checkPath('getSecret', path);
  let value;
  try {
    value = wit.getSecret(path);
  } catch (thrown) {
    throw fromWitError(thrown) ?? thrown;
  }
  return new Secret(value);
}

/**
 * The secret paths under `prefix` this skill may read (names, never values);
 * `''` lists everything it may read.
 * @param {string} [prefix]
 * @returns {string[]}
 */
export function listSecrets(prefix = '') {
  checkPath('listSecrets', prefix);
  return wit.listSecrets(prefix);
}

/**
 * Declares the secrets this skill needs, so that `agentsec-run` refuses to
 * start it, naming the rule to add, when the policy does not grant them:
 *
 *     needs('communication.github.token', 'databases.postgres.*.password');
 *
 * The build (`node sdk/js/build.mjs`) reads these calls from the source and
 * writes them into the `agentsec:needs` section; call it at the top level of
 * a module, with string literals only (the build fails otherwise). A `*`
 * segment is satisfied when the policy grants one existing secret it matches.
 * A declaration grants nothing: every `getSecret` is still checked. At run
 * time the call does nothing.
 * @param {...string} paths
 */
export function needs(...paths) {
  for (const path of paths) {
    checkPath('needs', path);
  }
}

/**
 * The text `run` returns as its `err` for a thrown value: `kind: message` for
 * a `SecretError`, the message of any other `Error`, else `String(value)`.
 * @param {unknown} thrown
 * @returns {string}
 */
export function errorText(thrown) {
  if (thrown instanceof SecretError) {
    return thrown.toString();
  }
  if (thrown instanceof Error) {
    return thrown.message;
  }
  return String(thrown);
}

/** @param {unknown} value */
function outputText(value) {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/**
 * Wraps a skill's function as the component's `run` export:
 *
 *     export const run = skill((input) => ({ ok: true }));
 *
 * `fn` gets the caller's input (JSON text) and returns a string, or any other
 * value, which is sent as `JSON.stringify(value)` (a `Secret` in it shows as
 * `Secret([REDACTED])`); it may be async. Whatever it throws becomes `run`'s
 * `err` text (see `errorText`): componentize-js accepts only a string there
 * and traps on a thrown `Error`.
 * @param {(input: string) => unknown} fn
 * @returns {(input: string) => string | Promise<string>}
 */
export function skill(fn) {
  if (typeof fn !== 'function') {
    throw new TypeError('skill: pass the function that implements run');
  }
  return function run(/** @type {string} */ input) {
    /** @type {any} */
    let out;
    try {
      out = fn(input);
    } catch (thrown) {
      throw errorText(thrown);
    }
    if (out && typeof out.then === 'function') {
      return out.then(outputText, (/** @type {unknown} */ thrown) => {
        throw errorText(thrown);
      });
    }
    return outputText(out);
  };
}
