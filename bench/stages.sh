# shellcheck shell=bash
# Stages bench/run.sh runs after its interleaved rounds (sourced by run.sh: it uses run.sh's
# helpers and globals — log, note-free stage results, start_gateway, stop_gateway, sanity,
# cpu_ticks, per_req_us, stop_pid, forget_pid, PIDS, TMP, ports, WARMUP). Not run on its own.
#
#   paced     bench/pacer at a fixed rate (half of full's median req/s, or PACED_RATE) against
#             direct, then against a fresh full-config gateway, then against one with
#             `audit: {durable: false}` (buffered: the same records, the answer not waiting for
#             their fsync); latency runs from each request's intended send time (coordinated
#             omission corrected). Reports p50/p99 of each and the p99 the gateway adds
#             (target <= 250 us; the verdict is full's, buffered's is printed beside it).
#   sse-idle  a fresh full-config gateway with raised session caps; bench/pacer opens
#             SSE_STREAMS idle SSE streams on the federated /mcp (one session each) and holds
#             them; reports VmRSS right after start, before and after the streams, and the
#             growth per stream (target <= 16 KiB) and the idle RSS (target <= 32 MiB).

TARGET_ADDED_P99_US=250   # full p99 - direct p99 at the paced rate, microseconds, at most
TARGET_SSE_KIB=16         # gateway RSS growth per idle SSE stream, KiB, at most
TARGET_IDLE_MIB=32        # gateway RSS right after start, MiB, at most

# Results, filled by run_stages, printed by print_stages.
declare -A PACED_LINE PACED_CPU
PACED_NOTE="" PACED_RATE_USED="" SSE_NOTE="" SSE_LINE=""
SSE_RSS_START="" SSE_RSS_BEFORE="" SSE_RSS_AFTER="" SSE_FDS="" SSE_SECONDS=""

# rss_kib PID: VmRSS of PID in KiB, empty when unreadable.
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || true; }

# paced_one NAME URL TOKEN PID: warm-up (WARMUP, same rate) and the measured paced run at
# PACED_RATE_USED; keeps the PACED line and the CPU per request of PID over the measured run.
paced_one() {
  local name=$1 url=$2 token=$3 pid=$4 out="$TMP/paced-$1.txt" t0 t1 line done_n
  local args=(--url "$url" --rate "$PACED_RATE_USED" --connections "$PACED_CONNECTIONS"
    --body-file "$TMP/tools_call.json")
  [[ -n "$token" ]] && args+=(--header "authorization: Bearer $token")
  if [[ "$WARMUP" != 0 && "$WARMUP" != 0s ]]; then
    "$PACER_BIN" "${args[@]}" --duration "$WARMUP" >"$TMP/paced-$name-warmup.txt" 2>&1 || true
  fi
  t0=$(cpu_ticks "$pid")
  log "paced $name: pacer --rate $PACED_RATE_USED --duration $PACED_DURATION --connections $PACED_CONNECTIONS $url"
  if ! "$PACER_BIN" "${args[@]}" --duration "$PACED_DURATION" >"$out" 2>&1; then
    log "paced $name: pacer failed:"; cat "$out" >&2
    PACED_NOTE="${PACED_NOTE:+$PACED_NOTE; }$name: pacer failed"
    return 0
  fi
  t1=$(cpu_ticks "$pid")
  sed 's/^/    /' "$out" >&2
  line=$(grep '^PACED ' "$out" | tail -n 1 || true)
  if [[ -z "$line" ]]; then
    PACED_NOTE="${PACED_NOTE:+$PACED_NOTE; }$name: no PACED line"; return 0
  fi
  PACED_LINE[$name]=$line
  done_n=$(( $(bench_field "$line" ok) + $(bench_field "$line" non2xx) ))
  PACED_CPU[$name]=$(per_req_us $((t1 - t0)) "$done_n")
  if [[ "$(bench_field "$line" non2xx)" != 0 || "$(bench_field "$line" errors)" != 0 ]]; then
    PACED_NOTE="${PACED_NOTE:+$PACED_NOTE; }$name: $(bench_field "$line" non2xx) non-2xx, $(bench_field "$line" errors) errors"
  fi
}

run_paced_stage() {
  local dir="$TMP/paced-full"
  if [[ -n "$PACED_RATE" ]]; then
    PACED_RATE_USED=$PACED_RATE
  elif [[ -n "${M_RPS[full]:-}" ]]; then
    PACED_RATE_USED=$(( ${M_RPS[full]} / 2 ))
  fi
  if [[ -z "$PACED_RATE_USED" || "$PACED_RATE_USED" == 0 ]]; then
    PACED_NOTE="no rate: the full row was not measured (set PACED_RATE)"; return 0
  fi
  printf '%s' "$TOOLS_CALL" >"$TMP/tools_call.json"
  log "=== paced: $PACED_RATE_USED req/s for $PACED_DURATION, direct then full"
  paced_one direct "http://127.0.0.1:$UP_PORT/mcp" "" "$UP_PID"
  if ! start_gateway full "$dir"; then
    PACED_NOTE="${PACED_NOTE:+$PACED_NOTE; }full: $GW_FAIL"; return 0
  fi
  sanity paced-full "http://127.0.0.1:$GW_PORT/mcp/bench" "$GW_TOKEN" "$dir"
  paced_one full "http://127.0.0.1:$GW_PORT/mcp/bench" "$GW_TOKEN" "$GW_PID"
  kill -0 "$GW_PID" 2>/dev/null || PACED_NOTE="${PACED_NOTE:+$PACED_NOTE; }full: gateway died"
  stop_gateway full "$dir"
  # The same at the same rate without the durable wait: what the fsync costs the tail.
  dir="$TMP/paced-buffered"
  if ! start_gateway full-buffered "$dir"; then
    PACED_NOTE="${PACED_NOTE:+$PACED_NOTE; }buffered: $GW_FAIL"; return 0
  fi
  sanity paced-buffered "http://127.0.0.1:$GW_PORT/mcp/bench" "$GW_TOKEN" "$dir"
  paced_one buffered "http://127.0.0.1:$GW_PORT/mcp/bench" "$GW_TOKEN" "$GW_PID"
  kill -0 "$GW_PID" 2>/dev/null || PACED_NOTE="${PACED_NOTE:+$PACED_NOTE; }buffered: gateway died"
  stop_gateway full-buffered "$dir"
}

# raise_nofile N: soft RLIMIT_NOFILE of this shell (inherited by the gateway and pacer) to at
# least N, or to the hard limit; sets NOFILE to the limit in effect. (Not in a subshell: the
# limit must change in the shell that starts them.)
raise_nofile() {
  local want=$1 hard
  if [[ "$(ulimit -n)" != unlimited ]] && (( $(ulimit -n) < want )); then
    if ! ulimit -n "$want" 2>/dev/null; then
      hard=$(ulimit -Hn)
      [[ "$hard" == unlimited ]] || ulimit -n "$hard" 2>/dev/null || true
    fi
  fi
  NOFILE=$(ulimit -n)
}

run_sse_stage() {
  local dir="$TMP/full-sse" limit pid line i t0 streams=$SSE_STREAMS
  # Each stream is one socket in the gateway and one in pacer, plus their other files.
  raise_nofile $((streams + 1024))
  limit=$NOFILE
  if [[ "$limit" != unlimited ]] && (( limit < streams + 1024 )); then
    streams=$((limit - 1024))
    SSE_NOTE="ulimit -n is $limit (hard limit): only $streams streams"
    (( streams > 0 )) || { SSE_NOTE="ulimit -n is $limit: too low for any streams"; return 0; }
  fi
  log "=== sse-idle: $streams idle SSE streams on the federated /mcp (ulimit -n $limit)"
  if ! start_gateway full-sse "$dir"; then
    SSE_NOTE="${SSE_NOTE:+$SSE_NOTE; }$GW_FAIL"; return 0
  fi
  SSE_RSS_START=$(rss_kib "$GW_PID")
  sanity full-sse "http://127.0.0.1:$GW_PORT/mcp/bench" "$GW_TOKEN" "$dir"
  SSE_RSS_BEFORE=$(rss_kib "$GW_PID")
  t0=$(date +%s)
  # --hold: pacer keeps the streams until it is stopped below, after the RSS is read.
  "$PACER_BIN" sse-idle --url "http://127.0.0.1:$GW_PORT/mcp" --count "$streams" \
    --header "authorization: Bearer $GW_TOKEN" --hold 3600 >"$dir/sse.out" 2>"$dir/sse.err" </dev/null &
  pid=$!
  PIDS+=("$pid")
  for ((i = 0; i < SSE_TIMEOUT * 10; i++)); do
    grep -q '^SSE ' "$dir/sse.out" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  line=$(grep '^SSE ' "$dir/sse.out" 2>/dev/null | tail -n 1 || true)
  SSE_SECONDS=$(( $(date +%s) - t0 ))
  if [[ -z "$line" ]]; then
    log "sse-idle: no SSE line from pacer after ${SSE_SECONDS}s:"; cat "$dir/sse.err" >&2
    SSE_NOTE="${SSE_NOTE:+$SSE_NOTE; }pacer did not finish opening"
  else
    SSE_RSS_AFTER=$(rss_kib "$GW_PID")
    SSE_FDS=$(find "/proc/$GW_PID/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
    SSE_LINE=$line
    log "sse-idle: $line in ${SSE_SECONDS}s; gateway VmRSS ${SSE_RSS_BEFORE} -> ${SSE_RSS_AFTER} KiB, $SSE_FDS open files"
    [[ -s "$dir/sse.err" ]] && sed 's/^/    /' "$dir/sse.err" >&2
  fi
  kill -0 "$GW_PID" 2>/dev/null || SSE_NOTE="${SSE_NOTE:+$SSE_NOTE; }gateway died"
  stop_pid "$pid"; forget_pid "$pid"
  stop_gateway full-sse "$dir"
}

# run_stages: the stages that are on (PACED, SSE_IDLE), after the rounds.
run_stages() {
  if [[ "$PACED" == 0 && "$SSE_IDLE" == 0 ]]; then return 0; fi
  if [[ ! -x "$PACER_BIN" ]]; then
    log "stages: $PACER_BIN missing (build bench/pacer)"
    [[ "$PACED" != 0 ]] && PACED_NOTE="pacer binary missing"
    [[ "$SSE_IDLE" != 0 ]] && SSE_NOTE="pacer binary missing"
    return 0
  fi
  [[ "$PACED" == 0 ]] || run_paced_stage
  [[ "$SSE_IDLE" == 0 ]] || run_sse_stage
}

# print_stages: the PACED and SSE report lines (informational, like the verdict).
print_stages() {
  local d=${PACED_LINE[direct]:-} f=${PACED_LINE[full]:-} b=${PACED_LINE[buffered]:-}
  if [[ "$PACED" != 0 ]]; then
    local how="half of full's median ${M_RPS[full]:-?} req/s"
    [[ -n "$PACED_RATE" ]] && how="PACED_RATE"
    echo "PACED: $PACED_RATE_USED req/s fixed rate ($how), $PACED_DURATION, $PACED_CONNECTIONS connections, latency from the intended send time${PACED_NOTE:+; notes: $PACED_NOTE}"
    local s line
    for s in direct full buffered; do
      line=${PACED_LINE[$s]:-}
      [[ -n "$line" ]] || { printf '  %-8s -\n' "$s"; continue; }
      printf '  %-8s p50 %s us, p90 %s us, p99 %s us, p99.9 %s us, max %s us; sent %s ok %s non2xx %s errors %s, achieved %s req/s, CPU %s us/req (%s)\n' \
        "$s" "$(bench_field "$line" p50_us)" "$(bench_field "$line" p90_us)" "$(bench_field "$line" p99_us)" \
        "$(bench_field "$line" p999_us)" "$(bench_field "$line" max_us)" "$(bench_field "$line" sent)" \
        "$(bench_field "$line" ok)" "$(bench_field "$line" non2xx)" "$(bench_field "$line" errors)" \
        "$(bench_field "$line" achieved_rps)" "${PACED_CPU[$s]:--}" \
        "$([[ $s == direct ]] && echo bench-upstream || echo gateway)"
    done
    if [[ -n "$d" && -n "$f" ]]; then
      awk -v dp50="$(bench_field "$d" p50_us)" -v fp50="$(bench_field "$f" p50_us)" \
          -v dp99="$(bench_field "$d" p99_us)" -v fp99="$(bench_field "$f" p99_us)" -v t="$TARGET_ADDED_P99_US" 'BEGIN {
        a = fp99 - dp99
        printf "PACED VERDICT: added p50 %+d us, added p99 %+d us (full %d - direct %d), target <= %d us: %s\n",
          fp50 - dp50, a, fp99, dp99, t, (a <= t) ? "met" : "missed" }'
    else
      echo "PACED VERDICT: not measured"
    fi
    if [[ -n "$d" && -n "$b" ]]; then
      awk -v dp50="$(bench_field "$d" p50_us)" -v bp50="$(bench_field "$b" p50_us)" \
          -v dp99="$(bench_field "$d" p99_us)" -v bp99="$(bench_field "$b" p99_us)" 'BEGIN {
        printf "PACED buffered (audit.durable false: no fsync wait before the answer): added p50 %+d us, added p99 %+d us (buffered %d - direct %d)\n",
          bp50 - dp50, bp99 - dp99, bp99, dp99 }'
    fi
  fi
  if [[ "$SSE_IDLE" != 0 ]]; then
    local open failed
    open=$(bench_field "$SSE_LINE" open) failed=$(bench_field "$SSE_LINE" failed)
    if [[ -n "$SSE_RSS_AFTER" && "${open:-0}" -gt 0 ]]; then
      awk -v s="$SSE_RSS_START" -v b="$SSE_RSS_BEFORE" -v a="$SSE_RSS_AFTER" -v n="$open" -v f="$failed" \
          -v fds="$SSE_FDS" -v secs="$SSE_SECONDS" -v t="$TARGET_SSE_KIB" -v ti="$TARGET_IDLE_MIB" \
          -v note="$SSE_NOTE" 'BEGIN {
        per = (a - b) / n
        printf "SSE: %d idle streams open (%d failed) in %d s, gateway %d open files; VmRSS right after start %.1f MiB, before the streams %.1f MiB, with them %.1f MiB%s\n",
          n, f, secs, fds, s / 1024, b / 1024, a / 1024, (note != "" ? "; notes: " note : "")
        printf "SSE VERDICT: %.1f KiB per idle stream (session + connection), target <= %d KiB: %s; idle RSS %.1f MiB, target <= %d MiB: %s\n",
          per, t, (per <= t) ? "met" : "missed", s / 1024, ti, (s / 1024 <= ti) ? "met" : "missed" }'
    else
      echo "SSE: not measured${SSE_NOTE:+: $SSE_NOTE}${SSE_RSS_START:+ (idle RSS right after start $(awk -v s="$SSE_RSS_START" 'BEGIN { printf "%.1f", s / 1024 }') MiB)}"
    fi
  fi
  return 0
}
