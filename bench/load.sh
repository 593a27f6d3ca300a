#!/usr/bin/env bash
# Load benchmark: builds the release binary, starts it on SQLite and on PostgreSQL, seeds
# verified users, and drives /health, login, /auth/me, refresh and the TOTP step of a
# two-factor sign-in (`mfa`: one waiting sign-in per seeded TOTP account, so it may end early)
# for a fixed time each.
#   bash bench/load.sh                 # 10 s per scenario, 32 concurrent clients
#   SECONDS_EACH=30 CONCURRENCY=64 bash bench/load.sh
#   SCENARIOS="refresh mfa" bash bench/load.sh
# PostgreSQL: TEST_DATABASE_URL's server (default postgres://postgres@127.0.0.1:5432), in a
# fresh database `authgate_bench` (or PG_DATABASE). Limits are off: this measures capacity, not abuse.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SECONDS_EACH=${SECONDS_EACH:-10}
CONCURRENCY=${CONCURRENCY:-32}
PORT=${PORT:-8091}
PG_SERVER=${PG_SERVER:-postgres://postgres@127.0.0.1:5432}
SCENARIOS=${SCENARIOS:-health login me refresh mfa}
# Accounts with an authenticator app: more than `mfa` can verify in SECONDS_EACH.
MFA_ACCOUNTS=${MFA_ACCOUNTS:-20000}
PG_DATABASE=${PG_DATABASE:-authgate_bench}

cargo build --release --quiet --bin authgate --example load
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

bench() {
    local name=$1 database_url=$2
    echo "== $name ($(nproc) cores, $CONCURRENCY clients, ${SECONDS_EACH}s each)"
    DATABASE_URL=$database_url target/release/examples/load seed "$CONCURRENCY"
    if [[ " $SCENARIOS " == *" mfa "* ]]; then
        DATABASE_URL=$database_url target/release/examples/load seed-mfa "$MFA_ACCOUNTS"
    fi
    # The metrics listener on a port of its own too: its default (9464) may be another run's.
    AUTHGATE_LISTEN=127.0.0.1:$PORT AUTHGATE_METRICS_LISTEN=127.0.0.1:$((PORT + 1)) \
    DATABASE_URL=$database_url AUTHGATE_MAIL="file://$work/mail" \
    AUTHGATE_LOG_FORMAT=json RUST_LOG=warn \
    AUTHGATE_LIMIT_LOGIN_IP=off AUTHGATE_LIMIT_LOGIN_ACCOUNT=off AUTHGATE_LIMIT_REFRESH_SESSION=off \
        target/release/authgate serve 2>"$work/$name.log" &
    local server=$!
    for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.2; done
    for scenario in $SCENARIOS; do
        # `mfa` opens its waiting sign-ins in the database before its clock starts.
        DATABASE_URL=$database_url \
            target/release/examples/load run "$scenario" "http://127.0.0.1:$PORT" "$CONCURRENCY" "$SECONDS_EACH"
    done
    kill "$server"
    wait "$server" 2>/dev/null || true
}

echo "== the login ceiling: argon2id (default parameters) with every core busy"
target/release/examples/load hashrate "$SECONDS_EACH"
bench sqlite "sqlite://$work/bench.db?mode=rwc"
psql -q "$PG_SERVER/postgres" -c "DROP DATABASE IF EXISTS $PG_DATABASE" -c "CREATE DATABASE $PG_DATABASE"
bench postgres "$PG_SERVER/$PG_DATABASE"
