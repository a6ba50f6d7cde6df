#!/usr/bin/env bash
# Side-by-side throughput on this machine, in one run:
#   (a) the HTTP ceiling: an axum endpoint doing nothing (qrgate's /healthz) under wrk;
#   (b) the payment flow on SQLite (qrgate-bench, closed loop);
#   (c) pgbench TPC-B (built-in script) on the same PostgreSQL at the same client count;
#   (d) the payment flow on PostgreSQL;
# and the ratios (b)/(a) and (d)/(c); and for (b), (c) and (d) the whole
# machine's busy CPU time per payment or transaction (clock ticks from
# /proc/stat over the middle of the run; gateway, database and load
# generator together), which stays comparable when the machine's speed varies.
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
# Busy CPU time of the whole machine so far, in clock ticks (user, nice,
# system, irq, softirq; not idle, iowait or steal).
busy() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8}' /proc/stat; }
hz=$(getconf CLK_TCK)
# Machine CPU milliseconds per operation over the middle of a run: ticks
# from $1 to $2 over $3 seconds at $4 operations per second.
per_op() { awk -v d="$(($2 - $1))" -v s="$3" -v r="$4" -v hz="$hz" 'BEGIN { if (r > 0) printf "%.2f", d * 1000 / hz / (r * s); else print "-" }'; }
# Wait until file $1 has a line matching $2 (or process $3 has ended).
wait_for() { until grep -q "$2" "$1" 2>/dev/null; do kill -0 "$3" 2>/dev/null || return 0; sleep 0.05; done; }
# How the gateway on port $1 wrote (from /metrics, whole run including setup):
# SQLite's mean group size and time per COMMIT, PostgreSQL's movement paths.
write_paths() {
  curl -sf "http://127.0.0.1:$1/metrics" | awk '
    /^qrgate_sqlite_transactions_total / { t = $2 }
    /^qrgate_sqlite_writes_total / { w = $2 }
    /^qrgate_sqlite_commit_seconds_total / { cs = $2 }
    /^qrgate_postgres_movements_total\{path="one_statement"\}/ { one = $2 }
    /^qrgate_postgres_movements_total\{path="step_by_step"\}/ { step = $2 }
    END {
      if (t > 0) printf "group commit: %d writes in %d transactions (%.1f a commit), %.2f ms a COMMIT\n", w, t, w / t, cs * 1000 / t
      if (one + step > 0) printf "movements: %d as one statement, %d step by step\n", one, step
    }' || true
}
# Seconds of the middle window over which CPU is sampled.
window=$((secs > 4 ? secs - 2 : secs))
# The payment flow against a fresh gateway on store $1, port $2: prints the
# load generator's last line, the peak RSS and the machine's CPU per payment
# (sampled from 1 s into the load for $window s), and sets $rate and $cpu.
payments() {
  start_server "$1" "$2"
  local out="$work/bench-$2.out" bp j0 j1 line
  ./target/release/qrgate-bench --target "http://127.0.0.1:$2" --admin-key "$(cat "$work/admin-$2.key")" \
    --duration "$secs" --concurrency "$clients" >"$out" 2>&1 &
  bp=$!
  wait_for "$out" "^closed loop" "$bp"
  sleep 1; j0=$(busy); sleep "$window"; j1=$(busy)
  wait "$bp" || { cat "$out"; echo "qrgate-bench failed"; exit 1; }
  line=$(tail -n 1 "$out")
  rate=$(echo "$line" | sed 's/.*payments_per_s=\([0-9]*\).*/\1/')
  cpu=$(per_op "$j0" "$j1" "$window" "$rate")
  grep "^ledger:" "$out" || true
  echo "$line   (gateway peak RSS $(rss_peak); machine CPU $cpu ms per payment)"
  write_paths "$2"
  stop_server
}

echo "== (a) HTTP ceiling: GET /healthz, wrk, $clients connections, $secs s"
start_server "sqlite://$work/a.db" 18801
a=$(wrk -t2 -c"$clients" -d"${secs}s" http://127.0.0.1:18801/healthz | awk '/Requests\/sec/ {print int($2)}')
stop_server
echo "requests_per_s=$a"

echo "== (b) payments on SQLite, $clients clients, $secs s"
payments "sqlite://$work/b.db" 18802
b=$rate
b_cpu=$cpu

echo "== (c) pgbench TPC-B, $clients clients, $secs s"
psql -h 127.0.0.1 -U postgres -d postgres -qc "CREATE DATABASE ${pgdb}_tpcb"
pgbench -h 127.0.0.1 -U postgres -i -q -s 10 "${pgdb}_tpcb" >/dev/null 2>&1
pgbench -h 127.0.0.1 -U postgres -c "$clients" -j 2 -T "$secs" "${pgdb}_tpcb" >"$work/pgbench.out" 2>&1 &
pb=$!
sleep 1; j0=$(busy); sleep "$window"; j1=$(busy)
wait "$pb" || { cat "$work/pgbench.out"; echo "pgbench failed"; exit 1; }
c=$(awk '/^tps/ {print int($3); exit}' "$work/pgbench.out")
c_cpu=$(per_op "$j0" "$j1" "$window" "$c")
echo "tps=$c   (machine CPU $c_cpu ms per transaction)"

echo "== (d) payments on PostgreSQL, $clients clients, $secs s"
psql -h 127.0.0.1 -U postgres -d postgres -qc "CREATE DATABASE $pgdb"
payments "postgres://postgres@127.0.0.1:5432/$pgdb" 18803
d=$rate
d_cpu=$cpu

echo
echo "| measurement | per second | machine CPU per operation |"
echo "|---|---|---|"
echo "| (a) empty axum endpoint (GET /healthz), wrk | $a | |"
echo "| (b) payments, SQLite | $b | $b_cpu ms |"
echo "| (c) pgbench TPC-B | $c | $c_cpu ms |"
echo "| (d) payments, PostgreSQL | $d | $d_cpu ms |"
echo "| (b)/(a) | $(awk -v x="$b" -v y="$a" 'BEGIN { printf "%.2f", x / y }') | |"
echo "| (d)/(c) | $(awk -v x="$d" -v y="$c" 'BEGIN { printf "%.2f", x / y }') | |"
