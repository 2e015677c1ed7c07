#!/usr/bin/env bash
# Full local/CI test run: test peers, formatting, lints, then the test suite (release build:
# the black-box tests start the real gateway binary).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

bash "$REPO/scripts/setup-test-deps.sh"

export FASTMCP_TEST_PYTHON="$REPO/.venv/bin/python"

cargo fmt --check
cargo clippy --all-targets -- -D warnings
cargo test --release 2>&1
