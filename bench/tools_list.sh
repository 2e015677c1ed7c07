#!/usr/bin/env bash
# tools/list filtering cost: gateway CPU per `tools/list` whose upstream answer lists TOOLS
# tools (default 1000), each decided by the policy (the `tools.invoke` decision a call would
# get) and kept or cut out. The upstream is a tiny Python server answering every POST with the
# same list; its CPU is not counted. CPU is the gateway's utime+stime (/proc) over REQUESTS
# sequential calls, minus nothing: the figure includes proxying and the list's audit record.
#
#   bench/tools_list.sh                    # from the repository root
#   TOOLS=1000 REQUESTS=50 FASTMCP_BIN=target/release/fastmcp bench/tools_list.sh
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FASTMCP_BIN=${FASTMCP_BIN:-$ROOT/target/release/fastmcp}
TOOLS=${TOOLS:-1000}
REQUESTS=${REQUESTS:-50}
TARGET_MS=2
[[ -x "$FASTMCP_BIN" ]] || { echo "[tools-list] $FASTMCP_BIN missing (cargo build --release)" >&2; exit 1; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/fastmcp-tools-list.XXXXXX")
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$TMP"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
UP=$(port); GW=$(port); ADMIN=$(port)
cat >"$TMP/upstream.py" <<PY
import json, http.server
tools = [{"name": f"tool_{i}", "description": f"Tool number {i}: does thing {i} to the workspace.",
          "inputSchema": {"type": "object", "properties": {"path": {"type": "string"}, "count": {"type": "integer"}},
                          "required": ["path"]},
          "annotations": {"readOnlyHint": i % 2 == 0, "destructiveHint": i % 5 == 0}} for i in range($TOOLS)]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        req = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
        body = json.dumps({"jsonrpc": "2.0", "id": req.get("id"), "result": {"tools": tools}}).encode()
        self.send_response(200); self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", $UP), H).serve_forever()
PY
python3 "$TMP/upstream.py" & PIDS+=($!)
cat >"$TMP/fastmcp.yaml" <<YAML
listen: "127.0.0.1:$GW"
admin_listen: "127.0.0.1:$ADMIN"
log_level: "warn"
rate_limit: {default_rps: 1000000, burst: 1000000, plumbing_rps: 1000000, plumbing_burst: 1000000}
mcp:
  servers:
    bench:
      url: "http://127.0.0.1:$UP/mcp"
      discover: false
      trusted: true
YAML
mkdir -p "$TMP/data" "$TMP/audit"
export FASTMCP_DATA_DIR="$TMP/data" AUDIT_WORM_DIR="$TMP/audit" LOG_LEVEL=warn
TOKEN=$("$FASTMCP_BIN" token mint --sub bench --tenant acme --roles mcp-admin --ttl 1h | tr -d '[:space:]')
"$FASTMCP_BIN" serve --config "$TMP/fastmcp.yaml" >"$TMP/gw.log" 2>&1 & GWP=$!; PIDS+=($GWP)
for _ in $(seq 200); do curl -sf "http://127.0.0.1:$ADMIN/health" >/dev/null && break; sleep 0.05; done
call() {
  curl -sS --max-time 30 -H 'content-type: application/json' -H 'accept: application/json, text/event-stream' \
    -H "authorization: Bearer $TOKEN" --data '{"jsonrpc":"2.0","id":7,"method":"tools/list"}' \
    "http://127.0.0.1:$GW/mcp/bench"
}
first=$(call); kept=$(printf "%s" "$first" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(len(d["result"]["tools"]) if "result" in d else "error: " + json.dumps(d)[:300])')
ticks() { awk '{print $14+$15}' "/proc/$GWP/stat"; }
hz=$(getconf CLK_TCK)
t0=$(ticks)
for ((i = 0; i < REQUESTS; i++)); do call >/dev/null; done
t1=$(ticks)
ms=$(awk -v d=$((t1 - t0)) -v hz="$hz" -v n="$REQUESTS" 'BEGIN { printf "%.2f", d / hz * 1e3 / n }')
echo "TOOLS_LIST tools=$TOOLS kept=$kept requests=$REQUESTS gateway_cpu_ms_per_list=$ms target_ms=$TARGET_MS"
