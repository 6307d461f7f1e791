#!/usr/bin/env bash
# Generate TypeScript types from the admin API's OpenAPI document (docs/openapi.json, kept
# equal to the served one by crates/portcullis-server/tests/it/openapi.rs) with
# openapi-typescript, and type-check a small client against them with tsc --strict.
# Needs node and npx (the npm registry); run by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/../.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
npx --yes openapi-typescript@7 docs/openapi.json -o "$work/api.d.ts"
cp scripts/openapi-client/use.ts "$work/use.ts"
npx --yes -p typescript@5 tsc --noEmit --strict "$work/api.d.ts" "$work/use.ts"
echo "openapi-typescript generated $(wc -l < "$work/api.d.ts") lines of types; tsc --strict accepts the client"
