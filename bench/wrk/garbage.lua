-- wrk script: gateway checks that name a random api key and a random resource id on every
-- request (the made-up credentials of a flood or a scan), with a real bearer token of the
-- first line of TOKENS_FILE. Every answer is a refusal; none may become a usage count of
-- its own (bench/usage.sh counts the stored rows and the server's memory).
local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local hex = "0123456789abcdef"
local function random_hex(n)
  local t = {}
  for i = 1, n do
    local k = math.random(16)
    t[i] = hex:sub(k, k)
  end
  return table.concat(t)
end

function init(args)
  local row = common.read_tsv(os.getenv("TOKENS_FILE"))[1]
  token, org = row[1], row[3]
  math.randomseed(os.time() + math.floor(os.clock() * 1e6))
end

function request()
  return wrk.format("GET", "/gateway/v1/check?resource=res_" .. random_hex(16), {
    ["Authorization"] = "Bearer " .. token,
    ["x-api-key"] = random_hex(32),
    ["x-gw-ims-org-id"] = org,
  })
end
