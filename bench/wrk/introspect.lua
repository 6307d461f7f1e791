-- wrk script: POST /oauth/introspect (RFC 7662) of each app's own token, authenticated
-- with that app's secret (client_secret_basic), rotating over TOKENS_FILE (token,
-- client_id, org, resource) with the secrets from CREDENTIALS_FILE.
local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

function init(args)
  local secrets = {}
  for _, row in ipairs(common.read_tsv(os.getenv("CREDENTIALS_FILE"))) do
    secrets[row[1]] = row[2]
  end
  requests, index = {}, 0
  for i, row in ipairs(common.read_tsv(os.getenv("TOKENS_FILE"))) do
    local secret = assert(secrets[row[2]], "no secret for client " .. row[2])
    requests[i] = common.post_form("/oauth/introspect", row[2], secret, "token=" .. row[1])
  end
end

function request()
  index = index % #requests + 1
  return requests[index]
end
