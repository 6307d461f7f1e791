// The peer of bench/load.sh (BENCHMARKS.md): the npm package oidc-provider, configured
// for what the benchmark compares — client_credentials tokens (client_secret_basic) and
// RFC 7662 introspection — with the same apps as Portcullis, read from the credentials
// file `portcullis bench-seed` wrote. Same paths as Portcullis, so the same wrk scripts
// drive both.
//
// Two configurations, chosen by ACCESS_TOKEN_FORMAT:
// - `opaque` (the default): the provider's defaults, opaque tokens kept in its in-memory
//   store;
// - `jwt`: ES256-signed JWT access tokens, as Portcullis issues. The provider does that
//   through its resource indicators feature: every client_credentials request without a
//   `resource` gets the default resource, whose Resource Server is declared with
//   `accessTokenFormat: 'jwt'` and `jwt.sign.alg: 'ES256'`. The signing key is a P-256 key
//   generated at start (node:crypto, as a private JWK in `jwks`).
//
//   CREDENTIALS_FILE=creds.tsv PORT=18090 node bench/peer/oidc-provider.mjs
//   ACCESS_TOKEN_FORMAT=jwt CREDENTIALS_FILE=creds.tsv PORT=18091 node bench/peer/oidc-provider.mjs
import { readFileSync } from "node:fs";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import Provider from "oidc-provider";

const port = Number(process.env.PORT || 18090);
const file = process.env.CREDENTIALS_FILE;
const format = process.env.ACCESS_TOKEN_FORMAT || "opaque";
if (!file) {
  console.error("error: set CREDENTIALS_FILE to the file bench-seed wrote");
  process.exit(2);
}
if (format !== "opaque" && format !== "jwt") {
  console.error(`error: ACCESS_TOKEN_FORMAT is opaque or jwt, not ${format}`);
  process.exit(2);
}
const clients = readFileSync(file, "utf8")
  .split("\n")
  .filter((line) => line && !line.startsWith("#"))
  .map((line) => {
    const [client_id, client_secret] = line.split("\t");
    return {
      client_id,
      client_secret,
      grant_types: ["client_credentials"],
      redirect_uris: [],
      response_types: [],
      token_endpoint_auth_method: "client_secret_basic",
      scope: "read write introspect",
    };
  });

const issuer = `http://127.0.0.1:${port}`;
const configuration = {
  clients,
  scopes: ["read", "write", "introspect"],
  features: {
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    devInteractions: { enabled: false },
  },
  routes: { token: "/oauth/token", introspection: "/oauth/introspect" },
  ttl: { ClientCredentials: 3600 },
  cookies: { keys: [randomBytes(32).toString("hex")] },
};

if (format === "jwt") {
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const key = { ...privateKey.export({ format: "jwk" }), kid: "bench-es256", alg: "ES256", use: "sig" };
  // The one resource server every token is for.
  const resource = "https://api.bench.invalid/";
  configuration.jwks = { keys: [key] };
  // The provider's ID token default (RS256) would need an RSA key; there are no ID tokens here.
  configuration.clientDefaults = { id_token_signed_response_alg: "ES256" };
  configuration.features.resourceIndicators = {
    enabled: true,
    defaultResource: () => resource,
    useGrantedResource: () => true,
    getResourceServerInfo: (ctx, indicator) => {
      if (indicator !== resource) throw new Provider.errors.InvalidTarget();
      return {
        scope: "read write introspect",
        accessTokenFormat: "jwt",
        jwt: { sign: { alg: "ES256" } },
      };
    },
  };
}

const provider = new Provider(issuer, configuration);
provider.listen(port, "127.0.0.1", () => {
  console.log(`oidc-provider (${format} access tokens) listening on ${issuer} with ${clients.length} clients`);
});
