-- wrk script for bench/: POSTs GraphQL to the server and sorts the answers.
--
--   wrk -t1 -c16 -d15s -s bench/load.lua URL -- fixed BODY_FILE
--       sends the JSON body in BODY_FILE with every request (the reads);
--   wrk -t1 -c16 -d15s -s bench/load.lua URL -- orders BODY_FILE FIRST LAST
--       replaces __ID__ in BODY_FILE with the global id of sales order FIRST, then
--       FIRST+1, ... one fresh order per request (an order is allocated only once);
--       after LAST the thread stops, so a run never allocates an order twice.
--
-- Run it with one thread (-t1): the id counter lives in the thread's Lua state.
-- done() prints one line, "BENCH_RESULT {json}", that bench/wrk.py reads.

local mode, template, next_id, last_id
-- Globals, not locals: done() reads them from each thread's state with thread:get.
ok, failed, conflicts, bad_status, exhausted = 0, 0, 0, 0, 0

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

local function base64(data)
  local out = {}
  for i = 1, #data, 3 do
    local a, b, c = data:byte(i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local c1 = math.floor(n / 262144) % 64
    local c2 = math.floor(n / 4096) % 64
    local c3 = math.floor(n / 64) % 64
    local c4 = n % 64
    out[#out + 1] = B64:sub(c1 + 1, c1 + 1) .. B64:sub(c2 + 1, c2 + 1)
      .. (b and B64:sub(c3 + 1, c3 + 1) or "=") .. (c and B64:sub(c4 + 1, c4 + 1) or "=")
  end
  return table.concat(out)
end

local function read_file(path)
  local file = assert(io.open(path, "rb"))
  local text = file:read("*a")
  file:close()
  return text
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  mode = args[1]
  template = read_file(args[2])
  if mode == "orders" then
    next_id = tonumber(args[3])
    last_id = tonumber(args[4])
  end
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Accept"] = "application/json"
  wrk.body = template
end

function request()
  if mode ~= "orders" then
    return wrk.format()
  end
  if next_id > last_id then
    exhausted = 1
    wrk.thread:stop()
    return wrk.format("GET", "/healthz")
  end
  local id = base64("SalesOrder:" .. next_id)
  next_id = next_id + 1
  return wrk.format(nil, nil, nil, (template:gsub("__ID__", id)))
end

function response(status, headers, body)
  if exhausted == 1 then
    return -- the last answers after the ids ran out are not counted
  elseif status ~= 200 then
    bad_status = bad_status + 1
  elseif body:find("VERSION_CONFLICT", 1, true) then
    conflicts = conflicts + 1
  elseif body:find('"errors":%s*%[%s*{') then
    failed = failed + 1
  else
    ok = ok + 1
  end
end

function done(summary, latency, requests)
  local totals = { ok = 0, failed = 0, conflicts = 0, bad_status = 0, exhausted = 0 }
  for _, thread in ipairs(threads) do
    for name, _ in pairs(totals) do
      totals[name] = totals[name] + (tonumber(thread:get(name)) or 0)
    end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"duration_us": %d, "requests": %d, "ok": %d, "failed": %d, '
      .. '"conflicts": %d, "bad_status": %d, "exhausted": %d, "socket_errors": %d, '
      .. '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.duration, summary.requests, totals.ok, totals.failed, totals.conflicts,
    totals.bad_status, totals.exhausted, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max
  ))
end
