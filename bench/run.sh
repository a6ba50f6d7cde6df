#!/usr/bin/env bash
# Side-by-side throughput on this machine, in one run:
#   (a) the HTTP ceiling: an axum endpoint doing nothing (qrgate's /healthz) under wrk;
#   (b) the payment flow on SQLite (qrgate-bench, closed loop);
#   (c) pgbench TPC-B (built-in script) on the same PostgreSQL at the same client count;
#   (d) the payment flow on PostgreSQL;
# and the ratios (b)/(a) and (d)/(c).
#
# Usage: bench/run.sh [SECONDS] [CLIENTS]     (defaults 30 and 32)
# Needs: cargo, curl, wrk and pgbench (apt-get install wrk postgresql-client),
# PostgreSQL on 127.0.0.1:5432 with trust auth for user postgres.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-30}
clients=${2:-32}
work=$(mktemp -d)
server=""
pgdb="qrgate_bench_$$"
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null || true
  psql -h 127.0.0.1 -U postgres -d postgres -qc "DROP DATABASE IF EXISTS $pgdb" >/dev/null 2>&1 || true
  psql -h 127.0.0.1 -U postgres -d postgres -qc "DROP DATABASE IF EXISTS ${pgdb}_tpcb" >/dev/null 2>&1 || true
}
trap cleanup EXIT

for tool in wrk pgbench; do
  command -v "$tool" >/dev/null || { echo "bench/run.sh needs $tool (apt-get install wrk postgresql-client)"; exit 2; }
done
cargo build --release --bin qrgate --bin qrgate-bench >/dev/null

start_server() { # $1 = store URL, $2 = port
  ./target/release/qrgate serve --db "$1" --listen "127.0.0.1:$2" --admin-key-file "$work/admin-$2.key" \
    --log-format text >"$work/serve-$2.log" 2>&1 &
  server=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$2/readyz" >/dev/null && return; sleep 0.1; done
  echo "qrgate did not start; see $work/serve-$2.log"; exit 1
}
stop_server() { kill "$server"; wait "$server" 2>/dev/null || true; server=""; }
rss_peak() { grep VmHWM "/proc/$server/status" | awk '{print $2 " kB"}'; }
# The payment flow against a fresh gateway on store $1, port $2: prints the
# load generator's last line and the peak RSS, and sets $rate (payments/s).
payments() {
  start_server "$1" "$2"
  local line
  line=$(./target/release/qrgate-bench --target "http://127.0.0.1:$2" --admin-key "$(cat "$work/admin-$2.key")" \
    --duration "$secs" --concurrency "$clients" | tail -n 1)
  echo "$line   (gateway peak RSS $(rss_peak))"
  stop_server
  rate=$(echo "$line" | sed 's/.*payments_per_s=\([0-9]*\).*/\1/')
}

echo "== (a) HTTP ceiling: GET /healthz, wrk, $clients connections, $secs s"
start_server "sqlite://$work/a.db" 18801
a=$(wrk -t2 -c"$clients" -d"${secs}s" http://127.0.0.1:18801/healthz | awk '/Requests\/sec/ {print int($2)}')
stop_server
echo "requests_per_s=$a"

echo "== (b) payments on SQLite, $clients clients, $secs s"
payments "sqlite://$work/b.db" 18802
b=$rate

echo "== (c) pgbench TPC-B, $clients clients, $secs s"
psql -h 127.0.0.1 -U postgres -d postgres -qc "CREATE DATABASE ${pgdb}_tpcb"
pgbench -h 127.0.0.1 -U postgres -i -q -s 10 "${pgdb}_tpcb" >/dev/null 2>&1
c=$(pgbench -h 127.0.0.1 -U postgres -c "$clients" -j 2 -T "$secs" "${pgdb}_tpcb" 2>/dev/null | awk '/^tps/ {print int($3); exit}')
echo "tps=$c"

echo "== (d) payments on PostgreSQL, $clients clients, $secs s"
psql -h 127.0.0.1 -U postgres -d postgres -qc "CREATE DATABASE $pgdb"
payments "postgres://postgres@127.0.0.1:5432/$pgdb" 18803
d=$rate

echo
echo "| measurement | per second |"
echo "|---|---|"
echo "| (a) empty axum endpoint (GET /healthz), wrk | $a |"
echo "| (b) payments, SQLite | $b |"
echo "| (c) pgbench TPC-B | $c |"
echo "| (d) payments, PostgreSQL | $d |"
echo "| (b)/(a) | $(awk -v x="$b" -v y="$a" 'BEGIN { printf "%.2f", x / y }') |"
echo "| (d)/(c) | $(awk -v x="$d" -v y="$c" 'BEGIN { printf "%.2f", x / y }') |"
