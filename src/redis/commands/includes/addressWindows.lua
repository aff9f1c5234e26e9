--[[
  An address's sliding windows, for the per-address rules: its clicks (member: the device and
  transaction, so a retry is not counted twice) and its devices, each scored by time. Only the
  newest threshold + 1 entries decide whether a click is over a threshold, so a window never holds
  more, whatever one address sends. Returns the clicks and devices in the windows, this click
  included (0 for a rule that is off).
]]
local function record_address(clicks_key, devices_key, click_member, device_id, now, rules)
  local clicks, devices = 0, 0
  local flood, farm = rules.ip_flood, rules.device_farm
  if flood.mode ~= 'o' then
    redis.call('ZREMRANGEBYSCORE', clicks_key, '-inf', now - flood.window_ms)
    redis.call('ZADD', clicks_key, now, click_member)
    redis.call('ZREMRANGEBYRANK', clicks_key, 0, -(flood.threshold + 2))
    clicks = redis.call('ZCARD', clicks_key)
    redis.call('PEXPIRE', clicks_key, flood.window_ms)
  end
  if farm.mode ~= 'o' then
    redis.call('ZREMRANGEBYSCORE', devices_key, '-inf', now - farm.window_ms)
    redis.call('ZADD', devices_key, now, device_id)
    redis.call('ZREMRANGEBYRANK', devices_key, 0, -(farm.threshold + 2))
    devices = redis.call('ZCARD', devices_key)
    redis.call('PEXPIRE', devices_key, farm.window_ms)
  end
  return clicks, devices
end
