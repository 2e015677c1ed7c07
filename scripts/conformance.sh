#!/usr/bin/env bash
# MCP conformance suite (@modelcontextprotocol/conformance, server mode) against
# @modelcontextprotocol/server-everything twice: directly, then through the gateway's
# /mcp/everything. Prints both totals and every scenario whose result differs; exits 1 when the
# gateway adds a failure (a scenario or check that passes directly but not through the gateway,
# or a scenario that did not run through the gateway), 2 when the comparison could not be made.
#
#   scripts/setup-test-deps.sh && cargo build --release && scripts/conformance.sh
#
# Options:
#   --json FILE       also write the comparison as JSON (used by tests/conformance.rs)
#   --policies FILE   policy file for the gateway (default: one written for the run that lets
#                     role `conformance` make every request to `everything`, with no holds)
#   --roles R         roles of the minted token (default: conformance)
#   --trusted         declare `everything` trusted (its tool annotations become safety tags)
#   --keep            keep the work directory (logs, results) even on success
# Environment: FASTMCP_BIN (default target/release/fastmcp), FASTMCP_TEST_PYTHON (default
# .venv/bin/python, else python3), CONFORMANCE_TIMEOUT (seconds per suite run, default 300).
#
# The suite's client sends no Authorization header, so the gateway run goes through
# tests/py/auth_proxy.py, a streaming reverse proxy that adds a dev token minted by
# `fastmcp token mint`. Everything listens on 127.0.0.1 ports picked at run time.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NODE_DIR="$REPO/tests/node"
NODE="$NODE_DIR/node_modules/.bin/node"
SUITE="$NODE_DIR/node_modules/@modelcontextprotocol/conformance/dist/index.js"
EVERYTHING="$NODE_DIR/node_modules/@modelcontextprotocol/server-everything/dist/index.js"
FASTMCP_BIN="${FASTMCP_BIN:-$REPO/target/release/fastmcp}"
PY="${FASTMCP_TEST_PYTHON:-$REPO/.venv/bin/python}"
[[ -x "$PY" ]] || PY="$(command -v python3)"
TIMEOUT="${CONFORMANCE_TIMEOUT:-300}"

json_out="" policies="" roles="conformance" trusted="false" keep=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --json) json_out="$2"; shift 2 ;;
        --policies) policies="$(realpath "$2")"; shift 2 ;;
        --roles) roles="$2"; shift 2 ;;
        --trusted) trusted="true"; shift ;;
        --keep) keep=1; shift ;;
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
        *) echo "conformance: unknown option $1" >&2; exit 2 ;;
    esac
done

log() { echo "conformance: $*" >&2; }
die() { log "$*"; exit 2; }

for f in "$NODE" "$SUITE" "$EVERYTHING"; do
    [[ -e "$f" ]] || die "missing $f (run scripts/setup-test-deps.sh)"
done
[[ -x "$FASTMCP_BIN" ]] || die "missing $FASTMCP_BIN (run cargo build --release, or set FASTMCP_BIN)"
[[ -n "$PY" ]] || die "no python3"
"$NODE" -e 'process.exit(+process.versions.node.split(".")[0] >= 22 ? 0 : 1)' \
    || die "$NODE is not Node >= 22 (the suite needs it)"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/fastmcp-conformance.XXXXXX")"
PIDS=()
status=2

# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
    local pid i
    # Children in reverse start order; each gets SIGINT (the gateway's fast graceful exit;
    # SIGTERM would wait out its grace period), then SIGKILL after a bounded wait.
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        pid="${PIDS[$i]}"
        kill -INT "$pid" 2>/dev/null || continue
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [[ $keep == 1 || $status != 0 ]]; then
        log "work directory kept: $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap 'status=$?; cleanup' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Polls until PORT accepts connections; fails if PID exits or after 30 s.
wait_port() {
    local port="$1" pid="$2" what="$3"
    for _ in $(seq 300); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        kill -0 "$pid" 2>/dev/null || die "$what exited early (see $WORK)"
        sleep 0.1
    done
    die "$what did not listen on $port within 30 s (see $WORK)"
}

# Polls until FILE exists (written by the process once it listens).
wait_file() {
    local file="$1" pid="$2" what="$3"
    for _ in $(seq 300); do
        [[ -s "$file" ]] && return 0
        kill -0 "$pid" 2>/dev/null || die "$what exited early (see $WORK)"
        sleep 0.1
    done
    die "$what did not start within 30 s (see $WORK)"
}

# Polls an HTTP URL until it answers 200 (bounded).
wait_http_ok() {
    local url="$1" pid="$2" what="$3"
    for _ in $(seq 300); do
        if "$PY" - "$url" <<'EOF' 2>/dev/null; then return 0; fi
import sys, urllib.request
sys.exit(0 if urllib.request.urlopen(sys.argv[1], timeout=2).status == 200 else 1)
EOF
        kill -0 "$pid" 2>/dev/null || die "$what exited early (see $WORK)"
        sleep 0.1
    done
    die "$what not ready at $url within 30 s (see $WORK)"
}

run_suite() {
    local name="$1" url="$2"
    log "running the suite $name against $url"
    # Non-zero exit just means some checks failed; the results are read from its output dir.
    # In the background + wait, so a signal to this script is handled at once (cleanup).
    timeout --kill-after=10 "$TIMEOUT" "$NODE" "$SUITE" server --url "$url" -o "$WORK/results-$name" \
        >"$WORK/suite-$name.log" 2>&1 &
    PIDS+=($!)
    wait "${PIDS[-1]}" || true
    unset 'PIDS[-1]'
    grep -E '^Total: [0-9]+ passed, [0-9]+ failed' "$WORK/suite-$name.log" >&2 \
        || log "the $name run printed no total (see $WORK/suite-$name.log)"
}

# ------------------------------------------------------------ server-everything, direct run
se_port="$(free_port)"
(cd "$NODE_DIR" && exec env PORT="$se_port" "$NODE" "$EVERYTHING" streamableHttp) >"$WORK/everything.log" 2>&1 &
PIDS+=($!)
wait_port "$se_port" "${PIDS[-1]}" "server-everything"
se_url="http://127.0.0.1:$se_port/mcp"
run_suite direct "$se_url"

# ------------------------------------------------------------ gateway + auth proxy run
gw_port="$(free_port)"
admin_port="$(free_port)"
mkdir -p "$WORK/gw"
if [[ -z "$policies" ]]; then
    policies="$WORK/gw/policies.yml"
    cat >"$policies" <<'EOF'
# Written by scripts/conformance.sh: the conformance client may make every request to the
# `everything` server (tool calls and mcp.<method> actions alike), with no confirmation rule,
# so the comparison measures the gateway's protocol transparency, not a policy outcome.
version: 1
roles:
  conformance: ["mcp.everything", "tools.invoke:write"]
rules:
  - id: conformance-everything
    effect: allow
    when:
      resource.server: "everything"
      subject.roles: ["conformance"]
  - id: tenant-isolation
    effect: deny
    when:
      resource.tenant: "!= subject.tenant"
EOF
fi
cat >"$WORK/gw/config.yaml" <<EOF
listen: "127.0.0.1:$gw_port"
admin_listen: "127.0.0.1:$admin_port"
data_dir: "$WORK/gw/data"
audit:
  dir: "$WORK/gw/audit"
policy:
  policies_file: "$policies"
  rego_dir: "$REPO/rego"
  watch_interval_ms: 0
mcp:
  servers:
    everything:
      url: "$se_url"
      trusted: $trusted
EOF
# The generic env names win over anything a caller's environment might set.
gw_env=(FASTMCP_LISTEN="127.0.0.1:$gw_port" FASTMCP_ADMIN_LISTEN="127.0.0.1:$admin_port"
        FASTMCP_DATA_DIR="$WORK/gw/data" AUDIT_WORM_DIR="$WORK/gw/audit" FASTMCP_POLICIES="$policies"
        FASTMCP_REGO_DIR="$REPO/rego" LOG_LEVEL=info)
(cd "$WORK/gw" && exec env "${gw_env[@]}" "$FASTMCP_BIN" serve --config "$WORK/gw/config.yaml") \
    >"$WORK/gateway.log" 2>&1 &
PIDS+=($!)
gw_pid="${PIDS[-1]}"
wait_port "$admin_port" "$gw_pid" "gateway admin"
wait_port "$gw_port" "$gw_pid" "gateway"

token="$(cd "$WORK/gw" && env "${gw_env[@]}" "$FASTMCP_BIN" token mint --config "$WORK/gw/config.yaml" \
    --sub conformance --tenant acme --roles "$roles")" || die "token mint failed"
wait_http_ok "http://127.0.0.1:$admin_port/ready" "$gw_pid" "gateway"

(exec env AUTH_PROXY_TOKEN="$token" "$PY" "$REPO/tests/py/auth_proxy.py" \
    --upstream "http://127.0.0.1:$gw_port" --port-file "$WORK/proxy.port") >"$WORK/auth_proxy.log" 2>&1 &
PIDS+=($!)
wait_file "$WORK/proxy.port" "${PIDS[-1]}" "auth proxy"
proxy_port="$(cat "$WORK/proxy.port")"
run_suite gateway "http://127.0.0.1:$proxy_port/mcp/everything"

# ------------------------------------------------------------ comparison
set +e
"$PY" - "$WORK" "$json_out" <<'EOF'
import json, os, re, sys

work, json_out = sys.argv[1], sys.argv[2]
STAMP = re.compile(r"-\d{4}-\d{2}-\d{2}T[\d-]+Z$")

def load(name):
    """scenario -> {status, passed, failed, checks: {check id: status}, errors: {...}}"""
    root = os.path.join(work, f"results-{name}")
    out = {}
    if not os.path.isdir(root):
        return out
    for d in sorted(os.listdir(root)):
        path = os.path.join(root, d, "checks.json")
        if not os.path.isfile(path):
            continue
        scenario = STAMP.sub("", d)
        scenario = scenario[len("server-"):] if scenario.startswith("server-") else scenario
        try:
            checks = json.load(open(path))
        except ValueError:
            checks = [{"id": "checks.json", "status": "FAILURE", "errorMessage": "unreadable"}]
        by_id, errors = {}, {}
        for i, c in enumerate(checks):
            cid = c.get("id") or c.get("name") or str(i)
            by_id[cid] = c.get("status", "?")
            if c.get("status") != "SUCCESS" and c.get("errorMessage"):
                errors[cid] = c["errorMessage"]
        passed = sum(s == "SUCCESS" for s in by_id.values())
        failed = sum(s == "FAILURE" for s in by_id.values())
        warned = sum(s == "WARNING" for s in by_id.values())
        ok = failed == 0 and warned == 0 and passed > 0
        out[scenario] = {"status": "pass" if ok else "fail", "passed": passed, "failed": failed,
                         "warnings": warned, "checks": by_id, "errors": errors}
    return out

def totals(runs):
    return {"scenarios": len(runs),
            "scenarios_passed": sum(r["status"] == "pass" for r in runs.values()),
            "checks_passed": sum(r["passed"] for r in runs.values()),
            "checks_failed": sum(r["failed"] for r in runs.values())}

direct, gateway = load("direct"), load("gateway")
missing = {"status": "missing", "passed": 0, "failed": 0, "warnings": 0, "checks": {}, "errors": {}}
rows, regressions, improvements = [], [], []
for s in sorted(set(direct) | set(gateway)):
    d, g = direct.get(s, missing), gateway.get(s, missing)
    lost = sorted(c for c, st in d["checks"].items() if st == "SUCCESS" and g["checks"].get(c) != "SUCCESS")
    gained = sorted(c for c, st in g["checks"].items() if st == "SUCCESS" and d["checks"].get(c) != "SUCCESS")
    if d["status"] == g["status"] and d["checks"] == g["checks"]:
        continue
    regression = (d["status"] == "pass" and g["status"] != "pass") or bool(lost) or g["status"] == "missing"
    row = {"scenario": s, "direct": f'{d["status"]} ({d["passed"]}/{d["failed"]})',
           "gateway": f'{g["status"]} ({g["passed"]}/{g["failed"]})', "lost_checks": lost,
           "gained_checks": gained, "regression": regression,
           "gateway_errors": {c: g["errors"][c] for c in lost if c in g["errors"]}}
    rows.append(row)
    (regressions if regression else improvements).append(s)

td, tg = totals(direct), totals(gateway)
print()
print("MCP conformance suite, server mode, against server-everything")
for name, t in (("direct", td), ("gateway", tg)):
    print(f'  {name:8} Total: {t["checks_passed"]} passed, {t["checks_failed"]} failed  '
          f'(scenarios: {t["scenarios_passed"]}/{t["scenarios"]} passed)')
print()
if rows:
    print("Scenarios whose result differs (status (checks passed/failed)):")
    w = max(len(r["scenario"]) for r in rows)
    print(f'  {"scenario":{w}}  {"direct":14}  {"gateway":14}  note')
    for r in rows:
        note = "GATEWAY ADDS FAILURE" if r["regression"] else "better through gateway"
        if r["lost_checks"]:
            note += "; lost: " + ", ".join(r["lost_checks"])
        print(f'  {r["scenario"]:{w}}  {r["direct"]:14}  {r["gateway"]:14}  {note}')
        for c, e in r["gateway_errors"].items():
            print(f'  {"":{w}}    {c}: {e}')
else:
    print("No scenario differs.")
print()
ok = td["scenarios"] > 0 and not regressions
print(f'conformance: {"OK: the gateway adds no failures" if ok else "FAIL"}'
      + (f' ({len(regressions)} scenario(s) worse through the gateway)' if regressions else "")
      + ("" if td["scenarios"] else " (the direct run produced no results)"))
if json_out:
    with open(json_out, "w") as f:
        json.dump({"direct": td, "gateway": tg, "differs": rows, "regressions": regressions,
                   "improvements": improvements,
                   "direct_scenarios": {k: v["status"] for k, v in direct.items()},
                   "gateway_scenarios": {k: v["status"] for k, v in gateway.items()}}, f, indent=2)
sys.exit(0 if ok else (2 if td["scenarios"] == 0 else 1))
EOF
rc=$?
set -e
exit "$rc"
