-- One fixed request (method, body, headers from files named in the environment), and a one-line
-- JSON summary that benchmarks/run.py parses. Used where the provider accepts a static credential:
-- a bearer key, a reusable JWT, or a signature over a body that does not change.
local function read(path)
  if not path or path == "" then return nil end
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

wrk.method = os.getenv("WRK_METHOD") or "GET"
wrk.body = read(os.getenv("WRK_BODY_FILE"))
local headers = read(os.getenv("WRK_HEADERS_FILE"))
if headers then
  for name, value in headers:gmatch("([^:\n]+): ([^\n]*)") do
    wrk.headers[name] = value
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\nWRK_JSON {"requests": %d, "duration_us": %d, "http_errors": %d, "socket_errors": %d, "timeouts": %d, "p50_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
