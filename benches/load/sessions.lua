-- wrk script for benches/load.sh: GET requests that rotate through many sessions, one per
-- line of $SESSION_TOKENS (seeded, never logged out), as the traffic of many signed-in users.
local tokens = {}
local next_token = 0

function init(args)
  for line in io.lines(os.getenv("SESSION_TOKENS")) do
    tokens[#tokens + 1] = line
  end
  -- Each thread starts elsewhere in the list.
  next_token = math.random(#tokens) - 1
end

function request()
  next_token = next_token % #tokens + 1
  return wrk.format("GET", nil, { ["Cookie"] = "authgate_session=" .. tokens[next_token] })
end
