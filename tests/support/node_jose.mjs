// panva's jose for Node, driven by tests/support/node_jose.py: a JSON request on stdin,
// a JSON answer on stdout.
//   {"mint": {"claims": {...}, "variants": [{"alg": "ES256", "crv": null}, ...]}}
//     -> [{"token": "...", "jwks": {"keys": [...]}} or {"error": "..."}, ...]
//   {"verify": [{"token": "...", "jwks": {...}, "alg": "ES256"}, ...]}
//     -> [{"claims": {...}} or {"error": "..."}, ...]
import { randomBytes } from 'node:crypto';
import * as jose from 'jose';

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

async function mint(claims, { alg, crv }) {
  const options = { extractable: true };
  if (alg === 'EdDSA') options.crv = crv;
  const { publicKey, privateKey } = await jose.generateKeyPair(alg, options);
  const kid = 'interop-' + randomBytes(4).toString('hex');
  const jwk = { ...(await jose.exportJWK(publicKey)), kid, alg, use: 'sig' };
  const token = await new jose.SignJWT(claims)
    .setProtectedHeader({ alg, kid, typ: 'JWT' })
    .sign(privateKey);
  return { token, jwks: { keys: [jwk] } };
}

async function verify({ token, jwks, alg }) {
  const { payload } = await jose.jwtVerify(token, jose.createLocalJWKSet(jwks), {
    algorithms: [alg],
  });
  return { claims: payload };
}

async function settle(work) {
  try {
    return await work();
  } catch (error) {
    return { error: `${error.code ?? error.name}: ${error.message}` };
  }
}

const request = await readStdin();
const answers = [];
if (request.mint) {
  for (const variant of request.mint.variants) {
    answers.push(await settle(() => mint(request.mint.claims, variant)));
  }
} else {
  for (const item of request.verify) answers.push(await settle(() => verify(item)));
}
process.stdout.write(JSON.stringify(answers));
