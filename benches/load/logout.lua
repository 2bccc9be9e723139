-- wrk script for benches/load.sh: logouts in the background of a measurement. Each request is
-- POST /auth/logout with the next of the sessions seeded into the database (one per line of
-- $LOGOUT_TOKENS), so every one really ends a session; each connection waits
-- $LOGOUT_DELAY_MS (18: about 50 a second with one connection, a logout taking 1-2 ms)
-- between requests.
local tokens = {}
local next_token = 0
local delay_ms = tonumber(os.getenv("LOGOUT_DELAY_MS") or "18")

function init(args)
  for line in io.lines(os.getenv("LOGOUT_TOKENS")) do
    tokens[#tokens + 1] = line
  end
end

function delay()
  return delay_ms
end

function request()
  next_token = next_token % #tokens + 1
  local headers = { ["Cookie"] = "authgate_session=" .. tokens[next_token], ["Content-Length"] = "0" }
  return wrk.format("POST", nil, headers, "")
end
