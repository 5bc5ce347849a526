-- POST one ~1 MB multipart upload per request, each with distinct file bytes.
--
-- Arguments (after `--`): body_file density_offset first_variant content_type
-- The body file is a complete multipart body; `density_offset` (0-based) points at the
-- JPEG's JFIF X/Y density fields, which are rewritten per request from a counter as
-- bench.common.density_bytes does, so the server's deduplication never applies.

local head, tail, content_type, variant

function init(args)
  local file = assert(io.open(args[1], "rb"))
  local body = file:read("*a")
  file:close()
  local offset = tonumber(args[2])
  head = body:sub(1, offset)
  tail = body:sub(offset + 5)
  -- Threads count in disjoint ranges (thread_id is set by setup() in report.lua).
  variant = tonumber(args[3]) + (thread_id or 0) * 10000000
  content_type = args[4]
  unexpected = 0
end

local function density(n)
  local x = 1 + n % 65535
  local y = 1 + math.floor(n / 65535) % 65535
  return string.char(math.floor(x / 256), x % 256, math.floor(y / 256), y % 256)
end

function request()
  variant = variant + 1
  local body = head .. density(variant) .. tail
  return wrk.format("POST", nil, {["Content-Type"] = content_type}, body)
end

function response(status, headers, body)
  if status ~= 201 then
    unexpected = unexpected + 1
  end
end
