--[[
  On a Redis Cluster, decides one click and records it, atomically on its device's partition,
  given what the lookups found in the blacklist's slot (lookupAddresses-7) and the address's slot
  (recordAddress-2). The device's window count and the writes are still one step, so concurrent
  clicks of one device are counted exactly.

  KEYS[1] device window, KEYS[2] device verdicts (see includes/decideClick.lua)
  KEYS[3] the partition's decision stream

  ARGV[1] canonical ip, ARGV[2] device_id, ARGV[3] transaction_id
  ARGV[4..16] the rule set (see includes/rules.lua)
  ARGV[17] approximate stream cap, ARGV[18] deadline on this server's clock
  ARGV[19] listed (0|1), ARGV[20] the matching range or '', ARGV[21] allowlisted (0|1)
  ARGV[22] the address's clicks, ARGV[23] its devices (0 where a rule is off)

  Returns what decide_click returns.
]]
--- @include "rules"
--- @include "decideClick"

local rules = parse_rules(ARGV, 4)
local click = { ip = ARGV[1], device_id = ARGV[2], transaction_id = ARGV[3], stream_maxlen = ARGV[17], deadline = tonumber(ARGV[18]) }
local checks = {
  allowlisted = function() return ARGV[21] == '1' end,
  listed = function() return ARGV[19] == '1' end,
  range = function() return ARGV[20] ~= '' and ARGV[20] or nil end,
  address = function() return tonumber(ARGV[22]), tonumber(ARGV[23]) end,
}
local now_text, now = server_now()
return decide_click(KEYS[1], KEYS[2], KEYS[3], click, rules, checks, now_text, now)
