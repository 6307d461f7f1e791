-- wrk script: GET /gateway/v1/check?resource=<its org's resource> with a bearer access
-- token, x-api-key and org header, rotating over the lines of TOKENS_FILE (written by
-- `portcullis-load mint`: token, client_id, org, resource).
--
-- With one token per app (a few hundred), every request after the first round is a token
-- seen before. With a file of more tokens than the run sends, every request is a token
-- never seen; done() reports if the file ran out and tokens were reused.
local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local threads = {}
function setup(thread) threads[#threads + 1] = thread end

local function format(row)
  return wrk.format("GET", "/gateway/v1/check?resource=" .. row[4], {
    ["Authorization"] = "Bearer " .. row[1],
    ["x-api-key"] = row[2],
    ["x-gw-ims-org-id"] = row[3],
  })
end

function init(args)
  rows = common.read_tsv(os.getenv("TOKENS_FILE"))
  index, wrapped = 0, 0
  -- Few rows: format each request once. Many (tokens never seen): as they are sent.
  if #rows <= 10000 then
    requests = {}
    for i, row in ipairs(rows) do requests[i] = format(row) end
  end
end

function request()
  index = index + 1
  if index > #rows then index, wrapped = 1, wrapped + 1 end
  return requests and requests[index] or format(rows[index])
end

function done(summary, latency, requests)
  local reused = 0
  for _, t in ipairs(threads) do reused = reused + t:get("wrapped") end
  io.write(string.format("tokens file passes: %d\n", reused + 1))
end
