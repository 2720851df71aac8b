-- wrk script: 16 pipelined requests per write (wrk -s benches/http/pipeline.lua).
init = function(args)
  local requests = {}
  for i = 1, 16 do
    requests[i] = wrk.format(nil, wrk.path)
  end
  pipelined = table.concat(requests)
end

request = function()
  return pipelined
end
