-- wrk script: each request presents the next of many session tokens (one per line in $TOKENS).
local tokens = {}
for line in io.lines(os.getenv("TOKENS")) do
  tokens[#tokens + 1] = line
end
local i = 0
request = function()
  i = i % #tokens + 1
  return wrk.format("GET", "/app", { ["Cookie"] = "authgate_session=" .. tokens[i] })
end
