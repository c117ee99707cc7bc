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

-- WRK_KEY_HEADER names a header that gets a value of its own on every request (an idempotency
-- key each, say): the run's WRK_KEY_PREFIX, a thread's number and its count of requests
local key_header = os.getenv("WRK_KEY_HEADER")
local key_prefix = os.getenv("WRK_KEY_PREFIX") or ""
if key_header and key_header ~= "" then
  local threads = 0
  function setup(thread)
    threads = threads + 1
    thread:set("thread_number", threads)
  end

  local sent = 0
  function request()
    sent = sent + 1
    wrk.headers[key_header] = string.format("%s-%d-%d", key_prefix, thread_number, sent)
    return wrk.format()
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\nWRK_JSON {"requests": %d, "duration_us": %d, "http_errors": %d, "socket_errors": %d, "timeouts": %d, "p50_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
