--[[
  Counts one decision and acknowledges it, in one step. Only an entry still pending in the group
  is counted, so whichever worker gets here first counts it; a retry after a crash, or a second
  worker that claimed the same entry, finds it acknowledged and counts nothing.

  KEYS[1] decision stream
  KEYS[2] counter of all clicks
  KEYS[3] counter of the decision's fraud type
  KEYS[4] hash backend only: per-minute counter of all clicks
  KEYS[5] hash backend only: per-minute counter of the decision's fraud type

  ARGV[1] consumer group
  ARGV[2] entry id
  ARGV[3] counter backend: "timeseries" or "hash"
  ARGV[4] start of the decision's second, in ms
  ARGV[5] hash backend only: when the per-second counter keys expire (unix ms)
  ARGV[6] hash backend only: start of the decision's minute, in ms
  ARGV[7] hash backend only: when the per-minute counter keys expire (unix ms)

  Returns 1 if counted, 0 if the entry was no longer pending.
]]
local stream, total, typed = KEYS[1], KEYS[2], KEYS[3]
local group, id, backend, second = ARGV[1], ARGV[2], ARGV[3], ARGV[4]

if #redis.call('XPENDING', stream, group, id, id, 1) == 0 then
  return 0
end

if backend == 'timeseries' then
  -- All-clicks first: it holds the newest sample of all the series, so if its retention accepts
  -- this timestamp the fraud-type series' retention does too, and a rejection (an error) comes
  -- before anything is written.
  redis.call('TS.ADD', total, second, 1, 'ON_DUPLICATE', 'SUM')
  redis.call('TS.ADD', typed, second, 1, 'ON_DUPLICATE', 'SUM')
else
  -- Per-minute hashes of per-second counts, and per-hour hashes of per-minute counts (so that a
  -- day in minutes is 25 reads, not 1,440); a key expires once its span is past retention.
  local expire_at, minute, minutes_expire_at = ARGV[5], ARGV[6], ARGV[7]
  local total_minutes, typed_minutes = KEYS[4], KEYS[5]
  redis.call('HINCRBY', total, second, 1)
  redis.call('PEXPIREAT', total, expire_at)
  redis.call('HINCRBY', typed, second, 1)
  redis.call('PEXPIREAT', typed, expire_at)
  redis.call('HINCRBY', total_minutes, minute, 1)
  redis.call('PEXPIREAT', total_minutes, minutes_expire_at)
  redis.call('HINCRBY', typed_minutes, minute, 1)
  redis.call('PEXPIREAT', typed_minutes, minutes_expire_at)
end

redis.call('XACK', stream, group, id)
return 1
