--[[
  Adding and removing a range keeps the hash of prefix lengths in use (includes/ranges.lua) true:
  a length is there exactly as long as some range has it, so a lookup never tries a length for
  nothing, nor misses one.
]]
local function add_range(ranges, lengths, member, cidr, length)
  if redis.call('HSETNX', ranges, member, cidr) == 0 then
    return 0
  end
  redis.call('HINCRBY', lengths, length, 1)
  return 1
end

local function remove_range(ranges, lengths, member, length)
  if redis.call('HDEL', ranges, member) == 0 then
    return 0
  end
  if redis.call('HINCRBY', lengths, length, -1) <= 0 then
    redis.call('HDEL', lengths, length)
  end
  return 1
end
