#!/usr/bin/env bash
# A series of point-transaction runs against a fresh copy of one starting
# database: a 5 s warm-up, then RUNS runs of 20 s (default 3) with
# bench/points.lua, each reported as transactions per second, the
# server's CPU time per transaction (from /proc/PID/stat) and p99.
#
# Usage: bench/points-series.sh BASE_DIR TOKEN [MEMBERS]
#   BASE_DIR  a data directory right after bench/enrol_members.py (with
#             the server stopped); it is copied, never changed
#   TOKEN     an admin API token of that database
set -euo pipefail
base=$1 token=$2 members=${3:-10000} runs=${RUNS:-3}
here=$(cd "$(dirname "$0")" && pwd)
bin=${RAPPORT:-$here/../target/release/rapport}
dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
cp -r "$base"/. "$dir"
"$bin" --data-dir "$dir" serve --bind 127.0.0.1:18181 >"$dir/serve.log" 2>&1 &
pid=$!
sleep 2
export TOKEN=$token MEMBERS=$members
url=http://127.0.0.1:18181
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
ticks=$(getconf CLK_TCK)
wrk -t2 -c64 -d5s -s "$here/points.lua" "$url" | awk '/Requests\/sec/ {printf "warm-up %d tx/s\n", $2}'
for _ in $(seq 1 "$runs"); do
  c0=$(cpu)
  out=$(wrk -t2 -c64 -d20s --latency -s "$here/points.lua" "$url")
  c1=$(cpu)
  n=$(awk '/requests in/ {print $1}' <<<"$out")
  rate=$(awk '/Requests\/sec/ {printf "%d", $2}' <<<"$out")
  p99=$(awk '/ 99%/ {print $2}' <<<"$out")
  echo "$rate tx/s, $(( (c1 - c0) * 1000000 / ticks / n )) us CPU per transaction, p99 $p99"
done
