--[[
  On a Redis Cluster, the lookups a click's decision needs from the blacklist's slot, for one
  click or a whole batch: whether its address is blacklisted, in a blacklisted range, or
  allowlisted (its address, a range, or its device). The device's step is then given the answers.

  KEYS[1..7] as checkClicks.lua: blacklist, blacklisted ranges and their lengths, allowlisted
             addresses, ranges and their lengths, allowlisted devices

  ARGV[1] blacklist backend: "cuckoo" or "set"
  ARGV[2..14] the rule set (see includes/rules.lua): lookups of rules that are off are skipped
  ARGV[15..] per click: canonical ip, its hex form, device_id

  Returns per click: listed (0|1), the matching range or '', allowlisted (0|1).
]]
--- @include "rules"
--- @include "ranges"
--- @include "allowlist"

local backend = ARGV[1]
local rules = parse_rules(ARGV, 2)
local answers = {}
local allowlist = allowlist_in_use(KEYS[4], KEYS[7], KEYS[6])
for i = 15, #ARGV, 3 do
  local ip, ip_hex, device_id = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local listed = 0
  if rules.ip_blacklist.mode ~= 'o' then
    listed = backend == 'cuckoo' and redis.call('CF.EXISTS', KEYS[1], ip) or redis.call('SISMEMBER', KEYS[1], ip)
  end
  local range = rules.ip_range.mode ~= 'o' and range_of(KEYS[2], KEYS[3], ip_hex) or ''
  answers[#answers + 1] = listed
  answers[#answers + 1] = range or ''
  answers[#answers + 1] = allowlist and allowlisted(KEYS[4], KEYS[5], KEYS[6], KEYS[7], ip, ip_hex, device_id) and 1 or 0
end
return answers
