-- wrk script: POST /oauth/token (client_credentials, client_secret_basic), rotating over
-- the apps of CREDENTIALS_FILE (written by `portcullis bench-seed --credentials-out`:
-- client_id, secret, org, resource).
local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

function init(args)
  requests, index = {}, 0
  for i, row in ipairs(common.read_tsv(os.getenv("CREDENTIALS_FILE"))) do
    requests[i] = common.post_form("/oauth/token", row[1], row[2], "grant_type=client_credentials")
  end
end

function request()
  index = index % #requests + 1
  return requests[index]
end
