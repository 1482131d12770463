-- wrk script: GET /api/v1/patients/{id} for random ids in 1..PATIENTS.
-- Usage: TOKEN=rpt_… PATIENTS=1000000 wrk -t2 -c64 -d30s --latency -s bench/patient_read.lua http://127.0.0.1:8080
local token = os.getenv("TOKEN")
local patients = tonumber(os.getenv("PATIENTS") or "1000000")
math.randomseed(os.time())
request = function()
  local id = math.random(1, patients)
  return wrk.format("GET", "/api/v1/patients/" .. id, { ["Authorization"] = "Bearer " .. token })
end
response = function(status, headers, body)
  if status ~= 200 then
    io.stderr:write("unexpected status " .. status .. "\n")
  end
end
