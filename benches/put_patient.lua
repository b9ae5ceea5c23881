-- wrk script: PUT a small Patient to one of 1,000 ids (update, and update-as-create at first).
-- Each body differs (a counter in the name): an update equal to the current version writes no
-- version, and this workload measures updates that do.
wrk.method = "PUT"
wrk.headers["Content-Type"] = "application/fhir+json"
wrk.headers["Prefer"] = "return=minimal"
math.randomseed(os.time())
local counter = 0

request = function()
  counter = counter + 1
  local id = "load-" .. math.random(1, 1000)
  local body = '{"resourceType":"Patient","id":"' .. id .. '","name":[{"family":"Update ' .. counter .. '"}],"active":true}'
  return wrk.format(nil, wrk.path .. "/Patient/" .. id, nil, body)
end
