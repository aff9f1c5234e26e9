--[[
  The allowlist: addresses (hash), devices (hash) and ranges (see includes/ranges.lua). Most
  deployments keep it empty or nearly so, and every click asks it: one EXISTS over its three keys
  tells whether there is anything to look up, where the three lookups cost three calls.
]]
local function allowlist_in_use(ips, devices, range_lengths)
  return redis.call('EXISTS', ips, devices, range_lengths) > 0
end

local function allowlisted(ips, ranges, range_lengths, devices, ip, ip_hex, device_id)
  return redis.call('HEXISTS', ips, ip) == 1 or redis.call('HEXISTS', devices, device_id) == 1 or range_of(ranges, range_lengths, ip_hex) ~= nil
end
