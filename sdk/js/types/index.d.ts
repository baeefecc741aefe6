/**
 * Reads the secret at `path` (dotted, e.g.
 * `databases.postgres.production.password`, or the bracket form
 * `["a.b"]["c"]`). A denial is an ordinary thrown `Denied` the skill can catch.
 * @param {string} path
 * @returns {Secret}
 * @throws {Denied | NotFound | InvalidPath | Unavailable}
 */
export function getSecret(path: string): Secret;
/**
 * The secret paths under `prefix` this skill may read (names, never values);
 * `''` lists everything it may read.
 * @param {string} [prefix]
 * @returns {string[]}
 */
export function listSecrets(prefix?: string): string[];
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
export function needs(...paths: string[]): void;
/**
 * The text `run` returns as its `err` for a thrown value: `kind: message` for
 * a `SecretError`, the message of any other `Error`, else `String(value)`.
 * @param {unknown} thrown
 * @returns {string}
 */
export function errorText(thrown: unknown): string;
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
export function skill(fn: (input: string) => unknown): (input: string) => string | Promise<string>;
/** Name of the custom section that holds a skill's declared needs. */
export const NEEDS_SECTION: "agentsec:needs";
/**
 * A secret value released by the host. It has no enumerable properties, and
 * `String(s)`, `${s}`, `JSON.stringify(s)` and Node's / the console's
 * inspection all give `Secret([REDACTED])`; `expose()` is the one way to the
 * value. The host also redacts every released value from the skill's result,
 * stdout and stderr.
 */
export class Secret {
    /** @param {string} value */
    constructor(value: string);
    /**
     * The value. Use it where it is needed (a header, a connection string) and
     * drop it; do not return or print it (the host would redact it anyway).
     * @returns {string}
     */
    expose(): string;
    /** Length in UTF-16 code units, as `String.prototype.length`. */
    get length(): number;
    /** Whether the value is the empty string. */
    isEmpty(): boolean;
    toString(): string;
    toJSON(): string;
    [Symbol.toPrimitive](): string;
    #private;
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
    constructor(kind: SecretErrorKind, message: string);
    /** The WIT case: `denied`, `not-found`, `invalid-path` or `unavailable`. */
    kind: "denied" | "not-found" | "invalid-path" | "unavailable";
}
/** The policy does not grant this agent and skill the path; the text names the rule to change. */
export class Denied extends SecretError {
    /** @param {string} message */
    constructor(message: string);
}
/** No secret at that path (asked only when the policy grants the path). */
export class NotFound extends SecretError {
    /** @param {string} message */
    constructor(message: string);
}
/** The path is malformed, too long, or names a mapping (the text lists the readable children). */
export class InvalidPath extends SecretError {
    /** @param {string} message */
    constructor(message: string);
}
/** The store could not answer (e.g. it could not be decrypted); a retry may succeed. */
export class Unavailable extends SecretError {
    /** @param {string} message */
    constructor(message: string);
}
export type SecretErrorKind = import("agentsec:skill/secrets@0.1.0").Error["tag"];
