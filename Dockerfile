# FastMCP gateway image: a Rust builder stage and a slim Debian runtime.
#
#   docker build -t fastmcp:local .
#   docker run --rm -p 8001:8001 fastmcp:local        # embedded defaults, no mounted files
#
# The runtime runs as an unprivileged user, keeps its state under /var/lib/fastmcp (dev keys,
# SQLite, audit trail) and answers the HEALTHCHECK on the admin listener's /health.

# ---------------------------------------------------------------- builder
FROM rust:1.95-bookworm AS builder
# No cmake: the tree builds with a C compiler only (pingora-core patched to zlib-rs, vendor/).
WORKDIR /src
# Everything the build reads; .dockerignore keeps target/, venvs and node_modules out.
COPY Cargo.toml Cargo.lock ./
COPY vendor ./vendor
COPY src ./src
COPY conf ./conf
COPY policies ./policies
COPY rego ./rego
COPY benches ./benches
COPY examples ./examples
RUN cargo build --release --locked --bin fastmcp \
    && install -D -m 0755 target/release/fastmcp /out/fastmcp

# ---------------------------------------------------------------- runtime
FROM debian:bookworm-slim AS runtime
# ca-certificates: HTTPS upstreams, JWKS and OAuth endpoints (the platform trust store).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 fastmcp \
    && useradd --system --uid 10001 --gid fastmcp --home-dir /var/lib/fastmcp --shell /usr/sbin/nologin fastmcp \
    && install -d -o fastmcp -g fastmcp -m 0750 /var/lib/fastmcp /var/lib/fastmcp/audit /var/lib/fastmcp/dev-keys
COPY --from=builder /out/fastmcp /usr/local/bin/fastmcp
COPY deploy/healthcheck.sh /usr/local/bin/fastmcp-healthcheck

# The embedded configuration (conf/fastmcp.yaml) with container addresses: listeners on every
# interface of the container (publish only what should be reachable: the admin listener
# serves the authenticated admin API besides /health, /ready and /metrics), state in the
# data volume. The relative policy paths do not exist here, so the embedded policy serves.
ENV FASTMCP_LISTEN=0.0.0.0:8001 \
    FASTMCP_ADMIN_LISTEN=0.0.0.0:9901 \
    FASTMCP_DATA_DIR=/var/lib/fastmcp \
    AUDIT_WORM_DIR=/var/lib/fastmcp/audit
WORKDIR /var/lib/fastmcp
USER 10001:10001
VOLUME ["/var/lib/fastmcp"]
EXPOSE 8001 9901
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["/usr/local/bin/fastmcp-healthcheck"]
ENTRYPOINT ["/usr/local/bin/fastmcp"]
CMD ["serve"]
