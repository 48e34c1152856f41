-- wrk script for bench/run: every thread walks the same fixed list of request paths (one per
-- line in the file given as the first script argument), starting at its own offset, and at the
-- end one JSON line with the figures is printed.
--   wrk -t T -c C -d 20s -s bench/tiles.lua URL -- PATHS_FILE T

local paths = {}
local next_index = 0
local thread_count = 0

function setup(thread)
  thread:set("thread_number", thread_count)
  thread_count = thread_count + 1
end

function init(args)
  for line in io.lines(args[1]) do
    if line ~= "" then
      paths[#paths + 1] = line
    end
  end
  local threads = tonumber(args[2]) or 1
  next_index = math.floor((thread_number or 0) * #paths / threads)
end

function request()
  next_index = next_index % #paths + 1
  return wrk.format("GET", paths[next_index])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"seconds":%.3f,"rps":%.2f,"bytes":%d,"non_2xx":%d,' ..
    '"socket_errors":%d,"p50_ms":%.3f,"p99_ms":%.3f,"mean_ms":%.3f,"max_ms":%.3f}\n',
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    summary.bytes, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.mean / 1000,
    latency.max / 1000))
end
