--[[
  Ends the temporary bans that are due: takes each address or range out of the blacklist and
  deletes its registry entry and index entries, in one step, so that a ban renewed a moment ago
  (its expiry moved into the future) is never swept.

  KEYS[1] IP blacklist: a cuckoo filter (RedisBloom) or a set, per ARGV[1]
  KEYS[2] bans by expiry: sorted set, member = ip or range, score = expiry in unix ms
  KEYS[3] bans by time added: sorted set, member = ip or range (kept where there is no search index)
  KEYS[4] blacklisted ranges, KEYS[5] their prefix lengths (see includes/ranges.lua)

  ARGV[1] blacklist backend: "cuckoo" or "set"
  ARGV[2] key prefix of registry entries (the entry of an ip or range is ARGV[2] .. it; a range's
          holds its `range_member` and `range_length`)
  ARGV[3] most bans to end in this call

  Returns the addresses and ranges unblocked.
]]
--- @include "rangeLists"

local blacklist, by_expiry, by_added, ranges, lengths = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local backend, entry_prefix, limit = ARGV[1], ARGV[2], ARGV[3]

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

local due = redis.call('ZRANGEBYSCORE', by_expiry, '-inf', now, 'LIMIT', 0, limit)
for _, ip in ipairs(due) do
  local entry = entry_prefix .. ip
  local range = redis.call('HMGET', entry, 'range_member', 'range_length')
  if range[1] then
    remove_range(ranges, lengths, range[1], range[2])
  elseif backend == 'cuckoo' then
    -- As in unblockIp-1.lua: only delete what the filter reports.
    if redis.call('CF.EXISTS', blacklist, ip) == 1 then
      redis.call('CF.DEL', blacklist, ip)
    end
  else
    redis.call('SREM', blacklist, ip)
  end
  redis.call('DEL', entry)
  redis.call('ZREM', by_expiry, ip)
  redis.call('ZREM', by_added, ip)
end
return due
