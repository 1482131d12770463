#!/usr/bin/env python3
"""Enrols the demo's first MEMBERS patients (P00000001 …) and gives each a
starting balance of 1,000 points, over keep-alive HTTP, for
bench/points.lua.

Usage: TOKEN=rpt_… MEMBERS=10000 python3 bench/enrol_members.py http://127.0.0.1:18080
"""
import http.client
import json
import os
import sys
import urllib.parse

url = urllib.parse.urlparse(sys.argv[1])
token = os.environ["TOKEN"]
members = int(os.environ.get("MEMBERS", "10000"))
conn = http.client.HTTPConnection(url.hostname, url.port)
headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


def post(path, body):
    conn.request("POST", path, json.dumps(body), headers)
    r = conn.getresponse()
    data = r.read()
    return r.status, json.loads(data) if data else None


for n in range(1, members + 1):
    status, m = post("/api/v1/members", {"patient_id": f"P{n:08}"})
    if status == 409:
        continue
    assert status == 201, (status, m)
    status, e = post(
        f"/api/v1/members/{m['id']}/points",
        {"kind": "earn", "points": 1000, "reason": "opening balance", "idempotency_key": f"open-{n}"},
    )
    assert status == 201, (status, e)
print(f"{members} members enrolled with 1000 points each")
