// `js-echo`: a test skill that leaks on purpose. It prints the token to stdout and stderr
// and returns it, so the tests can check that the host redacts what a JavaScript skill
// sends back.
import { getSecret, skill } from 'agentsec-skill';

export const run = skill(() => {
  const token = getSecret('communication.github.token');
  console.log(`token: ${token.expose()}`);
  console.error(`token: ${token.expose()}`);
  return token.expose();
});
