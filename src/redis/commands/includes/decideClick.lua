--[[
  The decision of one click on its device's keys, shared by checkClick-4 (which looks the address
  up on the blacklist in the same step, on a single Redis) and checkClickListed-3 (which is given
  the lookup's answer, on a cluster, where the blacklist lives in another slot).

  window:   sorted set, member = transaction_id, score = click time in ms
  verdicts: hash, transaction_id -> "<ts> <fraud_type> <stream id>", same members as window
  stream:   the partition's decision stream
  is_listed: called once, only for a click that is not a retry: 1 when the address is blacklisted

  Returns { fraud_type, ts (ms, string), stream id, duplicate (0 or 1) },
  or { "expired", ts } when the script ran after its deadline and changed nothing.
]]
local function decide_click(window, verdicts, stream, ip, device_id, transaction_id, threshold, window_ms, stream_maxlen, deadline, is_listed)
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

  local fraud_type = 'clean'
  if is_listed() == 1 then
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
end
