#!/usr/bin/env bash
# Picture upload benchmark: builds the release binary, starts it on SQLite, seeds ten verified
# users, then times a 2 MB JPEG upload through HTTP (target: under 150 ms) and /health alone
# and while ten uploads run at once (it must not wait behind them).
#   bash bench/avatars.sh              # 10 s per /health window
#   SECONDS_EACH=30 bash bench/avatars.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SECONDS_EACH=${SECONDS_EACH:-10}
PORT=${PORT:-8092}

cargo build --release --quiet --bin authgate --example load
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

database_url="sqlite://$work/bench.db?mode=rwc"
DATABASE_URL=$database_url target/release/examples/load seed 10
AUTHGATE_LISTEN=127.0.0.1:$PORT DATABASE_URL=$database_url AUTHGATE_MAIL="file://$work/mail" \
AUTHGATE_LOG_FORMAT=json RUST_LOG=warn \
AUTHGATE_LIMIT_LOGIN_IP=off AUTHGATE_LIMIT_LOGIN_ACCOUNT=off \
    target/release/authgate serve 2>"$work/server.log" &
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.2; done
echo "== picture uploads ($(nproc) cores, SQLite)"
target/release/examples/load avatars "http://127.0.0.1:$PORT" "$SECONDS_EACH"
