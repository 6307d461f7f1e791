-- Shared by the wrk scripts of bench/load.sh: reading the tab-separated files that
-- `portcullis bench-seed` (credentials), `portcullis-load mint` (tokens) and
-- `portcullis-load dpop` (tokens with proofs) write, and Base64 for client_secret_basic.
-- Loaded with dofile() from the scripts' own folder.
local M = {}

-- Rows of a TSV file (lines starting with '#' skipped), each a list of `fields` fields
-- (4 unless given).
function M.read_tsv(path, fields)
  fields = fields or 4
  assert(path and path ~= "", "the file's path is not set in the environment")
  local rows = {}
  for line in io.lines(path) do
    if line ~= "" and line:sub(1, 1) ~= "#" then
      local row = {}
      for field in line:gmatch("[^\t]+") do row[#row + 1] = field end
      assert(#row == fields, "a line without " .. fields .. " tab-separated fields in " .. path)
      rows[#rows + 1] = row
    end
  end
  assert(#rows > 0, path .. " has no entries")
  return rows
end

local chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
function M.b64(data)
  return ((data:gsub(".", function(x)
    local r, b = "", x:byte()
    for i = 8, 1, -1 do r = r .. (b % 2 ^ i - b % 2 ^ (i - 1) > 0 and "1" or "0") end
    return r
  end) .. "0000"):gsub("%d%d%d?%d?%d?%d?", function(x)
    if #x < 6 then return "" end
    local c = 0
    for i = 1, 6 do c = c + (x:sub(i, i) == "1" and 2 ^ (6 - i) or 0) end
    return chars:sub(c + 1, c + 1)
  end) .. ({ "", "==", "=" })[#data % 3 + 1])
end

-- A POST of a form body, authenticated with client_secret_basic.
function M.post_form(path, id, secret, body)
  return wrk.format("POST", path, {
    ["Authorization"] = "Basic " .. M.b64(id .. ":" .. secret),
    ["Content-Type"] = "application/x-www-form-urlencoded",
  }, body)
end

return M
