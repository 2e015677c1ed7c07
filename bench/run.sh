#!/usr/bin/env bash
# FastMCP load benchmark: tools/call through the gateway vs. straight to the upstream.
#
#   bench/run.sh                      # from the repository root (any cwd works)
#   DURATION=30s CONNECTIONS=64 bench/run.sh
#
# Knobs (env):
#   DURATION     wrk duration per scenario           (default 10s)
#   CONNECTIONS  wrk connections                     (default 32)
#   THREADS      wrk threads                         (default 2)
#   WARMUP       unmeasured wrk run before each measured one, 0 = none (default 2s)
#   SKIP_BUILD   1 = do not run cargo build          (default 0)
#   FASTMCP_BIN  gateway binary                      (default target/release/fastmcp)
#   UPSTREAM_BIN bench upstream binary               (default bench/upstream/target/release/bench-upstream)
#   KEEP_TMP     1 = keep the temp dir (configs, logs, wrk output) and print its path
#
# Scenarios: direct (wrk -> bench-upstream), passthrough (gateway with auth, policy and rate
# limiting off), full (gateway defaults with a minted JWT; rate limit raised out of the way),
# full-redis (full with its state in a local redis-server the script starts: one Redis round
# trip per call, the rate-limit script; skipped when redis-server is not installed).
# For gateway runs the gateway's CPU time (utime+stime from /proc/PID/stat) over the measured
# wrk run is divided by the number of requests. The verdict line compares against the targets
# (full >= 0.27x direct, <= 60 us gateway CPU per request); it is informational and never
# changes the exit status. The exit status is non-zero only when the benchmark could not run.
set -euo pipefail

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
WARMUP=${WARMUP:-2s}
SKIP_BUILD=${SKIP_BUILD:-0}
KEEP_TMP=${KEEP_TMP:-0}

TARGET_RATIO=0.27   # full req/s must be at least this fraction of direct req/s
TARGET_CPU_US=60    # full gateway CPU per request, microseconds, at most

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
FASTMCP_BIN=${FASTMCP_BIN:-$ROOT/target/release/fastmcp}
UPSTREAM_BIN=${UPSTREAM_BIN:-$ROOT/bench/upstream/target/release/bench-upstream}
LUA=$ROOT/bench/tools_call.lua

log() { printf '[bench] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

for tool in wrk curl python3 getconf; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool not found (wrk: apt-get install -y wrk)"
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/fastmcp-bench.XXXXXX")
PIDS=()

cleanup() {
  local rc=$?
  set +e
  for pid in "${PIDS[@]}"; do
    stop_pid "$pid"
  done
  if [[ "$KEEP_TMP" == 1 ]]; then
    log "kept $TMP"
  else
    rm -rf "$TMP"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# stop_pid PID: TERM, wait up to ~10 s, then KILL. Only for processes this script started.
stop_pid() {
  local pid=$1 i
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  kill -TERM "$pid" 2>/dev/null
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "pid $pid ignored SIGTERM; killing"
    kill -KILL "$pid" 2>/dev/null
  fi
  wait "$pid" 2>/dev/null || true
  return 0
}

forget_pid() {
  local pid=$1 p keep=()
  for p in "${PIDS[@]}"; do [[ "$p" == "$pid" ]] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}

# free_ports N: N distinct free loopback ports (all bound at once, then released).
free_ports() {
  python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
EOF
}

# wait_port PID PORT WHAT LOGFILE: poll until PORT accepts TCP (bounded, ~30 s).
wait_port() {
  local pid=$1 port=$2 what=$3 logf=$4 i
  for ((i = 0; i < 300; i++)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      log "$what exited before listening on $port; log:"; tail -n 30 "$logf" >&2 || true
      return 1
    fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  log "$what not listening on $port after 30 s; log:"; tail -n 30 "$logf" >&2 || true
  return 1
}

# wait_health PID URL LOGFILE: poll until URL answers 200 (bounded, ~60 s).
wait_health() {
  local pid=$1 url=$2 logf=$3 i
  for ((i = 0; i < 600; i++)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      log "gateway exited during startup; log:"; tail -n 30 "$logf" >&2 || true
      return 1
    fi
    if curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  log "gateway health $url not 200 after 60 s; log:"; tail -n 30 "$logf" >&2 || true
  return 1
}

# cpu_ticks PID: utime+stime (fields 14 and 15 of /proc/PID/stat, all threads), clock ticks.
cpu_ticks() {
  local stat rest
  stat=$(<"/proc/$1/stat")
  rest=${stat##*) }            # drop "pid (comm) "; comm may contain spaces
  # rest starts at field 3 (state): utime is field 14 -> 12th word, stime 15 -> 13th.
  awk '{ print $12 + $13 }' <<<"$rest"
}

# bench_field LINE KEY: value of KEY=... in a BENCH line.
bench_field() { sed -n "s/.*[[:space:]]$2=\([^[:space:]]*\).*/\1/p" <<<"$1"; }

CLK_TCK=$(getconf CLK_TCK)
TOOLS_CALL='{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello"}}}'

# ---------------------------------------------------------------------------------------------
# Build
if [[ "$SKIP_BUILD" != 1 ]]; then
  log "building fastmcp (cargo build --release)"
  cargo build --release
  log "building bench-upstream"
  cargo build --release --manifest-path bench/upstream/Cargo.toml
fi
[[ -x "$UPSTREAM_BIN" ]] || die "$UPSTREAM_BIN missing (build bench/upstream)"

read -r UP_PORT GW_PORT ADMIN_PORT REDIS_PORT < <(free_ports 4)

# ---------------------------------------------------------------------------------------------
# Upstream
"$UPSTREAM_BIN" --port "$UP_PORT" >"$TMP/upstream.log" 2>&1 &
UP_PID=$!
PIDS+=("$UP_PID")
wait_port "$UP_PID" "$UP_PORT" bench-upstream "$TMP/upstream.log" || die "upstream did not start"
log "upstream pid $UP_PID on 127.0.0.1:$UP_PORT"

# Results, indexed by scenario.
declare -A RPS P50 P99 CPU REQ NON2XX ERRS NOTE REDIS_CPU
SCENARIOS=(direct passthrough full full-redis)
REDIS_PID=""

# run_wrk NAME URL TOKEN [PID]: warm-up + measured wrk run; fills the result arrays.
run_wrk() {
  local name=$1 url=$2 token=$3 pid=${4:-} out="$TMP/wrk-$1.txt" t0 t1 r0=0 r1=0 line
  if [[ "$WARMUP" != 0 && "$WARMUP" != 0s ]]; then
    BENCH_TOKEN=$token wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" -s "$LUA" "$url" \
      >"$TMP/wrk-$name-warmup.txt" 2>&1 || true
  fi
  [[ -n "$pid" ]] && t0=$(cpu_ticks "$pid")
  [[ -n "$REDIS_PID" ]] && r0=$(cpu_ticks "$REDIS_PID")
  log "$name: wrk -t$THREADS -c$CONNECTIONS -d$DURATION $url"
  if ! BENCH_TOKEN=$token wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency \
      -s "$LUA" "$url" >"$out" 2>&1; then
    log "$name: wrk failed:"; cat "$out" >&2
    NOTE[$name]="wrk failed"
    return 0
  fi
  [[ -n "$pid" ]] && t1=$(cpu_ticks "$pid")
  [[ -n "$REDIS_PID" ]] && r1=$(cpu_ticks "$REDIS_PID")
  sed 's/^/    /' "$out" >&2
  line=$(grep '^BENCH ' "$out" | tail -n 1 || true)
  if [[ -z "$line" ]]; then
    NOTE[$name]="no BENCH line"
    return 0
  fi
  RPS[$name]=$(bench_field "$line" rps)
  P50[$name]=$(bench_field "$line" p50_us)
  P99[$name]=$(bench_field "$line" p99_us)
  REQ[$name]=$(bench_field "$line" requests)
  NON2XX[$name]=$(bench_field "$line" non2xx)
  ERRS[$name]=$(bench_field "$line" errors)
  if [[ -n "$pid" ]]; then
    CPU[$name]=$(awk -v d=$((t1 - t0)) -v hz="$CLK_TCK" -v n="${REQ[$name]}" \
      'BEGIN { if (n > 0) printf "%.1f", d / hz * 1e6 / n; else print "" }')
  fi
  if [[ -n "$REDIS_PID" ]]; then
    REDIS_CPU[$name]=$(awk -v d=$((r1 - r0)) -v hz="$CLK_TCK" -v n="${REQ[$name]}" \
      'BEGIN { if (n > 0) printf "%.1f", d / hz * 1e6 / n; else print "" }')
  fi
  if [[ "${NON2XX[$name]:-0}" != 0 || "${ERRS[$name]:-0}" != 0 ]]; then
    NOTE[$name]="${NON2XX[$name]} non-2xx, ${ERRS[$name]} socket errors"
  fi
}

# write_config FILE MODE: the gateway config for passthrough or full.
write_config() {
  local file=$1 mode=$2
  {
    echo "# generated by bench/run.sh ($mode)"
    echo "listen: \"127.0.0.1:$GW_PORT\""
    echo "admin_listen: \"127.0.0.1:$ADMIN_PORT\""
    echo "log_level: \"warn\""
    echo "grace_period_seconds: 1"
    if [[ "$mode" == passthrough ]]; then
      echo "auth: {enabled: false}"
      echo "policy: {enabled: false}"
      echo "rate_limit: {enabled: false}"
    else
      echo "rate_limit: {default_rps: 1000000, burst: 1000000}"
    fi
    if [[ "$mode" == full-redis ]]; then
      echo "state: {redis_url: \"redis://127.0.0.1:$REDIS_PORT\"}"
    fi
    echo "mcp:"
    echo "  servers:"
    echo "    bench:"
    echo "      url: \"http://127.0.0.1:$UP_PORT/mcp\""
    echo "      discover: false"
    echo "      trusted: true"
    echo "      tool_tags: {echo: []}"
  } >"$file"
}

# run_gateway MODE: start the gateway in MODE, check it answers, bench it, stop it.
run_gateway() {
  local mode=$1 dir="$TMP/$1" token="" pid code
  mkdir -p "$dir/data" "$dir/audit"
  write_config "$dir/fastmcp.yaml" "$mode"
  if [[ ! -x "$FASTMCP_BIN" ]]; then
    log "$mode: $FASTMCP_BIN missing"; NOTE[$mode]="gateway binary missing"; return 0
  fi
  export FASTMCP_LISTEN="127.0.0.1:$GW_PORT" FASTMCP_ADMIN_LISTEN="127.0.0.1:$ADMIN_PORT"
  export FASTMCP_DATA_DIR="$dir/data" AUDIT_WORM_DIR="$dir/audit" LOG_LEVEL=warn
  if [[ "$mode" == full || "$mode" == full-redis ]]; then
    if ! token=$("$FASTMCP_BIN" token mint --sub bench --tenant acme --roles mcp-admin \
        --ttl 1h 2>"$dir/mint.err"); then
      log "$mode: token mint failed:"; cat "$dir/mint.err" >&2
      NOTE[$mode]="token mint failed"; return 0
    fi
    token=$(printf '%s' "$token" | tr -d '[:space:]')
    [[ -n "$token" ]] || { NOTE[$mode]="token mint printed nothing"; return 0; }
  fi
  "$FASTMCP_BIN" serve --config "$dir/fastmcp.yaml" >"$dir/gateway.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  log "$mode: gateway pid $pid on 127.0.0.1:$GW_PORT (admin $ADMIN_PORT)"
  if ! wait_health "$pid" "http://127.0.0.1:$ADMIN_PORT/health" "$dir/gateway.log" ||
     ! wait_port "$pid" "$GW_PORT" gateway "$dir/gateway.log"; then
    NOTE[$mode]="gateway did not start"
    stop_pid "$pid"; forget_pid "$pid"; return 0
  fi
  # One request by hand first, so a misconfiguration shows up as a readable answer.
  code=$(curl -sS -o "$dir/sanity.body" -w '%{http_code}' --max-time 10 \
    -H 'content-type: application/json' -H 'accept: application/json, text/event-stream' \
    ${token:+-H "authorization: Bearer $token"} --data "$TOOLS_CALL" \
    "http://127.0.0.1:$GW_PORT/mcp/bench" 2>"$dir/sanity.err" || true)
  if [[ "$code" != 2?? ]]; then
    log "$mode: sanity tools/call answered HTTP ${code:-none}: $(head -c 400 "$dir/sanity.body" 2>/dev/null) $(cat "$dir/sanity.err")"
  fi
  run_wrk "$mode" "http://127.0.0.1:$GW_PORT/mcp/bench" "$token" "$pid"
  if ! kill -0 "$pid" 2>/dev/null; then
    log "$mode: gateway died during the run; log:"; tail -n 30 "$dir/gateway.log" >&2 || true
    NOTE[$mode]="${NOTE[$mode]:+${NOTE[$mode]}; }gateway died"
  fi
  stop_pid "$pid"; forget_pid "$pid"
  # Data and audit dirs are per run; drop them now (the whole $TMP goes on exit).
  [[ "$KEEP_TMP" == 1 ]] || rm -rf "$dir/data" "$dir/audit"
}

run_wrk direct "http://127.0.0.1:$UP_PORT/mcp" ""
run_gateway passthrough
run_gateway full
if command -v redis-server >/dev/null 2>&1; then
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
    >"$TMP/redis.log" 2>&1 &
  REDIS_PID=$!
  PIDS+=("$REDIS_PID")
  if wait_port "$REDIS_PID" "$REDIS_PORT" redis-server "$TMP/redis.log"; then
    run_gateway full-redis
  else
    NOTE[full-redis]="redis-server did not start"
  fi
  stop_pid "$REDIS_PID"; forget_pid "$REDIS_PID"; REDIS_PID=""
else
  NOTE[full-redis]="redis-server not installed"
fi

# ---------------------------------------------------------------------------------------------
# Report
ratio() { awk -v a="${1:-}" -v b="${2:-}" 'BEGIN { if (a != "" && b > 0) printf "%.3f", a / b; else print "-" }'; }
orDash() { if [[ -n "${1:-}" ]]; then printf '%s' "$1"; else printf -- '-'; fi; }

echo
echo "FastMCP bench: wrk -t$THREADS -c$CONNECTIONS -d$DURATION, tools/call, $(nproc) CPUs, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
fmt='%-12s | %10s | %9s | %9s | %18s | %9s | %14s | %s\n'
# shellcheck disable=SC2059
printf "$fmt" scenario "req/s" "p50 us" "p99 us" "gateway CPU us/req" "x direct" "x passthrough" notes
# shellcheck disable=SC2059
printf "$fmt" ------------ ---------- --------- --------- ------------------ --------- -------------- -----
for s in "${SCENARIOS[@]}"; do
  # shellcheck disable=SC2059
  printf "$fmt" "$s" "$(orDash "${RPS[$s]:-}")" "$(orDash "${P50[$s]:-}")" "$(orDash "${P99[$s]:-}")" \
    "$(orDash "${CPU[$s]:-}")" "$(ratio "${RPS[$s]:-}" "${RPS[direct]:-}")" \
    "$(ratio "${RPS[$s]:-}" "${RPS[passthrough]:-}")" "${NOTE[$s]:-}"
done
echo
if [[ -n "${RPS[full-redis]:-}" && -n "${RPS[full]:-}" ]]; then
  awk -v r="${RPS[full-redis]}" -v f="${RPS[full]}" -v p50r="${P50[full-redis]}" -v p50f="${P50[full]}" \
      -v p99r="${P99[full-redis]}" -v p99f="${P99[full]}" -v cr="${CPU[full-redis]:-0}" -v cf="${CPU[full]:-0}" \
      -v rc="${REDIS_CPU[full-redis]:-0}" 'BEGIN {
    printf "REDIS: full-redis vs full: throughput %.3fx (cost %.1f%%, target <= 15%%), p50 %+d us, p99 %+d us, gateway CPU %+.1f us/req, redis-server CPU %.1f us/req\n",
      r / f, (1 - r / f) * 100, p50r - p50f, p99r - p99f, cr - cf, rc }'
fi

full_ratio=$(ratio "${RPS[full]:-}" "${RPS[direct]:-}")
full_cpu=${CPU[full]:-}
if [[ "$full_ratio" == - || -z "$full_cpu" ]]; then
  echo "VERDICT: INCOMPLETE (full pipeline not measured: ${NOTE[full]:-no result})"
  exit 1
fi
verdict=$(awk -v r="$full_ratio" -v c="$full_cpu" -v tr="$TARGET_RATIO" -v tc="$TARGET_CPU_US" '
  BEGIN {
    okr = (r + 0 >= tr + 0); okc = (c + 0 <= tc + 0)
    printf "%s (full/direct %.3f, target >= %s: %s; gateway CPU %.1f us/req, target <= %s: %s)",
      (okr && okc) ? "PASS" : "MISS", r, tr, okr ? "met" : "missed", c, tc, okc ? "met" : "missed"
  }')
if [[ -n "${NOTE[full]:-}" || -n "${NOTE[passthrough]:-}" || -n "${NOTE[direct]:-}" ]]; then
  verdict="$verdict; WARNING: some runs had non-2xx/errors (see notes), numbers are suspect"
fi
echo "VERDICT: $verdict"
# Context: the ratio target was set against TESTING.md's hyper upstream (53k-76k req/s here);
# bench-upstream is leaner, so "direct" can be well above that and the ratio harder to meet.
awk -v d="${RPS[direct]:-0}" -v f="${RPS[full]:-0}" -v tr="$TARGET_RATIO" 'BEGIN {
  printf "CONTEXT: direct %.0f req/s (TESTING.md hyper upstream: 53000-76000); full %.0f req/s = %.2fx-%.2fx of that range (target %s)\n",
    d, f, f / 76000, f / 53000, tr }'
