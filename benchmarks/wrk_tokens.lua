-- wrk script: every request carries "Authorization: Bearer <token>", the tokens taken in
-- turn from the file named after "--" on wrk's command line (one token a line). With one
-- wrk thread the turn is global, so N tokens and N requests send each token once.
-- done() prints one line of JSON for the measuring script, prefixed with "WRK_JSON ".

local tokens = {}
local count = 0
local sent = 0

function init(args)
  for line in io.lines(args[1]) do
    if #line > 0 then
      count = count + 1
      tokens[count] = "Bearer " .. line
    end
  end
  if count == 0 then
    error("no token in " .. args[1])
  end
end

function request()
  sent = sent + 1
  return wrk.format(nil, nil, { Authorization = tokens[(sent - 1) % count + 1] })
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, '
      .. '"status": %d, "timeout": %d, "p50_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, errors.connect, errors.read, errors.write,
    errors.status, errors.timeout, latency:percentile(50), latency:percentile(99), latency.max
  ))
end
