// The peer of bench/load.sh (BENCHMARKS.md): the npm package oidc-provider, configured
// for what the benchmark compares — client_credentials tokens (client_secret_basic) and
// RFC 7662 introspection — with the same apps as Portcullis, read from the credentials
// file `portcullis bench-seed` wrote. Same paths as Portcullis, so the same wrk scripts
// drive both. Tokens are the provider's defaults (opaque, in its in-memory store).
//
//   CREDENTIALS_FILE=creds.tsv PORT=18090 node bench/peer/oidc-provider.mjs
import { readFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import Provider from "oidc-provider";

const port = Number(process.env.PORT || 18090);
const file = process.env.CREDENTIALS_FILE;
if (!file) {
  console.error("error: set CREDENTIALS_FILE to the file bench-seed wrote");
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
const provider = new Provider(issuer, {
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
});
provider.listen(port, "127.0.0.1", () => {
  console.log(`oidc-provider listening on ${issuer} with ${clients.length} clients`);
});
