--[[
  Decides one click and records it, atomically, given whether its address is blacklisted: on a
  Redis Cluster the blacklist lives in another slot, so the caller looks it up first (its own
  command on the blacklist's node) and passes the answer. The window count and the writes are
  still one step, so concurrent clicks of one device are counted exactly.

  KEYS[1] device window (see includes/decideClick.lua)
  KEYS[2] device verdicts
  KEYS[3] the device's partition's decision stream

  ARGV[1] 1 when the address is blacklisted, else 0
  ARGV[2..8] as checkClick-4.lua: ip, device_id, transaction_id, threshold, window ms, stream
          cap, deadline on this server's clock

  Returns what decide_click returns.
]]
--- @include "decideClick"

local listed = tonumber(ARGV[1])
return decide_click(KEYS[1], KEYS[2], KEYS[3], ARGV[2], ARGV[3], ARGV[4],
  tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7], tonumber(ARGV[8]), function() return listed end)
