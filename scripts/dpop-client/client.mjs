// A DPoP client Portcullis did not write: openid-client (with its own oauth4webapi
// underneath) gets a DPoP-bound token from Portcullis's token endpoint and calls an API
// through nginx with the shipped configuration (deploy/nginx/portcullis.conf), unmodified.
// Then the same token with another key pair, and a proof sent a second time, both of which
// the gateway must refuse; last, a token and a call for each algorithm discovery lists.
//
// Run by crates/portcullis-server/tests/it/dpop_oracle.rs, which checks the JSON this
// prints on stdout. Install the packages first with `npm ci` in this directory.
//
// Environment:
//   PORTCULLIS_ISSUER   the server's issuer (discovery is read from it)
//   CLIENT_ID           an app's client id
//   CLIENT_SECRET       one of its secrets
//   ORG                 the app's organization (sent in x-gw-ims-org-id)
//   API_URL             a URL of the API behind nginx

import * as client from 'openid-client';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const issuer = new URL(env('PORTCULLIS_ISSUER'));
const clientId = env('CLIENT_ID');
const clientSecret = env('CLIENT_SECRET');
const org = env('ORG');
const apiUrl = new URL(env('API_URL'));

// Every request openid-client sends, as it went on the wire, with its answer: the test
// reads from it that the nonce dance happened, and the replay re-sends one of them.
const wire = [];
const claimsOf = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString());
let tokenEndpoint;
const recordingFetch = async (url, options) => {
  const response = await fetch(url, options);
  const headers = new Headers(options?.headers);
  const proof = headers.get('dpop');
  // The token endpoint's own words (openid-client lowercases token_type).
  let answer = null;
  if (String(url) === tokenEndpoint) {
    const { token_type, error } = await response.clone().json();
    answer = { token_type, error };
  }
  wire.push({
    method: options?.method ?? 'GET',
    url: String(url),
    sent: Object.fromEntries(headers.entries()),
    proof: proof ? claimsOf(proof) : null,
    proof_alg: proof ? JSON.parse(Buffer.from(proof.split('.')[0], 'base64url').toString()).alg : null,
    status: response.status,
    code: response.headers.get('x-portcullis-code'),
    www_authenticate: response.headers.get('www-authenticate'),
    dpop_nonce: response.headers.get('dpop-nonce'),
    answer,
  });
  return response;
};

// The gateway's credentials besides the token, as for any access token.
const gatewayHeaders = () => new Headers({ 'x-api-key': clientId, 'x-gw-ims-org-id': org });

// A refusal as the client sees it: openid-client throws on a 401 with a challenge.
const refusal = (err) => {
  const response = err?.response;
  if (!response) throw err;
  return {
    error: err.name,
    status: response.status,
    code: response.headers.get('x-portcullis-code'),
    www_authenticate: response.headers.get('www-authenticate'),
    dpop_nonce: response.headers.get('dpop-nonce'),
  };
};

// On any unexpected failure, the requests so far (with their answers) go to stderr.
process.on('uncaughtException', (err) => {
  console.error(err);
  console.error(JSON.stringify(wire.map(({ sent, ...r }) => r), null, 2));
  process.exit(1);
});

const out = {};

const config = await client.discovery(issuer, clientId, clientSecret, undefined, {
  algorithm: 'oauth2',
  execute: [client.allowInsecureRequests],
  [client.customFetch]: recordingFetch,
});
config[client.customFetch] = recordingFetch;
tokenEndpoint = config.serverMetadata().token_endpoint;
out.discovery = {
  issuer: config.serverMetadata().issuer,
  token_endpoint: config.serverMetadata().token_endpoint,
  dpop_signing_alg_values_supported: config.serverMetadata().dpop_signing_alg_values_supported,
};

// 1. A token bound to this client's key.
const keyPair = await client.randomDPoPKeyPair('ES256');
const dpop = client.getDPoPHandle(config, keyPair);
const first = wire.length;
const token = await client.clientCredentialsGrant(config, {}, { DPoP: dpop });
out.token = {
  token_type: token.token_type,
  expires_in: token.expires_in,
  cnf: claimsOf(token.access_token).cnf ?? null,
  jkt: await dpop.calculateThumbprint(),
  requests: wire.slice(first).map(({ sent, ...r }) => r),
};

// 2. The API through nginx, with the token and a proof of the same key.
let mark = wire.length;
const response = await client.fetchProtectedResource(
  config,
  token.access_token,
  apiUrl,
  'GET',
  undefined,
  gatewayHeaders(),
  { DPoP: dpop },
);
out.resource = {
  status: response.status,
  body: await response.json(),
  requests: wire.slice(mark).map(({ sent, ...r }) => r),
};
const accepted = wire[wire.length - 1];

// 3. The same token from a client holding another key pair.
const thief = client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256'));
mark = wire.length;
try {
  const r = await client.fetchProtectedResource(
    config,
    token.access_token,
    apiUrl,
    'GET',
    undefined,
    gatewayHeaders(),
    { DPoP: thief },
  );
  out.other_key = { status: r.status, accepted: true };
} catch (err) {
  out.other_key = refusal(err);
}
out.other_key.requests = wire.slice(mark).map(({ sent, ...r }) => r);

// 4. The accepted request sent again, byte for byte: the same token and the same proof.
const again = await fetch(accepted.url, {
  method: accepted.method,
  headers: accepted.sent,
});
out.replay = {
  status: again.status,
  code: again.headers.get('x-portcullis-code'),
  www_authenticate: again.headers.get('www-authenticate'),
  proof_jti: accepted.proof.jti,
};

// 5. A fresh proof with the right key still works after all this.
mark = wire.length;
const later = await client.fetchProtectedResource(
  config,
  token.access_token,
  apiUrl,
  'GET',
  undefined,
  gatewayHeaders(),
  { DPoP: dpop },
);
out.fresh_proof = {
  status: later.status,
  requests: wire.slice(mark).map(({ sent, ...r }) => r),
};

// 6. Every algorithm discovery lists, each with a key pair of its own: a bound token, and
// the API with it.
out.algorithms = {};
for (const alg of out.discovery.dpop_signing_alg_values_supported) {
  const handle = client.getDPoPHandle(config, await client.randomDPoPKeyPair(alg));
  mark = wire.length;
  try {
    const t = await client.clientCredentialsGrant(config, {}, { DPoP: handle });
    const r = await client.fetchProtectedResource(
      config,
      t.access_token,
      apiUrl,
      'GET',
      undefined,
      gatewayHeaders(),
      { DPoP: handle },
    );
    out.algorithms[alg] = {
      bound: claimsOf(t.access_token).cnf?.jkt === (await handle.calculateThumbprint()),
      status: r.status,
    };
  } catch (err) {
    out.algorithms[alg] = { error: String(err), ...(err?.response ? refusal(err) : {}) };
  }
  out.algorithms[alg].requests = wire.slice(mark).map(({ sent, ...r }) => r);
}

console.log(JSON.stringify(out));
