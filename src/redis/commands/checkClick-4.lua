--[[
  Decides one click and records it, atomically: nothing else runs between the blacklist
  lookup, the window count and the writes, so concurrent clicks of one device are counted
  exactly (no read-then-write race between API instances).

  KEYS[1] IP blacklist: a cuckoo filter (RedisBloom) or a set, per ARGV[1]
  KEYS[2] device window: sorted set, member = transaction_id, score = click time in ms
  KEYS[3] device verdicts: hash, transaction_id -> "<ts> <fraud_type> <stream id>", same members as KEYS[2]
  KEYS[4] decision stream

  ARGV[1] blacklist backend: "cuckoo" or "set"
  ARGV[2] canonical ip
  ARGV[3] device_id
  ARGV[4] transaction_id
  ARGV[5] click spam threshold: clicks already in the window that make this one spam
  ARGV[6] window length in ms
  ARGV[7] approximate stream cap (XADD MAXLEN ~)
  ARGV[8] deadline, in ms on this server's clock: the caller has given up by then

  Returns { fraud_type, ts (ms, string), stream id, duplicate (0 or 1) },
  or { "expired", ts } when the script ran after its deadline and changed nothing.
]]
local blacklist, window, verdicts, stream = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local backend, ip, device_id, transaction_id = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local threshold, window_ms, stream_maxlen = tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7]
local deadline = tonumber(ARGV[8])

-- Server clock, so that every API instance stamps clicks from the same clock.
local time = redis.call('TIME')
local now = time[1] .. string.format('%03d', math.floor(tonumber(time[2]) / 1000))

-- A click that reaches Redis after its caller answered 503 (Redis hung or slow, the command
-- queued meanwhile) must not be decided behind that answer's back: a retry decides it instead.
if tonumber(now) > deadline then
  return { 'expired', now }
end
-- A click at or before window_start is outside the window: the window is (now - window_ms, now].
local window_start = tonumber(now) - window_ms

-- Forget clicks that left the window. At most 100 per call keeps every call short even after a
-- burst; the rest go on later calls or with the key's expiry, and the count below ignores them.
local expired = redis.call('ZRANGEBYSCORE', window, '-inf', window_start, 'LIMIT', 0, 100)
if #expired > 0 then
  redis.call('ZREM', window, unpack(expired))
  redis.call('HDEL', verdicts, unpack(expired))
end

-- A retry of a click still in the window gets the original verdict and changes nothing. (Where
-- eviction took the window but not the verdict, the verdict's own time still tells.)
local original = redis.call('HGET', verdicts, transaction_id)
if original then
  local seen_at, fraud_type, stream_id = string.match(original, '^(%d+) (%S+) (%S+)$')
  if seen_at and tonumber(seen_at) > window_start then
    return { fraud_type, seen_at, stream_id, 1 }
  end
end

local listed
if backend == 'cuckoo' then
  listed = redis.call('CF.EXISTS', blacklist, ip)
else
  listed = redis.call('SISMEMBER', blacklist, ip)
end

local fraud_type = 'clean'
if listed == 1 then
  fraud_type = 'ip_blacklist'
elseif redis.call('ZCOUNT', window, '(' .. window_start, '+inf') >= threshold then
  fraud_type = 'click_spam'
end
local status = fraud_type == 'clean' and 'clean' or 'fraud'

local stream_id = redis.call('XADD', stream, 'MAXLEN', '~', stream_maxlen, '*',
  'transaction_id', transaction_id, 'device_id', device_id, 'ip', ip,
  'status', status, 'fraud_type', fraud_type, 'ts', now)

-- Every click counts towards its device's window, fraud or not.
redis.call('ZADD', window, now, transaction_id)
redis.call('HSET', verdicts, transaction_id, now .. ' ' .. fraud_type .. ' ' .. stream_id)
-- A device that goes quiet for a whole window leaves nothing behind.
redis.call('PEXPIRE', window, window_ms)
redis.call('PEXPIRE', verdicts, window_ms)

return { fraud_type, now, stream_id, 0 }
