-- wrk script for benches/load.sh: each connection waits $PACE_MS milliseconds after every
-- answer before it sends the next request, so the load is a steady rate below the peak
-- (connections / (PACE_MS + the answer's time) requests a second) and latency is measured
-- without queueing in the proxy.
local pace = tonumber(os.getenv("PACE_MS") or "") or 2

function delay()
  return pace
end
