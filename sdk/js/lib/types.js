// TypeScript declarations generated from `wit/` with jco-transpile's
// `generateGuestTypes` (the API behind `jco guest-types`), for the skill's
// side: the `agentsec:skill/secrets@0.1.0` module the SDK imports and the
// `run` export of world `skill`.
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';

import { DEFAULT_WIT, WORLD } from './wit.js';

/**
 * The generated files, `{ relative path: text }`.
 *
 * jco-transpile runs its type generator as a WASI component under
 * preview2-shim 0.26, which preopens no directory by default (an earlier shim
 * preopened `/`), so `generateGuestTypes` alone fails with `failed to read
 * path for WIT ... No such file or directory (os error 44)`. The WIT
 * directory, and nothing else, is preopened here in the shim instance that
 * jco-transpile itself loads.
 * @param {string} [wit]
 * @returns {Promise<Record<string, string>>}
 */
export async function generateWitTypes(wit = DEFAULT_WIT) {
  const witDir = resolve(wit);
  const require = createRequire(import.meta.url);
  const fromTranspile = createRequire(require.resolve('@bytecodealliance/jco-transpile'));
  const shimFs = fromTranspile.resolve('@bytecodealliance/preview2-shim/filesystem');
  const { _setPreopens } = await import(pathToFileURL(shimFs).href);
  _setPreopens({ [witDir]: witDir });
  const { generateGuestTypes } = await import('@bytecodealliance/jco-transpile');
  const files = await generateGuestTypes(witDir, { worldName: WORLD, guest: true });
  const decoder = new TextDecoder();
  return Object.fromEntries(
    Object.entries(files)
      .map(([name, bytes]) => [name, decoder.decode(bytes)])
      .sort(([a], [b]) => a.localeCompare(b)),
  );
}
