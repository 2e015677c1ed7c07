#!/usr/bin/env bash
# The deployment stack of docker-compose.yml, run natively (no container engine needed):
# two gateway instances behind HAProxy, Redis, the Python SDK demo MCP server,
# server-everything and Prometheus scraping both gateways. Same deploy/ files and, by
# default, the same ports as the compose services; Grafana is compose-only.
#
#   scripts/stack.sh up        start everything, wait until each answers; exit 1 (and stop
#                              what it started) if one does not
#   scripts/stack.sh status    one line per service; exit 0 all running, 1 some, 3 none
#   scripts/stack.sh down      stop every process `up` started (process groups, TERM then
#                              KILL after a bounded wait); leaves none
#   scripts/stack.sh token ARGS...   `fastmcp token mint ARGS` with the stack's shared dev key
#                              (e.g. --sub alice --tenant acme --roles mcp-user)
#
# What differs from the compose services is only addressing: everything listens on
# 127.0.0.1 (the demo server therefore keeps its loopback Host check, which compose turns off
# with --allow-any-host), service names become 127.0.0.1 (MCP_*_URL, REDIS_URL, the HAProxy
# addresses from the environment, Prometheus' targets rewritten in a copy of its config), and
# the policy file is read from deploy/ instead of /etc/fastmcp.
#
# State (pid files, logs, each instance's data and audit directories, the shared dev key,
# Prometheus' storage) lives in STACK_DIR (default .stack/ in the repository), owned by this
# script: `up` clears it (logs of the last run are kept until the next `up`), and refuses a
# non-empty directory it did not create.
#
# Environment:
#   FASTMCP_BIN      gateway binary (default: target/release/fastmcp, else the release or
#                    debug binary under CARGO_TARGET_DIR or target/, else `cargo build --release`)
#   PYTHON           interpreter with the MCP SDK (default .venv/bin/python, from
#                    scripts/setup-test-deps.sh); NODE (default node) for server-everything
#   STACK_LB_PORT=8000  STACK_GW1_PORT=8001  STACK_GW1_ADMIN_PORT=9901
#   STACK_GW2_PORT=8002 STACK_GW2_ADMIN_PORT=9902  STACK_REDIS_PORT=6379
#   STACK_DEMO_PORT=3001 STACK_EVERYTHING_PORT=3002 STACK_PROMETHEUS_PORT=9090
#   STACK_WAIT_SECONDS=60  how long `up` waits for each service
# Needs: redis-server, haproxy, prometheus (Debian packages; .ci/run installs them).
set -Eeuo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK_DIR="${STACK_DIR:-$REPO/.stack}"
PIDS="$STACK_DIR/pids"
LOGS="$STACK_DIR/logs"

LB_PORT="${STACK_LB_PORT:-8000}"
GW1_PORT="${STACK_GW1_PORT:-8001}"
GW1_ADMIN="${STACK_GW1_ADMIN_PORT:-9901}"
GW2_PORT="${STACK_GW2_PORT:-8002}"
GW2_ADMIN="${STACK_GW2_ADMIN_PORT:-9902}"
REDIS_PORT="${STACK_REDIS_PORT:-6379}"
DEMO_PORT="${STACK_DEMO_PORT:-3001}"
EVERYTHING_PORT="${STACK_EVERYTHING_PORT:-3002}"
PROM_PORT="${STACK_PROMETHEUS_PORT:-9090}"
WAIT_SECONDS="${STACK_WAIT_SECONDS:-60}"

# Start order; `down` stops in reverse.
SERVICES=(redis demo everything gateway1 gateway2 lb prometheus)

log() { echo "stack: $*" >&2; }
die() {
    log "$*"
    exit 1
}

# ------------------------------------------------------------------ helpers

# The gateway binary, per FASTMCP_BIN or the documented search order.
fastmcp_bin() {
    if [[ -n "${FASTMCP_BIN:-}" ]]; then
        [[ -x "$FASTMCP_BIN" ]] || die "FASTMCP_BIN=$FASTMCP_BIN is not an executable"
        echo "$FASTMCP_BIN"
        return
    fi
    local t="${CARGO_TARGET_DIR:-$REPO/target}" c
    for c in "$REPO/target/release/fastmcp" "$t/release/fastmcp" "$t/debug/fastmcp" "$REPO/target/debug/fastmcp"; do
        [[ -x "$c" ]] && {
            echo "$c"
            return
        }
    done
    log "no fastmcp binary found; building it (cargo build --release)"
    (cd "$REPO" && cargo build --release --bin fastmcp >&2)
    echo "$t/release/fastmcp"
}

need() { command -v "$1" >/dev/null 2>&1 || die "$1 not found on PATH ($2)"; }

# A process's start time (field 22 of /proc/PID/stat): with the pid it names one process,
# so `down` never signals an unrelated process that reused a recorded pid. A zombie counts
# as gone (nothing more to stop).
start_time() {
    local stat
    stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
    # Fields after the command name, which is in parentheses and may hold spaces.
    read -r -a rest <<<"${stat##*) }"
    [[ "${rest[0]}" != Z ]] || return 1
    echo "${rest[19]}"
}

# alive NAME: the recorded process of NAME is running.
alive() {
    local f="$PIDS/$1.pid" pid st
    [[ -f "$f" ]] || return 1
    read -r pid st <"$f"
    [[ -n "$pid" && -n "$st" && "$(start_time "$pid")" == "$st" ]]
}

# spawn NAME DIR CMD...: runs CMD in DIR in its own session (so its process group holds
# everything it forks), output to logs/NAME.log, and records "pid starttime".
spawn() {
    local name="$1" dir="$2"
    shift 2
    (cd "$dir" && exec setsid "$@" >"$LOGS/$name.log" 2>&1 </dev/null) &
    local pid=$!
    # Read at once: $! exists until this shell reaps it. No start time means it already
    # exited (recorded as such, so `alive` is false and `up` reports the exit).
    local st
    st="$(start_time "$pid")" || st=""
    echo "$pid ${st:-exited}" >"$PIDS/$name.pid"
}

# port_open PORT: something accepts TCP connections on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# http_200 PORT PATH: GET answers 200 (bash only, no HTTP client needed).
http_200() {
    local status
    status="$(
        exec 2>/dev/null
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        printf 'GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' "$2" >&3
        IFS= read -r -t 5 line <&3 && echo "$line"
    )" 2>/dev/null || return 1
    [[ "$status" == HTTP/1.?" 200"* ]]
}

# wait_for NAME CHECK...: polls CHECK until it succeeds, NAME's process dies, or the deadline.
wait_for() {
    local name="$1"
    shift
    local deadline=$((SECONDS + WAIT_SECONDS))
    while ((SECONDS < deadline)); do
        "$@" && return 0
        alive "$name" || {
            log "$name exited; last log lines:"
            tail -n 20 "$LOGS/$name.log" >&2 || true
            return 1
        }
        sleep 0.1
    done
    log "$name not ready within ${WAIT_SECONDS}s; last log lines:"
    tail -n 20 "$LOGS/$name.log" >&2 || true
    return 1
}

# term NAME: SIGTERM to NAME's process group, if its recorded process is running. The
# gateways then drain for grace_period_seconds, so `down` signals every service first and
# waits afterwards (the waits overlap).
term() {
    local pid st
    alive "$1" || return 0
    read -r pid st <"$PIDS/$1.pid"
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
}

# reap NAME: waits (bounded) for NAME to exit after `term`, KILLs it past 10 s; the pid file
# goes once it is gone.
reap() {
    local name="$1" f="$PIDS/$1.pid" pid st
    [[ -f "$f" ]] || return 0
    read -r pid st <"$f"
    if alive "$name"; then
        local deadline=$((SECONDS + 10))
        while alive "$name" && ((SECONDS < deadline)); do sleep 0.1; done
        if alive "$name"; then
            log "$name (pid $pid) ignored SIGTERM; killing"
            kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
            deadline=$((SECONDS + 5))
            while alive "$name" && ((SECONDS < deadline)); do sleep 0.1; done
        fi
        # The leader is gone, a child it forked may not be: sweep the group (its id cannot
        # have been reused while the group has members).
        kill -KILL -- "-$pid" 2>/dev/null || true
    fi
    if alive "$name"; then
        log "$name (pid $pid) could not be stopped"
        return 1
    fi
    rm -f "$f"
    log "stopped $name"
}

# ------------------------------------------------------------------ services

gateway_env() { # gateway_env N PORT ADMIN_PORT
    local n="$1"
    echo "FASTMCP_LISTEN=127.0.0.1:$2"
    echo "FASTMCP_ADMIN_LISTEN=127.0.0.1:$3"
    echo "FASTMCP_DATA_DIR=$STACK_DIR/gateway$n/data"
    echo "AUDIT_WORM_DIR=$STACK_DIR/gateway$n/audit"
    echo "FASTMCP_POLICIES=$REPO/deploy/policies.yml"
    echo "FASTMCP__AUDIT__INSTANCE=gateway$n"
    echo "FASTMCP__MCP__REQUEST_STATE_KEY=$(cat "$STACK_DIR/request_state_key")"
    echo "REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0"
    echo "MCP_DEMO_URL=http://127.0.0.1:$DEMO_PORT/mcp"
    echo "MCP_EVERYTHING_URL=http://localhost:$EVERYTHING_PORT/mcp"
}

start_gateway() { # start_gateway N PORT ADMIN_PORT
    local n="$1" dir="$STACK_DIR/gateway$1" envs=()
    mkdir -p "$dir/data" "$dir/audit"
    # Both instances verify (and `token` signs) with one dev key pair, as the compose
    # stack's shared `devkeys` volume does.
    ln -sfn "$STACK_DIR/keys/dev-keys" "$dir/data/dev-keys"
    mapfile -t envs < <(gateway_env "$n" "$2" "$3")
    spawn "gateway$n" "$dir" env "${envs[@]}" "$BIN" serve --config "$REPO/deploy/gateway.yaml"
}

render_prometheus() {
    local out="$STACK_DIR/prometheus.yml"
    sed -e "s/\"gateway1:9901\"/\"127.0.0.1:$GW1_ADMIN\"/" -e "s/\"gateway2:9902\"/\"127.0.0.1:$GW2_ADMIN\"/" \
        "$REPO/deploy/prometheus.yml" >"$out"
    grep -q "\"127.0.0.1:$GW1_ADMIN\"" "$out" && grep -q "\"127.0.0.1:$GW2_ADMIN\"" "$out" \
        || die "deploy/prometheus.yml no longer lists \"gateway1:9901\" and \"gateway2:9902\" as targets"
    echo "$out"
}

lb_env() {
    echo "LB_BIND=127.0.0.1:$LB_PORT"
    echo "GW1_ADDR=127.0.0.1:$GW1_PORT"
    echo "GW2_ADDR=127.0.0.1:$GW2_PORT"
    echo "GW1_ADMIN_PORT=$GW1_ADMIN"
    echo "GW2_ADMIN_PORT=$GW2_ADMIN"
    echo "LB_PIDFILE=$STACK_DIR/haproxy.pid"
}

up() {
    local any=0 s
    for s in "${SERVICES[@]}"; do alive "$s" && any=1; done
    ((any == 0)) || die "already up (scripts/stack.sh status; scripts/stack.sh down first)"
    need redis-server "apt-get install redis-server"
    need haproxy "apt-get install haproxy"
    need prometheus "apt-get install prometheus"
    local python="${PYTHON:-$REPO/.venv/bin/python}" node="${NODE:-node}"
    local everything="$REPO/tests/node/node_modules/@modelcontextprotocol/server-everything/dist/index.js"
    [[ -x "$python" ]] || die "$python missing (run scripts/setup-test-deps.sh)"
    [[ -f "$everything" ]] || die "server-everything missing (run scripts/setup-test-deps.sh)"
    need "$node" "Node.js for server-everything"
    BIN="$(fastmcp_bin)"
    local p
    for p in "$LB_PORT" "$GW1_PORT" "$GW1_ADMIN" "$GW2_PORT" "$GW2_ADMIN" "$REDIS_PORT" "$DEMO_PORT" \
        "$EVERYTHING_PORT" "$PROM_PORT"; do
        port_open "$p" && die "port $p is in use (set STACK_*_PORT to move the stack)"
    done

    # Clear the previous run, but only a directory this script made (its marker file), so a
    # mistyped STACK_DIR never deletes anything else.
    if [[ -e "$STACK_DIR" && ! -f "$STACK_DIR/.fastmcp-stack" ]] && [[ -n "$(ls -A "$STACK_DIR" 2>/dev/null)" ]]; then
        die "STACK_DIR=$STACK_DIR exists, is not empty and is not a stack directory; not touching it"
    fi
    rm -rf "$STACK_DIR"
    mkdir -p "$PIDS" "$LOGS" "$STACK_DIR/keys" "$STACK_DIR/prometheus-data"
    touch "$STACK_DIR/.fastmcp-stack"
    chmod 0700 "$STACK_DIR"
    log "state in $STACK_DIR, gateway binary $BIN"
    # Any failure from here on stops whatever was started.
    trap 'trap - ERR; log "up failed; stopping what was started"; down_all || true' ERR

    # The shared dev key pair (as compose's one-shot `keys` service) and MRTR key.
    FASTMCP_DATA_DIR="$STACK_DIR/keys" "$BIN" token mint --sub bootstrap --ttl 1 >/dev/null
    "$python" -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())' \
        >"$STACK_DIR/request_state_key"
    chmod 0600 "$STACK_DIR/request_state_key"

    spawn redis "$STACK_DIR" redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no \
        --daemonize no
    spawn demo "$STACK_DIR" "$python" "$REPO/tests/py/demo_server.py" --port "$DEMO_PORT" \
        --calls-file "$STACK_DIR/demo-calls.json"
    spawn everything "$STACK_DIR" env "PORT=$EVERYTHING_PORT" "$node" "$everything" streamableHttp
    wait_for redis port_open "$REDIS_PORT"
    wait_for demo port_open "$DEMO_PORT"
    wait_for everything port_open "$EVERYTHING_PORT"

    start_gateway 1 "$GW1_PORT" "$GW1_ADMIN"
    start_gateway 2 "$GW2_PORT" "$GW2_ADMIN"
    wait_for gateway1 "$REPO/deploy/healthcheck.sh" "127.0.0.1:$GW1_ADMIN"
    wait_for gateway2 "$REPO/deploy/healthcheck.sh" "127.0.0.1:$GW2_ADMIN"
    wait_for gateway1 port_open "$GW1_PORT"
    wait_for gateway2 port_open "$GW2_PORT"

    local envs=()
    mapfile -t envs < <(lb_env)
    env "${envs[@]}" haproxy -c -q -f "$REPO/deploy/haproxy.cfg" >&2
    spawn lb "$STACK_DIR" env "${envs[@]}" haproxy -db -f "$REPO/deploy/haproxy.cfg"
    wait_for lb port_open "$LB_PORT"

    local prom
    prom="$(render_prometheus)"
    spawn prometheus "$STACK_DIR" prometheus --config.file="$prom" --storage.tsdb.path="$STACK_DIR/prometheus-data" \
        --web.listen-address="127.0.0.1:$PROM_PORT"
    wait_for prometheus http_200 "$PROM_PORT" /-/ready
    trap - ERR

    cat <<EOF
stack up (state in $STACK_DIR)
  load balancer   http://127.0.0.1:$LB_PORT   (/mcp, /mcp/demo, /mcp/everything, REST)
  gateway1        http://127.0.0.1:$GW1_PORT   admin http://127.0.0.1:$GW1_ADMIN
  gateway2        http://127.0.0.1:$GW2_PORT   admin http://127.0.0.1:$GW2_ADMIN
  prometheus      http://127.0.0.1:$PROM_PORT
  demo MCP        http://127.0.0.1:$DEMO_PORT/mcp   server-everything http://localhost:$EVERYTHING_PORT/mcp
  redis           127.0.0.1:$REDIS_PORT
  token           scripts/stack.sh token --sub alice --tenant acme --roles mcp-user
EOF
}

down_all() {
    local i rc=0
    [[ -d "$PIDS" ]] || return 0
    for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do term "${SERVICES[$i]}"; done
    for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do
        reap "${SERVICES[$i]}" || rc=1
    done
    return "$rc"
}

status() {
    local s n=0 pid st
    for s in "${SERVICES[@]}"; do
        if alive "$s"; then
            read -r pid st <"$PIDS/$s.pid"
            printf '%-11s running  pid %s\n' "$s" "$pid"
            n=$((n + 1))
        else
            printf '%-11s stopped\n' "$s"
        fi
    done
    ((n == ${#SERVICES[@]})) && return 0
    ((n == 0)) && return 3
    return 1
}

case "${1:-}" in
    up) up ;;
    down) down_all ;;
    status) status ;;
    token)
        shift
        [[ -d "$STACK_DIR/keys/dev-keys" ]] || die "no stack key pair (scripts/stack.sh up first)"
        FASTMCP_DATA_DIR="$STACK_DIR/keys" exec "$(fastmcp_bin)" token mint "$@"
        ;;
    *)
        echo "usage: scripts/stack.sh up|down|status|token ARGS..." >&2
        exit 2
        ;;
esac
