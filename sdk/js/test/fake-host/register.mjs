// `node --import ./test/fake-host/register.mjs`: resolves the WIT import
// `agentsec:skill/secrets@0.1.0` to a fake host module, so the tests load the
// SDK's real src/index.js in Node.
import { register } from 'node:module';

register('./hooks.mjs', import.meta.url);
