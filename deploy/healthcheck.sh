#!/usr/bin/env bash
# Container HEALTHCHECK (and scripts/stack.sh status): GET /health on the admin listener named
# by FASTMCP_ADMIN_LISTEN (default 127.0.0.1:9901; a wildcard host is asked on loopback).
# Needs only bash (its /dev/tcp), so the runtime image carries no HTTP client.
# Exit 0 when the answer's status is 200, else 1.
set -euo pipefail
addr="${1:-${FASTMCP_ADMIN_LISTEN:-127.0.0.1:9901}}"
port="${addr##*:}"
host="${addr%:*}"
case "$host" in 0.0.0.0 | "[::]" | "") host=127.0.0.1 ;; esac
host="${host#[}"
host="${host%]}"
{ exec 3<>"/dev/tcp/$host/$port"; } 2>/dev/null || exit 1
printf 'GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' >&3
IFS= read -r -t 5 status <&3 || exit 1
[[ "$status" == HTTP/1.?" 200"* ]]
