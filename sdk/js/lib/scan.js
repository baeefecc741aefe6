// Reading a skill's sources before componentize: the module graph reached by
// static relative imports, the `needs(...)` declarations in it, and the
// edits that point `agentsec-skill` imports at the SDK (StarlingMonkey
// resolves only relative paths; there is no node_modules inside a component).
import { readFileSync } from 'node:fs';
import { dirname, relative, resolve, sep } from 'node:path';
import { parseSync } from 'oxc-parser';

/** The specifier skills import the SDK by. */
export const SDK_SPECIFIER = 'agentsec-skill';

/** Extensions parsed as JavaScript modules; other relative imports are copied as they are. */
const JS_EXTENSIONS = ['.js', '.mjs'];

/**
 * Largest source file read (bytes): a skill's module is a few KiB; the bound
 * keeps a mistaken path (a bundle, a binary) from being parsed whole.
 */
export const MAX_SOURCE_SIZE = 4 * 1024 * 1024;

/** Most modules followed: a bound on a runaway import graph. */
export const MAX_MODULES = 1000;

/** A build error that names the file and line. */
export class SourceError extends Error {}

/** 1-based line and column of UTF-16 offset `at` in `text`. */
function lineCol(text, at) {
  const before = text.slice(0, at).split('\n');
  return `${before.length}:${before[before.length - 1].length + 1}`;
}

function fail(file, text, at, message) {
  throw new SourceError(`${file}:${lineCol(text, at)}: ${message}`);
}

/** The string value of a literal argument, or undefined. */
function literalString(node) {
  if (node.type === 'Literal' && typeof node.value === 'string') {
    return node.value;
  }
  if (node.type === 'TemplateLiteral' && node.expressions.length === 0) {
    return node.quasis[0].value.cooked;
  }
  return undefined;
}

/** Calls `visit(node, parent, key)` for every AST node below `node`. */
function walk(node, visit, parent = null, key = null) {
  if (Array.isArray(node)) {
    for (const child of node) {
      walk(child, visit, parent, key);
    }
    return;
  }
  if (!node || typeof node !== 'object' || typeof node.type !== 'string') {
    return;
  }
  visit(node, parent, key);
  for (const [k, child] of Object.entries(node)) {
    if (child && typeof child === 'object') {
      walk(child, visit, node, k);
    }
  }
}

/**
 * What one module says: its relative imports, its `agentsec-skill`
 * specifier ranges (to rewrite), and its `needs(...)` paths.
 * @param {string} file shown in errors
 * @param {string} text
 */
export function scanModule(file, text) {
  const parsed = parseSync(file, text, { sourceType: 'module' });
  if (parsed.errors.length > 0) {
    const e = parsed.errors[0];
    const at = e.labels?.[0]?.start ?? 0;
    fail(file, text, at, `cannot parse: ${e.message}`);
  }
  const relativeImports = [];
  const sdkSpecifiers = [];
  const needs = [];
  // Local names bound to `needs` and to the SDK namespace.
  const needsNames = new Set();
  const namespaceNames = new Set();

  for (const statement of parsed.program.body) {
    const source = statement.source;
    if (!source || typeof source.value !== 'string') {
      continue;
    }
    if (source.value === SDK_SPECIFIER) {
      sdkSpecifiers.push({ start: source.start, end: source.end });
      if (statement.type === 'ImportDeclaration') {
        for (const spec of statement.specifiers) {
          if (spec.type === 'ImportNamespaceSpecifier') {
            namespaceNames.add(spec.local.name);
          } else if (spec.type === 'ImportSpecifier' && importedName(spec) === 'needs') {
            needsNames.add(spec.local.name);
          }
        }
      } else {
        // export ... from 'agentsec-skill': a `needs` reached through another
        // module would not be seen, so re-exports are refused.
        fail(
          file,
          text,
          statement.start,
          `re-exporting from '${SDK_SPECIFIER}' is not supported (the build could not see needs() called through it); import what each module uses from '${SDK_SPECIFIER}' directly`,
        );
      }
    } else if (source.value.startsWith('./') || source.value.startsWith('../')) {
      relativeImports.push(source.value);
    } else if (!source.value.includes(':')) {
      fail(
        file,
        text,
        source.start,
        `cannot import '${source.value}': inside a component only relative paths, '${SDK_SPECIFIER}' and WIT interfaces resolve (bundle other packages first)`,
      );
    }
  }

  // Every reference to `needs` must be a top-level `needs('literal', ...)`.
  const allowed = new Set();
  for (const statement of parsed.program.body) {
    if (statement.type !== 'ExpressionStatement' || statement.expression.type !== 'CallExpression') {
      continue;
    }
    const call = statement.expression;
    const callee = call.callee;
    const isNeeds =
      (callee.type === 'Identifier' && needsNames.has(callee.name)) ||
      (callee.type === 'MemberExpression' &&
        !callee.computed &&
        callee.object.type === 'Identifier' &&
        namespaceNames.has(callee.object.name) &&
        callee.property.name === 'needs');
    if (!isNeeds) {
      continue;
    }
    if (call.arguments.length === 0) {
      fail(file, text, call.start, 'needs() declares nothing; name at least one secret path');
    }
    for (const arg of call.arguments) {
      const value = literalString(arg);
      if (value === undefined) {
        fail(file, text, arg.start, 'needs() takes string literals only (the build reads them from the source)');
      }
      needs.push({ path: value, where: `${file}:${lineCol(text, arg.start)}` });
    }
    allowed.add(callee.type === 'Identifier' ? callee : callee.object);
  }
  walk(parsed.program, (node, parent, key) => {
    if (node.type !== 'Identifier' || allowed.has(node)) {
      return;
    }
    if (parent && ['ImportSpecifier', 'ImportNamespaceSpecifier'].includes(parent.type)) {
      return;
    }
    // `x.needs` and `{ needs: 1 }` name a property, not the binding.
    if (parent?.type === 'MemberExpression' && key === 'property' && !parent.computed) {
      return;
    }
    if (parent?.type === 'Property' && key === 'key' && !parent.computed && !parent.shorthand) {
      return;
    }
    const viaNamespace =
      namespaceNames.has(node.name) &&
      parent?.type === 'MemberExpression' &&
      key === 'object' &&
      !parent.computed &&
      parent.property.name === 'needs';
    const bareNamespace =
      namespaceNames.has(node.name) && !(parent?.type === 'MemberExpression' && key === 'object');
    if (needsNames.has(node.name) || viaNamespace || bareNamespace) {
      fail(
        file,
        text,
        node.start,
        bareNamespace
          ? `the '${SDK_SPECIFIER}' namespace may only be used as \`${node.name}.member\` (so that needs() calls stay visible to the build)`
          : 'needs() must be called as a statement at the top level of a module, with string literals',
      );
    }
  });
  return { relativeImports, sdkSpecifiers, needs };
}

function importedName(spec) {
  return spec.imported.type === 'Identifier' ? spec.imported.name : spec.imported.value;
}

/**
 * The skill's module graph from `entry`: every module reached through static
 * relative imports (the sources of the component), with its text, SDK
 * specifier ranges and needs. Each module must lie under `root`.
 * @param {string} root the skill's directory
 * @param {string} entry absolute path of the entry module
 */
export function scanGraph(root, entry) {
  const modules = new Map();
  const pending = [resolve(entry)];
  while (pending.length > 0) {
    const path = pending.pop();
    if (modules.has(path)) {
      continue;
    }
    if (modules.size === MAX_MODULES) {
      throw new SourceError(`more than ${MAX_MODULES} modules are imported from ${entry}`);
    }
    const rel = relative(root, path);
    if (rel.startsWith('..') || rel.startsWith(sep)) {
      throw new SourceError(
        `${path} is imported but lies outside the skill directory ${root}; keep the skill's modules under it`,
      );
    }
    const bytes = readSource(path);
    if (!JS_EXTENSIONS.some((ext) => path.endsWith(ext))) {
      modules.set(path, { rel, bytes, js: false });
      continue;
    }
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    const scan = scanModule(rel, text);
    modules.set(path, { rel, bytes, text, js: true, ...scan });
    for (const spec of scan.relativeImports) {
      pending.push(resolve(dirname(path), spec));
    }
  }
  return modules;
}

function readSource(path) {
  let bytes;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new SourceError(`cannot read ${path}: ${e.code ?? e.message}`);
  }
  if (bytes.length > MAX_SOURCE_SIZE) {
    throw new SourceError(`${path} is ${bytes.length} bytes; sources of at most ${MAX_SOURCE_SIZE} are read`);
  }
  return bytes;
}

/**
 * `text` with each SDK specifier range replaced by `replacement` (a quoted
 * module path), last first so earlier offsets stay valid.
 */
export function rewriteSpecifiers(text, ranges, replacement) {
  let out = text;
  for (const { start, end } of [...ranges].sort((a, b) => b.start - a.start)) {
    out = out.slice(0, start) + JSON.stringify(replacement) + out.slice(end);
  }
  return out;
}
