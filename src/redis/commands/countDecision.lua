--[[
  Counts one decision and acknowledges it, in one step. Only an entry still pending in the group
  is counted, so whichever worker gets here first counts it; a retry after a crash, or a second
  worker that claimed the same entry, finds it acknowledged and counts nothing.

  A decision adds one to each of its series: all clicks, its verdict, and each rule that fired in
  shadow mode. How many that is varies, so the caller passes the number of keys (no -N in the name).

  KEYS[1] the partition's decision stream
  timeseries: KEYS[2..] the per-second series of each count
  hash:       KEYS[2] the minute's hash of per-second counts, KEYS[3] the hour's hash of per-minute counts

  ARGV[1] consumer group
  ARGV[2] entry id
  ARGV[3] counter backend: "timeseries" or "hash"
  ARGV[4] start of the decision's second, in ms
  hash only:
  ARGV[5] start of the decision's minute, in ms
  ARGV[6] when the minute's hash expires (unix ms)
  ARGV[7] when the hour's hash expires (unix ms)
  ARGV[8..] the series' names: fields are "<series>@<second or minute start>"

  Returns 1 if counted, 0 if the entry was no longer pending.
]]
local stream = KEYS[1]
local group, id, backend, second = ARGV[1], ARGV[2], ARGV[3], ARGV[4]

if #redis.call('XPENDING', stream, group, id, id, 1) == 0 then
  return 0
end

if backend == 'timeseries' then
  -- All-clicks first: it holds the newest sample of all the series, so if its retention accepts
  -- this timestamp the others' does too, and a rejection (an error) comes before anything is written.
  for i = 2, #KEYS do
    redis.call('TS.ADD', KEYS[i], second, 1, 'ON_DUPLICATE', 'SUM')
  end
else
  -- One hash per minute of per-second counts and one per hour of per-minute counts, every series
  -- in the same hash (so that a read costs the same however many rules there are); a key expires
  -- once its span is past retention.
  local minutes, hours = KEYS[2], KEYS[3]
  local minute = ARGV[5]
  for i = 8, #ARGV do
    redis.call('HINCRBY', minutes, ARGV[i] .. '@' .. second, 1)
    redis.call('HINCRBY', hours, ARGV[i] .. '@' .. minute, 1)
  end
  redis.call('PEXPIREAT', minutes, ARGV[6])
  redis.call('PEXPIREAT', hours, ARGV[7])
end

redis.call('XACK', stream, group, id)
return 1
