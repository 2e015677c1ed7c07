-- wrk script: MCP tools/call load for FastMCP.
--
--   wrk -t2 -c32 -d10s -s bench/tools_call.lua http://127.0.0.1:PORT/mcp/bench
--
-- Env: BENCH_TOKEN  bearer token; the authorization header is sent only when it is non-empty.
--
-- The request is fixed, so it is set through wrk.method/body/headers (wrk builds it once; no
-- request() callback). Non-2xx responses are counted by wrk itself (summary.errors.status,
-- the number behind its "Non-2xx or 3xx responses" line: statuses > 399), so no response()
-- callback slows the load generator down either.
--
-- done() prints one machine-readable line:
--   BENCH rps=<req/s> p50_us=<us> p99_us=<us> requests=<n> non2xx=<n> errors=<n> duration_s=<s>
-- where errors = connect + read + write + timeout socket errors.

wrk.method = "POST"
wrk.body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello"}}}'
wrk.headers["content-type"] = "application/json"
wrk.headers["accept"] = "application/json, text/event-stream"

local token = os.getenv("BENCH_TOKEN")
if token ~= nil and token ~= "" then
  wrk.headers["authorization"] = "Bearer " .. token
end

function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  local rps = 0
  if secs > 0 then rps = summary.requests / secs end
  local e = summary.errors
  local sock_errors = e.connect + e.read + e.write + e.timeout
  io.write(string.format(
    "BENCH rps=%.1f p50_us=%d p99_us=%d requests=%d non2xx=%d errors=%d duration_s=%.3f\n",
    rps, latency:percentile(50), latency:percentile(99), summary.requests, e.status,
    sock_errors, secs))
end
