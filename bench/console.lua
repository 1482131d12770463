-- wrk script for the console pages: sends the session cookie, picks a
-- random patient for "/patients/{id}" paths (PATIENTS=N), and prints the
-- 50th, 95th and 99th percentile latencies in milliseconds.
local cookie = os.getenv("COOKIE")
local patients = tonumber(os.getenv("PATIENTS") or "0")
local path = os.getenv("PAGE") or "/dashboard"

request = function()
  local p = path
  if p == "/patients/{id}" then
    p = "/patients/" .. math.random(1, patients)
  end
  return wrk.format("GET", p, { ["Cookie"] = "rapport_session=" .. cookie, ["Accept-Language"] = "zh-CN" })
end

done = function(summary, latency, requests)
  local non2xx = summary.errors.status
  io.write(string.format("RESULT p50=%.1fms p95=%.1fms p99=%.1fms req/s=%.0f requests=%d non2xx=%d\n",
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    summary.requests / (summary.duration / 1e6), summary.requests, non2xx))
end
