// Where the WIT contract is and which world skills target.
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The SDK's directory (sdk/js). */
export const SDK_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** The WIT package skills are built against: the repository's `wit/`. */
export const DEFAULT_WIT = resolve(SDK_DIR, '..', '..', 'wit');

/** The world every skill targets (`wit/skill.wit`). */
export const WORLD = 'skill';
