--[[
  Replaces a member of the set blacklist by the canonical spelling of its address, or drops it
  when it is no address at all. Only a member still present is replaced: one removed since it was
  found must not come back in another spelling.

  KEYS[1] IP blacklist: a set
  ARGV[1] the member as stored
  ARGV[2] its canonical spelling, or "" to drop it

  Returns 1 if the member was replaced (or dropped), 0 if it was gone.
]]
local blacklist, member, canonical = KEYS[1], ARGV[1], ARGV[2]

if redis.call('SREM', blacklist, member) == 0 then
  return 0
end
if canonical ~= '' then
  redis.call('SADD', blacklist, canonical)
end
return 1
