-- wrk script: point transactions. Each request earns (2 in 3) or redeems
-- (1 in 3) 1 to 20 points for a random member 1..MEMBERS, with a fresh
-- idempotency key, through POST /api/v1/members/{id}/points.
-- Usage: TOKEN=rpt_… MEMBERS=10000 wrk -t2 -c64 -d30s --latency -s bench/points.lua http://127.0.0.1:18080
-- Members start with a balance (bench/enrol_members.py), so redemptions
-- are rarely refused; a refused one (409) is counted by wrk as non-2xx.
local token = os.getenv("TOKEN")
local members = tonumber(os.getenv("MEMBERS") or "10000")
local run = os.getenv("RUN") or tostring(os.time())
local threads = {}

setup = function(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

init = function(args)
  math.randomseed(os.time() * 1000 + tid)
  counter = 0
end

request = function()
  counter = counter + 1
  local id = math.random(1, members)
  local kind = "earn"
  if counter % 3 == 0 then kind = "redeem" end
  local body = string.format(
    '{"kind":"%s","points":%d,"reason":"bench","idempotency_key":"%s-%d-%d"}',
    kind, math.random(1, 20), run, tid, counter)
  return wrk.format("POST", "/api/v1/members/" .. id .. "/points",
    { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json" }, body)
end

done = function(summary, latency, requests)
  io.write(string.format("errors: status %d, connect %d, read %d, write %d, timeout %d\n",
    summary.errors.status, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout))
end
