-- wrk script: PUT a small Patient to one of 1,000 ids (update, and update-as-create at first).
wrk.method = "PUT"
wrk.headers["Content-Type"] = "application/fhir+json"
wrk.headers["Prefer"] = "return=minimal"
math.randomseed(os.time())

request = function()
  local id = "load-" .. math.random(1, 1000)
  local body = '{"resourceType":"Patient","id":"' .. id .. '","name":[{"family":"Update"}],"active":true}'
  return wrk.format(nil, wrk.path .. "/Patient/" .. id, nil, body)
end
