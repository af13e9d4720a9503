// The benchmark's peer (scripts/bench): node-oidc-provider, started as a
// small production-like provider so its token and introspection endpoints can
// be loaded with the same wrk scripts as ours.
//
//   NODE_ENV=production node provider.mjs PORT CLIENT_ID CLIENT_SECRET
//
// One confidential client (client_secret_basic) with the client_credentials
// grant; introspection on. Signing keys (an RSA key for ID tokens, which
// oidc-provider requires, and a P-256 key) and cookie keys are made at start,
// so no development key is used. Otherwise oidc-provider's defaults: access
// tokens for client_credentials are opaque and kept in its in-memory adapter
// (no Redis or database), which is what introspection looks up. Prints
// "listening" on standard output once it accepts connections.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import Provider from 'oidc-provider';

const [port, clientId, clientSecret] = process.argv.slice(2);
if (!port || !clientId || !clientSecret) {
  console.error('usage: node provider.mjs PORT CLIENT_ID CLIENT_SECRET');
  process.exit(2);
}

function jwk(type, options, alg, kid) {
  const { privateKey } = generateKeyPairSync(type, options);
  return { ...privateKey.export({ format: 'jwk' }), alg, use: 'sig', kid };
}

const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  features: {
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    devInteractions: { enabled: false },
  },
  jwks: {
    keys: [
      jwk('rsa', { modulusLength: 2048 }, 'RS256', 'rs-1'),
      jwk('ec', { namedCurve: 'P-256' }, 'ES256', 'es-1'),
    ],
  },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
});

const server = provider.listen(Number(port), '127.0.0.1', () => {
  console.log('listening');
});
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
