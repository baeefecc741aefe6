/// <reference path="./interfaces/agentsec-skill-secrets.d.ts" />
declare module 'agentsec:skill/skill@0.1.0' {
  export type * as AgentsecSkillSecrets010 from 'agentsec:skill/secrets@0.1.0'; // import agentsec:skill/secrets@0.1.0
  /**
  * `input` is JSON text from the caller; the result goes back to the caller
  * (after redaction of every secret value released during the run).
  * `err` is the skill's own failure message and is redacted the same way.
  */
  export function run(input: string): string;
  export type Result<T, E> = { tag: 'ok', val: T } | { tag: 'err', val: E };
}
