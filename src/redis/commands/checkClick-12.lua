--[[
  Decides one click and records it, atomically, on a single Redis: every rule's lookup and window
  in the same step, so concurrent clicks of one device or one address are counted exactly (no
  read-then-write race between API instances).

  KEYS[1]  IP blacklist: a cuckoo filter (RedisBloom) or a set, per ARGV[1]
  KEYS[2]  blacklisted ranges, KEYS[3] their prefix lengths (see includes/ranges.lua)
  KEYS[4]  allowlisted addresses (hash), KEYS[5] allowlisted ranges, KEYS[6] their prefix lengths
  KEYS[7]  allowlisted devices (hash)
  KEYS[8]  device window, KEYS[9] device verdicts (see includes/decideClick.lua)
  KEYS[10] the partition's decision stream
  KEYS[11] the address's clicks, KEYS[12] the address's devices (see includes/addressWindows.lua)

  ARGV[1] blacklist backend: "cuckoo" or "set"
  ARGV[2] canonical ip, ARGV[3] its hex form (`4:cb007105`)
  ARGV[4] device_id, ARGV[5] transaction_id
  ARGV[6..18] the rule set (see includes/rules.lua)
  ARGV[19] approximate stream cap (XADD MAXLEN ~)
  ARGV[20] deadline, in ms on this server's clock: the caller has given up by then

  Returns what decide_click returns.
]]
--- @include "rules"
--- @include "ranges"
--- @include "allowlist"
--- @include "addressWindows"
--- @include "decideClick"

local backend, ip, ip_hex, device_id = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local rules = parse_rules(ARGV, 6)
local click = { ip = ip, device_id = device_id, transaction_id = ARGV[5], stream_maxlen = ARGV[19], deadline = tonumber(ARGV[20]) }

local checks = {
  allowlisted = function()
    return allowlist_in_use(KEYS[4], KEYS[7], KEYS[6]) and allowlisted(KEYS[4], KEYS[5], KEYS[6], KEYS[7], ip, ip_hex, device_id)
  end,
  listed = function()
    if backend == 'cuckoo' then
      return redis.call('CF.EXISTS', KEYS[1], ip) == 1
    end
    return redis.call('SISMEMBER', KEYS[1], ip) == 1
  end,
  range = function()
    return range_of(KEYS[2], KEYS[3], ip_hex)
  end,
  address = function(now)
    -- The device and transaction, length-prefixed so that no two pairs read the same.
    return record_address(KEYS[11], KEYS[12], #device_id .. ':' .. device_id .. click.transaction_id, device_id, now, rules)
  end,
}

return decide_click(KEYS[8], KEYS[9], KEYS[10], click, rules, checks)
