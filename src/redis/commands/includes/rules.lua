--[[
  The rule set, as the API passes it to every check: 13 arguments from `first` on (built once per
  rule-set version by ruleArgs in src/redis/rule-store.ts), read by position, which costs a few
  microseconds where parsing a string or JSON on every click cost several times more.

    <version> <ip_blacklist mode> <ip_range mode>
    <click_spam mode> <threshold> <window ms> <ip_flood mode> <threshold> <window ms>
    <device_farm mode> <threshold> <window ms> <device window cap>

  Modes: e (enforce: its hits are verdicts), s (shadow: recorded beside the verdict), o (off).
]]
local function parse_rules(args, first)
  local o = first
  return {
    version = args[o],
    ip_blacklist = { mode = args[o + 1] },
    ip_range = { mode = args[o + 2] },
    click_spam = { mode = args[o + 3], threshold = tonumber(args[o + 4]), window_ms = tonumber(args[o + 5]) },
    ip_flood = { mode = args[o + 6], threshold = tonumber(args[o + 7]), window_ms = tonumber(args[o + 8]) },
    device_farm = { mode = args[o + 9], threshold = tonumber(args[o + 10]), window_ms = tonumber(args[o + 11]) },
    device_cap = tonumber(args[o + 12]),
  }
end

-- The server's clock in ms, as a string (exact) and a number.
local function server_now()
  local time = redis.call('TIME')
  local now = time[1] .. string.format('%03d', math.floor(tonumber(time[2]) / 1000))
  return now, tonumber(now)
end
