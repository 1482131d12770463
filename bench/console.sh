#!/usr/bin/env bash
# Measures the console's pages on a running server: logs in as LOGIN
# (password on stdin), then runs wrk on each page with the session cookie.
#   echo "$PASSWORD" | bench/console.sh http://127.0.0.1:8080 LOGIN PATIENTS
# PAGES="/segments /imports" measures those pages instead of the default
# list ("{id}" in a path is a random patient from 1 to PATIENTS).
set -euo pipefail
base=$1 login=$2 patients=$3
read -r password
cookie=$(curl -s -o /dev/null -D - -H "Sec-Fetch-Site: same-origin" \
  --data-urlencode "login=$login" --data-urlencode "password=$password" "$base/login" \
  | tr -d '\r' | sed -n 's/^[Ss]et-[Cc]ookie: rapport_session=\([0-9a-f]*\).*/\1/p')
[ -n "$cookie" ] || { echo "login failed" >&2; exit 1; }
# A name prefix that exists, for the search fragment.
prefix=$(curl -s -H "Cookie: rapport_session=$cookie" "$base/patients?sort=monetary" \
  | sed -n 's/.*class="row-link" href="[^"]*">\([^<]\).*/\1/p' | head -1)
prefix_q=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$prefix")
dir=$(cd "$(dirname "$0")" && pwd)
# The first request of the day computes the dashboard figures.
curl -s -o /dev/null -w "dashboard, first request of the day: %{time_total}s\n" \
  -H "Cookie: rapport_session=$cookie" "$base/dashboard"
default_pages=(/dashboard /patients "/patients?sort=monetary&dir=desc" "/patients?segment=champions&sort=last_visit"
  "/patients/rows?q=$prefix_q" "/patients?q=$prefix_q" "/patients/{id}")
if [ -n "${PAGES:-}" ]; then read -r -a pages <<< "$PAGES"; else pages=("${default_pages[@]}"); fi
for page in "${pages[@]}"; do
  printf '%-48s ' "$page"
  COOKIE=$cookie PATIENTS=$patients PAGE=$page \
    wrk -t2 -c4 -d${DURATION:-10s} -s "$dir/console.lua" "$base" | grep RESULT
done
