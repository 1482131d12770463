#!/usr/bin/env bash
# Loads the benchmark CSV pair into bare tables (no index, no
# constraint), the floor an importer is measured against:
# sqlite3's .import and PostgreSQL's COPY.
#   bench/import/bare.sh DIR [POSTGRES_URL]
set -euo pipefail
dir=$1
pg=${2:-postgres://postgres@127.0.0.1:5432/test}
db=$(mktemp -d)/bare.db
t() { /usr/bin/time -f "%e s, %M KB peak" "$@"; }
echo "sqlite3 .import"
sqlite3 "$db" "PRAGMA journal_mode=WAL;
CREATE TABLE patients (patient_id TEXT, name TEXT, sex TEXT, birth_year INTEGER, phone TEXT, district TEXT, source_channel TEXT, registered_on TEXT);
CREATE TABLE visits (visit_id TEXT, patient_id TEXT, visit_date TEXT, department TEXT, doctor_id TEXT, kind TEXT, amount REAL);" >/dev/null
for f in patients visits; do
  echo "  $f"
  t sqlite3 "$db" -cmd ".mode csv" ".import --skip 1 $dir/$f.csv $f"
done
rm -f "$db"
echo "PostgreSQL COPY"
psql -q "$pg" -c "DROP SCHEMA IF EXISTS bare CASCADE; CREATE SCHEMA bare;"
psql -q "$pg" -c "CREATE TABLE bare.patients (patient_id TEXT, name TEXT, sex TEXT, birth_year INTEGER, phone TEXT, district TEXT, source_channel TEXT, registered_on DATE);
CREATE TABLE bare.visits (visit_id TEXT, patient_id TEXT, visit_date DATE, department TEXT, doctor_id TEXT, kind TEXT, amount NUMERIC(12,2));" >/dev/null
t psql -q "$pg" -c "\copy bare.patients FROM '$dir/patients.csv' CSV HEADER"
t psql -q "$pg" -c "\copy bare.visits FROM '$dir/visits.csv' CSV HEADER"
psql -q "$pg" -c "DROP SCHEMA bare CASCADE" >/dev/null
