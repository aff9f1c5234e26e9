--[[
  Counts one decision and acknowledges it, in one step. Only an entry still pending in the group
  is counted, so whichever worker gets here first counts it; a retry after a crash, or a second
  worker that claimed the same entry, finds it acknowledged and counts nothing.

  A decision adds one to each of its series: all clicks, its verdict, and each rule that fired in
  shadow mode. How many that is varies, so the caller passes the number of keys (no -N in the name).
  A fraud decision also adds one to its device and to its address among the minute's top offenders
  of the partition (see includes/offenders.lua).

  KEYS[1] the partition's decision stream
  KEYS[2] the minute's top offending devices, KEYS[3] the minute's top offending addresses
  timeseries: KEYS[4..] the per-second series of each count
  hash:       KEYS[4] the minute's hash of per-second counts, KEYS[5] the hour's hash of per-minute counts

  ARGV[1] consumer group
  ARGV[2] entry id
  ARGV[3] offenders: "" (a clean decision: none), "topk" or "zset"
  ARGV[4] the device's member, ARGV[5] the address's member ("<verdict>:<device id or address>")
  ARGV[6] when the minute's offenders expire (unix ms)
  ARGV[7] offenders kept per minute (k), ARGV[8..10] Top-K width, depth and decay
  ARGV[11] counter backend: "timeseries" or "hash"
  ARGV[12] start of the decision's second, in ms
  hash only:
  ARGV[13] start of the decision's minute, in ms
  ARGV[14] when the minute's hash expires (unix ms)
  ARGV[15] when the hour's hash expires (unix ms)
  ARGV[16..] the series' names: fields are "<series>@<second or minute start>"

  Returns 1 if counted, 0 if the entry was no longer pending.
]]
--- @include "offenders"

local stream = KEYS[1]
local group, id = ARGV[1], ARGV[2]
local offenders = ARGV[3]
local backend, second = ARGV[11], ARGV[12]

if #redis.call('XPENDING', stream, group, id, id, 1) == 0 then
  return 0
end

-- A script that fails half-way keeps what it wrote, and the entry, still pending, would be counted
-- again: so the offenders' keys are checked before anything is written, and written last.
local new = {}
if offenders ~= '' then
  for i = 2, 3 do
    local fresh, problem = offenders_check(KEYS[i], offenders)
    if fresh == nil then return redis.error_reply(problem) end
    new[i] = fresh
  end
end

if backend == 'timeseries' then
  -- All-clicks first: it holds the newest sample of all the series, so if its retention accepts
  -- this timestamp the others' does too, and a rejection (an error) comes before anything is written.
  for i = 4, #KEYS do
    redis.call('TS.ADD', KEYS[i], second, 1, 'ON_DUPLICATE', 'SUM')
  end
else
  -- One hash per minute of per-second counts and one per hour of per-minute counts, every series
  -- in the same hash (so that a read costs the same however many rules there are); a key expires
  -- once its span is past retention.
  local minutes, hours = KEYS[4], KEYS[5]
  local minute = ARGV[13]
  for i = 16, #ARGV do
    redis.call('HINCRBY', minutes, ARGV[i] .. '@' .. second, 1)
    redis.call('HINCRBY', hours, ARGV[i] .. '@' .. minute, 1)
  end
  redis.call('PEXPIREAT', minutes, ARGV[14])
  redis.call('PEXPIREAT', hours, ARGV[15])
end

if offenders ~= '' then
  local shape = { k = ARGV[7], width = ARGV[8], depth = ARGV[9], decay = ARGV[10] }
  offenders_add(KEYS[2], offenders, ARGV[4], shape, ARGV[6], new[2])
  offenders_add(KEYS[3], offenders, ARGV[5], shape, ARGV[6], new[3])
end

redis.call('XACK', stream, group, id)
return 1
