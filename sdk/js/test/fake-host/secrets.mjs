// A fake `agentsec:skill/secrets@0.1.0`, shaped like componentize-js's
// bindings: a WIT `err` is thrown as a ComponentError-like object
// `{ payload: { tag, val } }` (what a real component throws, seen through
// agentsec-run), `ok` is returned.
export const store = new Map();
export const denied = new Set();
export const calls = [];

export function getSecret(path) {
  calls.push(['getSecret', path]);
  if (path === '') {
    throw { payload: { tag: 'invalid-path', val: 'secret path is empty' } };
  }
  if (path === 'store.down') {
    throw { payload: { tag: 'unavailable', val: 'store cannot be decrypted' } };
  }
  if (path === 'host.trap') {
    throw new RangeError('not a WIT error');
  }
  if (denied.has(path)) {
    throw { payload: { tag: 'denied', val: `agent may not read \`${path}\`; add it to rule x` } };
  }
  if (!store.has(path)) {
    throw { payload: { tag: 'not-found', val: `no secret at \`${path}\`` } };
  }
  return store.get(path);
}

export function listSecrets(prefix) {
  calls.push(['listSecrets', prefix]);
  return [...store.keys()].filter((k) => k.startsWith(prefix) && !denied.has(k));
}
