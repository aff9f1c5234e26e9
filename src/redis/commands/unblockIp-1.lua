--[[
  Takes an address out of the blacklist.

  KEYS[1] IP blacklist: a cuckoo filter (RedisBloom) or a set, per ARGV[1]
  ARGV[1] blacklist backend: "cuckoo" or "set"
  ARGV[2] canonical ip

  Returns 1 if the address was in the blacklist, 0 if not.
]]
local blacklist, backend, ip = KEYS[1], ARGV[1], ARGV[2]

if backend == 'cuckoo' then
  -- CF.DEL of an item the filter does not report would remove whatever fingerprint it finds,
  -- possibly another address's, so only what CF.EXISTS reports is deleted.
  if redis.call('CF.EXISTS', blacklist, ip) == 0 then
    return 0
  end
  return redis.call('CF.DEL', blacklist, ip)
end
return redis.call('SREM', blacklist, ip)
