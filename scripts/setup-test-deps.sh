#!/usr/bin/env bash
# Install the peers FastMCP's black-box tests run against. Idempotent: a second run with
# unchanged requirement files does nothing but check.
#
#   $REPO/.venv                         Python venv with tests/py/requirements.txt (official mcp SDK 2.x,
#                                       and Selenium for tests/browser; the browser itself is
#                                       Debian's chromium + chromium-driver, see .ci/run)
#   $REPO/.venv-mcp1                    tests/py/requirements-mcp1.txt (official mcp SDK 1.x, client matrix)
#   $REPO/.venv-fastmcp                 tests/py/requirements-fastmcp.txt (fastmcp client, client matrix)
#   $REPO/tests/node/node_modules       @modelcontextprotocol/server-everything, the conformance suite
#                                       @modelcontextprotocol/conformance and a Node 22 binary for it
#                                       at node_modules/.bin/node (package `node`), and the TypeScript
#                                       SDK @modelcontextprotocol/sdk (tests/node/package.json)
#
# Needs python3 (>= 3.10, with venv) and node/npm, plus PyPI and the npm registry.
# Environment: PYTHON (default python3) picks the interpreter the venv is built from.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
VENV="$REPO/.venv"
REQ="$REPO/tests/py/requirements.txt"
VENV_MCP1="$REPO/.venv-mcp1"
REQ_MCP1="$REPO/tests/py/requirements-mcp1.txt"
VENV_FASTMCP="$REPO/.venv-fastmcp"
REQ_FASTMCP="$REPO/tests/py/requirements-fastmcp.txt"
NODE_DIR="$REPO/tests/node"
NODE_STAMP="$NODE_DIR/node_modules/.fastmcp-stamp.sha256"

log() { echo "setup-test-deps: $*" >&2; }

sha_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

# ---------------------------------------------------------------- Python venvs
# ensure_venv DIR REQUIREMENTS CHECK: (re)builds DIR from REQUIREMENTS unless its stamp says
# it already holds exactly them and the python snippet CHECK runs in it.
ensure_venv() {
    local venv="$1" req="$2" check="$3"
    local stamp="$venv/.fastmcp-requirements.sha256" wanted
    wanted="$(sha_of "$req")"
    if [[ -x "$venv/bin/python" ]] \
        && "$venv/bin/python" -c "$check" >/dev/null 2>&1 \
        && [[ -f "$stamp" && "$(cat "$stamp")" == "$wanted" ]]; then
        log "python venv up to date ($venv)"
        return
    fi
    log "building python venv at $venv"
    rm -rf "$venv"
    if ! "$PYTHON" -m venv "$venv" >/dev/null 2>&1; then
        # Debian ships ensurepip separately (python3-venv / python3.X-venv).
        rm -rf "$venv"
        if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
            local ver
            ver="$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
            log "python venv module unusable; installing python3-venv via apt"
            apt-get update >/dev/null
            DEBIAN_FRONTEND=noninteractive apt-get install -y "python${ver}-venv" \
                || DEBIAN_FRONTEND=noninteractive apt-get install -y python3-venv
        fi
        "$PYTHON" -m venv "$venv"
    fi
    "$venv/bin/python" -m pip install --disable-pip-version-check --no-input -q -r "$req"
    "$venv/bin/python" -c "$check"
    echo "$wanted" > "$stamp"
    log "python venv ready ($venv)"
}

ensure_venv "$VENV" "$REQ" \
    'import mcp, httpx2, selenium; from mcp.client.client import Client; from mcp.server.mcpserver import MCPServer'
ensure_venv "$VENV_MCP1" "$REQ_MCP1" \
    'import mcp, httpx; from mcp import ClientSession; from mcp.client.streamable_http import streamable_http_client'
ensure_venv "$VENV_FASTMCP" "$REQ_FASTMCP" \
    'import fastmcp; from fastmcp import Client; from fastmcp.client.transports import StreamableHttpTransport'

# ---------------------------------------------------------------- Node peers
node_files=("$NODE_DIR/package.json")
[[ -f "$NODE_DIR/package-lock.json" ]] && node_files+=("$NODE_DIR/package-lock.json")
node_wanted="$(sha_of "${node_files[@]}")"
node_ready() {
    [[ -f "$NODE_DIR/node_modules/@modelcontextprotocol/server-everything/dist/index.js" \
       && -f "$NODE_DIR/node_modules/@modelcontextprotocol/conformance/dist/index.js" \
       && -f "$NODE_DIR/node_modules/@modelcontextprotocol/sdk/dist/esm/client/index.js" \
       && -x "$NODE_DIR/node_modules/.bin/node" ]]
}
if node_ready && [[ -f "$NODE_STAMP" && "$(cat "$NODE_STAMP")" == "$node_wanted" ]]; then
    log "node peers up to date ($NODE_DIR/node_modules)"
else
    command -v npm >/dev/null 2>&1 || { log "npm not found on PATH"; exit 1; }
    log "installing node peers in $NODE_DIR"
    if [[ -f "$NODE_DIR/package-lock.json" ]]; then
        (cd "$NODE_DIR" && npm ci --no-audit --no-fund --loglevel=error)
    else
        (cd "$NODE_DIR" && npm install --no-audit --no-fund --loglevel=error)
    fi
    node_ready || { log "node peers incomplete after npm install"; exit 1; }
    "$NODE_DIR/node_modules/.bin/node" --version >/dev/null
    # Recompute: npm install may just have written package-lock.json.
    node_files=("$NODE_DIR/package.json")
    [[ -f "$NODE_DIR/package-lock.json" ]] && node_files+=("$NODE_DIR/package-lock.json")
    sha_of "${node_files[@]}" > "$NODE_STAMP"
    log "node peers ready"
fi
