#!/usr/bin/env bash
# Speed of the admin directory: builds the release binary, seeds 100,000 accounts on SQLite
# and on PostgreSQL, and times GET /admin/users (first page, next page, searches, each order,
# filters) one request at a time.
#   bash bench/admin_list.sh                  # 100,000 accounts, 200 rounds per query
#   USERS=1000000 ROUNDS=50 bash bench/admin_list.sh
# PostgreSQL: PG_SERVER (default postgres://postgres@127.0.0.1:5432), in a fresh database
# `authgate_admin_bench`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

USERS=${USERS:-100000}
ROUNDS=${ROUNDS:-200}
PORT=${PORT:-8092}
PG_SERVER=${PG_SERVER:-postgres://postgres@127.0.0.1:5432}
TARGET=${CARGO_TARGET_DIR:-target}

cargo build --release --quiet --bin authgate --example admin_list
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

bench() {
    local name=$1 database_url=$2
    echo "== $name ($(nproc) cores, $USERS accounts, $ROUNDS rounds per query)"
    DATABASE_URL=$database_url "$TARGET/release/examples/admin_list" seed "$USERS"
    AUTHGATE_LISTEN=127.0.0.1:$PORT DATABASE_URL=$database_url AUTHGATE_MAIL="file://$work/mail" \
    AUTHGATE_LOG_FORMAT=json RUST_LOG=warn AUTHGATE_METRICS_LISTEN=off \
        "$TARGET/release/authgate" serve 2>"$work/$name.log" &
    local server=$!
    for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.2; done
    "$TARGET/release/examples/admin_list" run "http://127.0.0.1:$PORT" "$ROUNDS"
    kill "$server"
    wait "$server" 2>/dev/null || true
}

bench sqlite "sqlite://$work/bench.db?mode=rwc"
psql -q "$PG_SERVER/postgres" -c "DROP DATABASE IF EXISTS authgate_admin_bench" -c "CREATE DATABASE authgate_admin_bench"
bench postgres "$PG_SERVER/authgate_admin_bench"
