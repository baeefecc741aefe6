// @ts-check
// `js-release-notes`: drafts the release notes it would publish to GitHub,
// and checks that the token it would publish with is usable, without showing
// it. The JavaScript twin of example-skills/release-notes (Rust).
//
// Input: {"repo": "acme/api", "version": "v1.4.0", "changes": ["..."]}.
// Reads `communication.github.token`. Output: the draft and the token check.
//
// Build: node sdk/js/build.mjs example-skills/js-release-notes -o js_release_notes.wasm
import { getSecret, needs, skill } from 'agentsec-skill';

needs('communication.github.token');

export const run = skill((/** @type {string} */ input) => {
  let parsed;
  try {
    parsed = JSON.parse(input.trim() === '' ? '{}' : input);
  } catch (e) {
    throw new Error(`input is not JSON: ${e instanceof Error ? e.message : e}`);
  }
  const repo = stringOr(parsed?.repo, 'acme/api');
  const version = stringOr(parsed?.version, 'v0.1.0');
  const changes = Array.isArray(parsed?.changes)
    ? parsed.changes.filter((/** @type {unknown} */ c) => typeof c === 'string')
    : [];

  const token = getSecret('communication.github.token');
  const kind = tokenKind(token.expose());

  let body = `## ${version}\n\n`;
  if (changes.length === 0) {
    body += '- Maintenance release.\n';
  }
  for (const change of changes) {
    body += `- ${change}\n`;
  }
  // Keys in the order the Rust skill's serde_json prints them (sorted), so
  // both skills give the same bytes for the same input.
  return {
    token: { kind, present: !token.isEmpty() },
    would_publish: { body, repo, tag: version, title: `${repo} ${version}` },
  };
});

/** @param {unknown} value @param {string} fallback */
function stringOr(value, fallback) {
  return typeof value === 'string' ? value : fallback;
}

/** The kind of GitHub token, from its documented prefix. @param {string} token */
function tokenKind(token) {
  if (token.startsWith('github_pat_')) return 'fine-grained personal access token';
  if (token.startsWith('ghp_')) return 'classic personal access token';
  if (token.startsWith('ghs_')) return 'GitHub App installation token';
  if (token.startsWith('gho_')) return 'OAuth token';
  if (token === '') return 'empty';
  return 'unrecognised format';
}
