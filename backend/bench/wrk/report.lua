-- Appended to every wrk script the benchmarks run: one machine-readable summary line.
-- Threads may count unexpected statuses in a global `unexpected` (see upload.lua);
-- wrk itself counts only statuses >= 400 ("Non-2xx or 3xx responses").

local threads = {}

function setup(thread)
  thread:set("thread_id", #threads)
  table.insert(threads, thread)
end

function done(summary, latency, requests)
  local unexpected = -1
  for _, thread in ipairs(threads) do
    local count = thread:get("unexpected")
    if count ~= nil then
      unexpected = math.max(unexpected, 0) + count
    end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"unexpected_status":%d,' ..
    '"latency_us":{"min":%d,"mean":%.1f,"stdev":%.1f,"max":%d,' ..
    '"p50":%d,"p90":%d,"p99":%d,"p999":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    unexpected,
    latency.min, latency.mean, latency.stdev, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9)))
end
