--[[
  An address's sliding windows, for the per-address rules: its clicks (member: the device and
  transaction, so a retry is not counted twice) and its devices, each scored by time. Only the
  newest threshold + 1 entries decide whether a click is over a threshold, so a window never holds
  more, whatever one address sends. Returns the clicks and devices in the windows, this click
  included (0 for a rule that is off).
]]
-- Adds `member` at `now` to the window at `key` for `rule` and answers how many it holds, this one included.
local function slide(key, member, now, rule)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - rule.window_ms)
  redis.call('ZADD', key, now, member)
  redis.call('ZREMRANGEBYRANK', key, 0, -(rule.threshold + 2))
  local held = redis.call('ZCARD', key)
  redis.call('PEXPIRE', key, rule.window_ms)
  return held
end

local function record_address(clicks_key, devices_key, click_member, device_id, now, rules)
  local clicks, devices = 0, 0
  local flood, farm = rules.ip_flood, rules.device_farm
  if flood.mode ~= 'o' then clicks = slide(clicks_key, click_member, now, flood) end
  if farm.mode ~= 'o' then devices = slide(devices_key, device_id, now, farm) end
  return clicks, devices
end
