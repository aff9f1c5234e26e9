--[[
  The rule set, as the API passes it to every check: one line of words (built once per rule-set
  version by ruleSpec in src/redis/rule-store.ts), cheaper to read than JSON on every click.

    <version> <ip_blacklist mode> <ip_range mode>
    <click_spam mode> <threshold> <window ms> <ip_flood mode> <threshold> <window ms>
    <device_farm mode> <threshold> <window ms> <device window cap>

  Modes: e (enforce: its hits are verdicts), s (shadow: recorded beside the verdict), o (off).
]]
local function parse_rules(spec)
  local w = {}
  for word in string.gmatch(spec, '%S+') do
    w[#w + 1] = word
  end
  return {
    version = w[1],
    ip_blacklist = { mode = w[2] },
    ip_range = { mode = w[3] },
    click_spam = { mode = w[4], threshold = tonumber(w[5]), window_ms = tonumber(w[6]) },
    ip_flood = { mode = w[7], threshold = tonumber(w[8]), window_ms = tonumber(w[9]) },
    device_farm = { mode = w[10], threshold = tonumber(w[11]), window_ms = tonumber(w[12]) },
    device_cap = tonumber(w[13]),
  }
end

-- The server's clock in ms, as a string (exact) and a number.
local function server_now()
  local time = redis.call('TIME')
  local now = time[1] .. string.format('%03d', math.floor(tonumber(time[2]) / 1000))
  return now, tonumber(now)
end
