-- wrk -t1 -c32 -d3s -s bench/wrk-clicks.lua http://127.0.0.1:5000/ -- <prefix>
-- A distinct click per request over 20,000 devices, as the benchmark's autocannon rounds send them;
-- <prefix> keeps transaction ids distinct from one round to the next. done() prints one JSON line
-- that bench/load.ts reads (status: answers that were not 2xx or 3xx).
local prefix = "wrk"
local n = 0

function init(args)
  prefix = args[1] or prefix
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

function request()
  n = n + 1
  local body = string.format('{"device_id":"dev-%d","ip":"10.%d.%d.%d","transaction_id":"%s-%d"}',
    n % 20000, math.floor(n / 65536) % 256, math.floor(n / 256) % 256, n % 256, prefix, n)
  return wrk.format(nil, nil, nil, body)
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format('{"requests":%d,"seconds":%.3f,"status":%d,"socket":%d,"timeout":%d,"p50_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration / 1e6, errors.status, errors.connect + errors.read + errors.write, errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
