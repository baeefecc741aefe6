// Build a skill's JavaScript sources into an agentsec component: the sources
// (with `agentsec-skill` pointed at this SDK) go through componentize-js
// against `wit/`, world `skill`, and the declared needs are appended as the
// `agentsec:needs` custom section.
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { componentize } from '@bytecodealliance/componentize-js';

import { NEEDS_SECTION, appendCustomSection, needsPayload } from './section.js';
import { SourceError, rewriteSpecifiers, scanGraph } from './scan.js';
import { DEFAULT_WIT, SDK_DIR, WORLD } from './wit.js';

export { DEFAULT_WIT, WORLD };

/** Where the SDK is staged next to the skill's modules for componentize. */
const STAGED_SDK_DIR = '__agentsec_skill_sdk__';

/**
 * StarlingMonkey features left out of every skill. The host links WASI p2
 * (clocks, random, cli, io, filesystem, sockets with no network granted) and
 * `agentsec:skill/secrets`, not `wasi:http`: a component built with `http`
 * or `fetch-event` fails to link (`component imports instance
 * wasi:http/types@0.2.x, but a matching implementation was not found`).
 * `stdio` (console, error reports), `random` (Math.random, crypto) and
 * `clocks` (Date, timers) stay: the host grants them.
 */
export const DISABLED_FEATURES = ['http', 'fetch-event'];

/**
 * The entry module of `skill`: the file itself, or in a directory the
 * `main` of its package.json, else `index.js`.
 * @param {string} skill
 * @returns {{ root: string, entry: string }}
 */
export function resolveEntry(skill) {
  const path = resolve(skill);
  if (!existsSync(path)) {
    throw new SourceError(`${skill}: no such file or directory`);
  }
  if (!statSync(path).isDirectory()) {
    return { root: dirname(path), entry: path };
  }
  let main = 'index.js';
  const pkg = join(path, 'package.json');
  if (existsSync(pkg)) {
    let parsed;
    try {
      parsed = JSON.parse(readFileSync(pkg, 'utf8'));
    } catch (e) {
      throw new SourceError(`${pkg}: not JSON: ${e.message}`);
    }
    if (parsed.main !== undefined) {
      if (typeof parsed.main !== 'string') {
        throw new SourceError(`${pkg}: "main" must be a string`);
      }
      main = parsed.main;
    }
  }
  return { root: path, entry: resolve(path, main) };
}

/** `to` as an ES module specifier relative to the directory `fromDir`. */
function relativeSpecifier(fromDir, to) {
  const rel = relative(fromDir, to).split(sep).join('/');
  return rel.startsWith('.') ? rel : `./${rel}`;
}

/**
 * Builds the skill at `skill` (directory or entry file) into a component.
 * @param {string} skill
 * @param {{ wit?: string }} [options]
 * @returns {Promise<{ component: Uint8Array, needs: string[], modules: string[] }>}
 */
export async function buildSkill(skill, options = {}) {
  const wit = resolve(options.wit ?? DEFAULT_WIT);
  const { root, entry } = resolveEntry(skill);
  const graph = scanGraph(root, entry);
  const declared = [...graph.values()].flatMap((m) => (m.js ? m.needs : []));
  const needs = [...new Set(declared.map((n) => n.path))];
  let payload;
  try {
    payload = needsPayload(needs);
  } catch (e) {
    const at = declared.find((n) => e.message.includes(JSON.stringify(n.path)));
    throw new SourceError(at ? `${at.where}: ${e.message}` : e.message);
  }

  // The skill's modules keep their paths relative to its directory (so
  // componentize's messages name `index.js:2:1`); the SDK goes beside them.
  const stage = mkdtempSync(join(tmpdir(), 'agentsec-js-'));
  const sdkEntry = join(stage, STAGED_SDK_DIR, 'index.js');
  if (graph.has(join(root, STAGED_SDK_DIR, 'index.js'))) {
    throw new SourceError(`${join(root, STAGED_SDK_DIR)}: this directory name is reserved for the SDK in the build`);
  }
  mkdirSync(dirname(sdkEntry), { recursive: true });
  copyFileSync(join(SDK_DIR, 'src', 'index.js'), sdkEntry);
  for (const [, mod] of graph) {
    const target = join(stage, mod.rel);
    mkdirSync(dirname(target), { recursive: true });
    if (mod.js) {
      const spec = relativeSpecifier(dirname(target), sdkEntry);
      writeFileSync(target, rewriteSpecifiers(mod.text, mod.sdkSpecifiers, spec));
    } else {
      writeFileSync(target, mod.bytes);
    }
  }

  // componentize maps the component's `/` to the working directory when the
  // source lies below it, so the staged SDK next to the skill resolves.
  const cwd = process.cwd();
  let result;
  try {
    process.chdir(stage);
    result = await componentize({
      sourcePath: join(stage, relative(root, entry)),
      witPath: wit,
      worldName: WORLD,
      disableFeatures: DISABLED_FEATURES,
    });
  } catch (e) {
    // componentize's own message names the module and line (e.g. an
    // exception in top-level code, a missing `run` export); its stack does not help.
    throw new SourceError(`componentize failed for ${root}:\n${e instanceof Error ? e.message : e}`);
  } finally {
    process.chdir(cwd);
    rmSync(stage, { recursive: true, force: true });
  }
  let component = result.component;
  if (needs.length > 0) {
    component = appendCustomSection(component, NEEDS_SECTION, payload);
  }
  return { component, needs, modules: [...graph.values()].map((m) => m.rel) };
}
