#!/usr/bin/env bash
# Imports the benchmark CSV pair into a fresh database with the release
# binary, timing each command (wall time and the kernel's peak RSS).
#   bench/import/run.sh DIR sqlite|postgres [POSTGRES_SERVER_URL]
# PostgreSQL: a database bench_import is dropped and created on the
# server (default postgres://postgres@127.0.0.1:5432).
set -euo pipefail
dir=$1
engine=$2
server=${3:-postgres://postgres@127.0.0.1:5432}
bin=${RAPPORT:-target/release/rapport}
t() { /usr/bin/time -f "  %e s wall, %U s user, %S s sys, %M KB peak" "$@"; }
case $engine in
  sqlite)
    data=$(mktemp -d)
    db=(--data-dir "$data")
    ;;
  postgres)
    psql -q "$server/postgres" -c "DROP DATABASE IF EXISTS bench_import" -c "CREATE DATABASE bench_import"
    db=(--database-url "$server/bench_import")
    ;;
  *) echo "engine: sqlite or postgres" >&2; exit 2 ;;
esac
for f in patients visits; do
  echo "$engine $f"
  t "$bin" "${db[@]}" import "$f" "$dir/$f.csv"
done
if [ "$engine" = sqlite ]; then rm -rf "$data"; fi
