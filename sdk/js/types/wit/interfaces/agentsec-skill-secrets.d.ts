declare module 'agentsec:skill/secrets@0.1.0' {
  /**
   * The value at a dotted path, e.g. "databases.postgres.production.password".
   * 
   * Keys that contain dots or other odd characters use the sops `--extract`
   * form: `["a.b"]["c"]`. Numbers, booleans and dates are returned as text
   * (`5432`, `true`). Values that are not encrypted in the file (a URL, a
   * region) are read through the same call and the same policy.
   * 
   * Every call is audited. If the host cannot write the audit record, or a
   * per-run limit is exhausted, the skill is stopped (a trap), not answered.
   */
  export function getSecret(path: string): string;
  /**
   * Paths under `prefix` this skill may read: names only, never values.
   * 
   * `prefix` uses the same syntax as `get-secret`; the empty string means the
   * whole store. Only leaves the policy grants are listed, in store order.
   */
  export function listSecrets(prefix: string): Array<string>;
  /**
   * Why a secret was not returned. Each case carries a human-readable
   * explanation meant for the skill's logs; it never contains a secret value.
   */
  export type Error = ErrorDenied | ErrorNotFound | ErrorInvalidPath | ErrorUnavailable;
  /**
   * The policy does not grant this agent the path. The text names the rule
   * that would have to change. Returned whether or not the path exists, so
   * a denial reveals nothing about the store.
   */
  export interface ErrorDenied {
    tag: 'denied',
    val: string,
  }
  /**
   * The agent is granted the path, but no such path exists in the store.
   */
  export interface ErrorNotFound {
    tag: 'not-found',
    val: string,
  }
  /**
   * The path is malformed (empty segment, bad bracket syntax, too long), or
   * it names a mapping or list rather than a leaf; for a mapping the text
   * lists the child names the agent may read.
   */
  export interface ErrorInvalidPath {
    tag: 'invalid-path',
    val: string,
  }
  /**
   * The secret store cannot be read right now (for example a remote
   * backend is unreachable). Retrying later may succeed.
   */
  export interface ErrorUnavailable {
    tag: 'unavailable',
    val: string,
  }
}
