--[[
  A minute's top offenders of one kind (devices or addresses) in one partition: the heaviest
  "<verdict>:<id>" members by fraud clicks, at most k of them, whatever the traffic.

  "topk": a RedisBloom Top-K (HeavyKeeper), made on the minute's first fraud click. Its memory is
  fixed when made (width x depth counters and a list of k); a count can come out low when members
  collide in every row, never high.

  "zset": plain Redis, a sorted set of at most k members scored by count, kept with Space-Saving:
  a member not in a full set takes the place of the lowest one, with its count plus one. So every
  member with more than 1/k of the minute's fraud clicks is kept, and a count can come out high by
  at most the count it took over, never low. Until a minute has more than k members, counts are
  exact. (k is larger than the Top-K's: the Top-K also counts what is not on its list.)
]]
local OFFENDERS_TYPE = { topk = 'TopK-TYPE', zset = 'zset' }

--- Whether `key` is new (true) or already holds offenders of `backend` (false); nil and why when it
--- holds something else.
local function offenders_check(key, backend)
  local found = redis.call('TYPE', key)['ok']
  if found == 'none' then return true end
  if found == OFFENDERS_TYPE[backend] then return false end
  return nil, 'WRONGTYPE offenders key ' .. key .. ' holds a ' .. found .. ', not a ' .. OFFENDERS_TYPE[backend]
end

--- Adds `clicks` fraud clicks of `member` to the minute's offenders in `key` (`new`: see
--- offenders_check); a new key expires at `expire_at`, with its minute.
local function offenders_add(key, backend, member, clicks, shape, expire_at, new)
  if backend == 'topk' then
    if new then
      redis.call('TOPK.RESERVE', key, shape.k, shape.width, shape.depth, shape.decay)
    end
    redis.call('TOPK.INCRBY', key, member, clicks)
  -- XX: only a member already there; it answers nil (false here) for any other.
  elseif not redis.call('ZADD', key, 'XX', 'INCR', clicks, member) then
    if redis.call('ZCARD', key) < tonumber(shape.k) then
      redis.call('ZADD', key, clicks, member)
    else
      local lowest = redis.call('ZPOPMIN', key)
      redis.call('ZADD', key, tonumber(lowest[2]) + clicks, member)
    end
  end
  if new then redis.call('PEXPIREAT', key, expire_at) end
end

--- The members and counts in `key`, as a flat list; empty when the key does not exist.
local function offenders_list(key, backend)
  if backend == 'topk' then
    if redis.call('EXISTS', key) == 0 then return {} end
    return redis.call('TOPK.LIST', key, 'WITHCOUNT')
  end
  return redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
end
