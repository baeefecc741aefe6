// Module resolution hook: the WIT interface becomes ./secrets.mjs.
const WIT = 'agentsec:skill/secrets@0.1.0';

export async function resolve(specifier, context, next) {
  if (specifier === WIT) {
    return { url: new URL('./secrets.mjs', import.meta.url).href, shortCircuit: true };
  }
  return next(specifier, context);
}
