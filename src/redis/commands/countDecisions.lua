--[[
  Counts decisions of one partition and acknowledges them, in one step. Only an entry still pending
  in the group is counted, so whichever worker gets here first counts it; a retry after a crash, or
  a second worker that claimed the same entry, finds it acknowledged and counts nothing.

  A decision adds one to each of its series: all clicks, its verdict, and each rule that fired in
  shadow mode. A fraud decision also adds one to its device and to its address among the minute's
  top offenders of the partition (see includes/offenders.lua). What the pending decisions add is
  summed first and written once per key and bucket: a worker's batch of 500 falls in a few seconds,
  so it writes a few counts where it used to write two or three per decision.

  Nothing is written unless everything can be: the keys' types are checked first, and a
  time series is written oldest sample first, all-clicks before the others (it holds the newest
  sample of all of them, so if its retention accepts a timestamp theirs does too). A call that
  fails has changed nothing, and its entries, still pending, can be counted one by one.

  The caller passes the number of keys first. KEYS[1] the partition's decision stream, then each
  decision's keys; ARGV[1] the consumer group, then per decision: its number of keys, its number of
  arguments, and the arguments. A decision's keys:
    [1] the minute's top offending devices, [2] the minute's top offending addresses
    timeseries: [3..] the per-second series of each count, all clicks first
    hash:       [3] the minute's hash of per-second counts, [4] the hour's hash of per-minute counts
  and its arguments:
    [1] entry id
    [2] offenders: "" (a clean decision: none), "topk" or "zset"
    [3] the device's member, [4] the address's member ("<verdict>:<device id or address>")
    [5] when the minute's offenders expire (unix ms)
    [6] offenders kept per minute (k), [7..9] Top-K width, depth and decay
    [10] counter backend: "timeseries" or "hash"
    [11] start of the decision's second, in ms
    hash only:
    [12] start of the decision's minute, in ms
    [13] when the minute's hash expires (unix ms), [14] when the hour's hash expires (unix ms)
    [15..] the series' names: fields are "<series>@<second or minute start>"

  Returns how many decisions were counted.
]]
--- @include "offenders"

local stream, group = KEYS[1], ARGV[1]

-- Sums by key, in the order keys were first met: key -> { order = {...}, [bucket or member] = count }.
local function sums()
  return { keys = {}, by_key = {} }
end
local function add(into, key, item, by)
  local entry = into.by_key[key]
  if not entry then
    entry = { order = {}, counts = {} }
    into.by_key[key] = entry
    into.keys[#into.keys + 1] = key
  end
  if not entry.counts[item] then
    entry.order[#entry.order + 1] = item
    entry.counts[item] = 0
  end
  entry.counts[item] = entry.counts[item] + by
end

local counted = {}
local samples, clicks_series = sums(), nil
local fields, expire_at = sums(), {}
local offenders, offenders_shape = sums(), {}

local k, a = 2, 2
while a <= #ARGV do
  local nkeys, nargs = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  local arg = a + 2
  local id = ARGV[arg]
  if #redis.call('XPENDING', stream, group, id, id, 1) > 0 then
    counted[#counted + 1] = id
    local backend = ARGV[arg + 1]
    if backend ~= '' then
      local shape = { backend = backend, k = ARGV[arg + 5], width = ARGV[arg + 6], depth = ARGV[arg + 7], decay = ARGV[arg + 8], expire_at = ARGV[arg + 4] }
      offenders_shape[KEYS[k]], offenders_shape[KEYS[k + 1]] = shape, shape
      add(offenders, KEYS[k], ARGV[arg + 2], 1)
      add(offenders, KEYS[k + 1], ARGV[arg + 3], 1)
    end
    local second = ARGV[arg + 10]
    if ARGV[arg + 9] == 'timeseries' then
      clicks_series = clicks_series or KEYS[k + 2]
      for i = k + 2, k + nkeys - 1 do
        add(samples, KEYS[i], tonumber(second), 1)
      end
    else
      local minutes, hours, minute = KEYS[k + 2], KEYS[k + 3], ARGV[arg + 11]
      expire_at[minutes], expire_at[hours] = ARGV[arg + 12], ARGV[arg + 13]
      for i = arg + 14, arg + nargs - 1 do
        add(fields, minutes, ARGV[i] .. '@' .. second, 1)
        add(fields, hours, ARGV[i] .. '@' .. minute, 1)
      end
    end
  end
  k, a = k + nkeys, a + 2 + nargs
end
if #counted == 0 then
  return 0
end

-- Checks, before anything is written.
local fresh = {}
for _, key in ipairs(offenders.keys) do
  local new, problem = offenders_check(key, offenders_shape[key].backend)
  if new == nil then return redis.error_reply(problem) end
  fresh[key] = new
end
local function check_type(key, expected)
  local found = redis.call('TYPE', key)['ok']
  if found ~= 'none' and found ~= expected then
    return redis.error_reply('WRONGTYPE counter key ' .. key .. ' holds a ' .. found .. ', not a ' .. expected)
  end
end
for _, key in ipairs(fields.keys) do
  local wrong = check_type(key, 'hash')
  if wrong then return wrong end
end
for _, key in ipairs(samples.keys) do
  local wrong = check_type(key, 'TSDB-TYPE')
  if wrong then return wrong end
end

-- The counts: time series oldest sample first, all clicks first; hashes with their expiry.
local function write_samples(key)
  local entry = samples.by_key[key]
  table.sort(entry.order)
  for _, second in ipairs(entry.order) do
    redis.call('TS.ADD', key, second, entry.counts[second], 'ON_DUPLICATE', 'SUM')
  end
end
if clicks_series then write_samples(clicks_series) end
for _, key in ipairs(samples.keys) do
  if key ~= clicks_series then write_samples(key) end
end
for _, key in ipairs(fields.keys) do
  local entry = fields.by_key[key]
  for _, field in ipairs(entry.order) do
    redis.call('HINCRBY', key, field, entry.counts[field])
  end
  redis.call('PEXPIREAT', key, expire_at[key])
end
for _, key in ipairs(offenders.keys) do
  local entry, shape = offenders.by_key[key], offenders_shape[key]
  for _, member in ipairs(entry.order) do
    offenders_add(key, shape.backend, member, entry.counts[member], shape, shape.expire_at, fresh[key])
    fresh[key] = false
  end
end

-- Acknowledged last, in calls of at most 1,000 ids (Lua's unpack has a limit).
for first = 1, #counted, 1000 do
  redis.call('XACK', stream, group, unpack(counted, first, math.min(first + 999, #counted)))
end
return #counted
