#!/bin/sh
# Times segment counts and the dashboard on a served database.
# Usage: BASE=http://127.0.0.1:18080 TOKEN=rpt_… sh bench/segments.sh [runs]
set -eu
RUNS=${1:-5}
H="Authorization: Bearer $TOKEN"
post() { curl -s -H "$H" -H 'content-type: application/json' -d "$2" "$BASE/api/v1$1"; }
time_get() {
    for _ in $(seq "$RUNS"); do
        curl -s -o /dev/null -w '%{time_total}\n' -H "$H" "$BASE/api/v1$1"
    done | sort -n | awk '{a[NR]=$1} END {printf "%s  median %.3f s  (min %.3f, max %.3f)\n", P, a[int((NR+1)/2)], a[1], a[NR]}' P="$1"
}
time_post() {
    for _ in $(seq "$RUNS"); do
        curl -s -o /dev/null -w '%{time_total}\n' -H "$H" -H 'content-type: application/json' -d "$2" "$BASE/api/v1$1"
    done | sort -n | awk '{a[NR]=$1} END {printf "%s  median %.3f s  (min %.3f, max %.3f)\n", P, a[int((NR+1)/2)], a[1], a[NR]}' P="$3"
}
# A typical segment: scores and aggregates (4 conditions).
TYPICAL='{"all": [
  {"field": "rfm_segment", "op": "in", "value": ["champions", "loyal", "at_risk"]},
  {"field": "recency_days", "op": "<=", "value": 365},
  {"field": "monetary", "op": ">=", "value": "500"},
  {"field": "churn_risk", "op": "=", "value": false}]}'
# The same with profile fields (6 conditions, three tables).
PROFILE='{"all": [
  {"field": "rfm_segment", "op": "in", "value": ["champions", "loyal", "at_risk"]},
  {"field": "recency_days", "op": "<=", "value": 365},
  {"field": "monetary", "op": ">=", "value": "500"},
  {"field": "churn_risk", "op": "=", "value": false},
  {"field": "sex", "op": "=", "value": "F"},
  {"field": "age", "op": "between", "value": [30, 60]}]}'
# An OR that needs every patient scanned.
ANY='{"any": [
  {"field": "visits", "op": ">=", "value": 5},
  {"field": "tags", "op": "contains", "value": "vip"},
  {"field": "p_alive", "op": "<", "value": 0.2}]}'
for r in "$TYPICAL" "$PROFILE" "$ANY"; do
    echo "$(post /segments/preview "{\"rules\": $r}")"
done
time_post /segments/preview "{\"rules\": $TYPICAL}" "preview typical (4 conditions: scores + aggregates)"
time_post /segments/preview "{\"rules\": $PROFILE}" "preview with profile (6 conditions, 3 tables)"
time_post /segments/preview "{\"rules\": $ANY}" "preview any-of over every patient"
ID=$(post /segments "{\"name\": \"bench typical $$\", \"rules\": $TYPICAL}" | sed 's/.*"id":\([0-9]*\).*/\1/')
time_get "/segments/$ID/count"
time_get "/segments/$ID/members?limit=50"
time_get "/analytics/dashboard?as_of=2026-11-22"
time_get "/analytics/summary?as_of=2026-11-22"
for _ in 1 2 3; do
    curl -s -o /dev/null -w "export csv %{time_total} s, %{size_download} bytes\n" -H "$H" "$BASE/api/v1/segments/$ID/export"
done
