# syntax=docker/dockerfile:1.7
#
# Images:
#   docker build -t attachd .                          → runtime: attachd + web client (default)
#   docker build --target devtools -t attachd-devtools . → + kube-emu and attachd-bench (tests, compose)
# The test tools never ship in the runtime image: kube-emu runs commands for whoever holds its token.

ARG RUST_VERSION=1.95
ARG NODE_VERSION=20
ARG DEBIAN_RELEASE=bookworm

# --- web client (web/ → web/dist) -------------------------------------------------------------
FROM node:${NODE_VERSION}-${DEBIAN_RELEASE}-slim AS web
WORKDIR /src/web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY web/ ./
RUN npm run build

# --- Rust workspace ---------------------------------------------------------------------------
FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS builder
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    cargo build --release --locked --workspace --bins

# --- shared runtime base: debian slim, non-root user, writable /data only ----------------------
FROM debian:${DEBIAN_RELEASE}-slim AS base
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates tini \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 attachd \
 && useradd --system --uid 10001 --gid attachd --home-dir /home/attachd --create-home \
      --shell /bin/sh attachd \
 && install -d -o 10001 -g 10001 -m 0750 /data
WORKDIR /app
ENV RUST_LOG=info

# --- test tools: kube-emu (the Kubernetes API EMULATION) and attachd-bench ----------------------
FROM base AS devtools
COPY --from=builder /src/target/release/kube-emu /usr/local/bin/kube-emu
COPY --from=builder /src/target/release/attachd-bench /usr/local/bin/attachd-bench
USER 10001:10001
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["kube-emu", "--help"]

# --- runtime (default target) -------------------------------------------------------------------
FROM base AS runtime
COPY --from=builder /src/target/release/attachd /usr/local/bin/attachd
COPY --from=web /src/web/dist /app/web/dist
USER 10001:10001
EXPOSE 8080 9090
# tini forwards SIGTERM so attachd drains (shutdown frames, close 1001, audit flush).
ENTRYPOINT ["/usr/bin/tini", "--", "attachd"]
CMD ["serve", "--config", "/etc/attachd/attachd.toml"]
