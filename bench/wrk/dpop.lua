-- wrk script: gateway checks with DPoP (RFC 9449), GET /gateway/v1/check/<resource><path>
-- with `Authorization: DPoP <token>`, `DPoP: <proof>`, x-api-key and org header, one line
-- of DPOP_FILE a request (written by `portcullis-load dpop`: token, client_id, org,
-- resource, proof), in order, from line DPOP_FROM (1 unless set). DPOP_PATH is the path
-- the proofs name (`portcullis-load dpop --path`, "/api" unless set): the gateway takes
-- what follows the resource id as the client's path.
--
-- The tokens are a few hundred (one per app), so after the first round each is a token
-- seen before; every proof is sent once, since the server takes each jti only once. Run
-- it with one thread (-t1): threads would each start at the same line. done() prints how
-- far it got ("proof lines used"), where the next run starts (DPOP_FROM), and whether the
-- file ran out (a second pass replays proofs, which the server refuses).
local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local threads = {}
function setup(thread)
  threads[#threads + 1] = thread
  assert(#threads == 1, "dpop.lua sends each proof once: run wrk with -t1")
end

function init(args)
  rows = common.read_tsv(os.getenv("DPOP_FILE"), 5)
  total = #rows
  path = os.getenv("DPOP_PATH") or "/api"
  local from = tonumber(os.getenv("DPOP_FROM") or "1")
  assert(from and from >= 1, "DPOP_FROM is not a line number")
  index, used, wrapped = from - 1, 0, 0
end

function request()
  index, used = index + 1, used + 1
  if index > #rows then index, wrapped = 1, wrapped + 1 end
  local row = rows[index]
  return wrk.format("GET", "/gateway/v1/check/" .. row[4] .. path, {
    ["Authorization"] = "DPoP " .. row[1],
    ["DPoP"] = row[5],
    ["x-api-key"] = row[2],
    ["x-gw-ims-org-id"] = row[3],
  })
end

function done(summary, latency, requests)
  local t = threads[1]
  io.write(string.format("proof lines used: %d of %d\n", t:get("used"), t:get("total")))
  io.write(string.format("next line: %d\n", t:get("index") + 1))
  io.write(string.format("proofs file passes: %d\n", t:get("wrapped") + 1))
end
