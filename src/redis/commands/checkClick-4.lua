--[[
  Decides one click and records it, atomically: nothing else runs between the blacklist
  lookup, the window count and the writes, so concurrent clicks of one device are counted
  exactly (no read-then-write race between API instances). For a single Redis, where the
  blacklist and the device's keys may be touched by one script.

  KEYS[1] IP blacklist: a cuckoo filter (RedisBloom) or a set, per ARGV[1]
  KEYS[2] device window (see includes/decideClick.lua)
  KEYS[3] device verdicts
  KEYS[4] decision stream

  ARGV[1] blacklist backend: "cuckoo" or "set"
  ARGV[2] canonical ip
  ARGV[3] device_id
  ARGV[4] transaction_id
  ARGV[5] click spam threshold: clicks already in the window that make this one spam
  ARGV[6] window length in ms
  ARGV[7] approximate stream cap (XADD MAXLEN ~)
  ARGV[8] deadline, in ms on this server's clock: the caller has given up by then

  Returns what decide_click returns.
]]
--- @include "decideClick"

local blacklist, backend, ip = KEYS[1], ARGV[1], ARGV[2]
local function is_listed()
  if backend == 'cuckoo' then
    return redis.call('CF.EXISTS', blacklist, ip)
  end
  return redis.call('SISMEMBER', blacklist, ip)
end

return decide_click(KEYS[2], KEYS[3], KEYS[4], ip, ARGV[3], ARGV[4],
  tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7], tonumber(ARGV[8]), is_listed)
