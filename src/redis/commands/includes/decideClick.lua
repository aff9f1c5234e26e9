--[[
  The decision of one click on its device's keys, shared by checkClicks (a single Redis: every
  lookup and window in the same step) and decideClick-3 (a cluster: given what the lookups on the
  blacklist's and the address's slots found).

  window:   sorted set, member = transaction_id, score = click time in ms
  verdicts: hash, transaction_id -> "<ts>\t<fraud_type>\t<stream id>\t<allowlisted 0|1>\t<reason>\t<shadow>\t<rules version>"
            (reason and shadow JSON, or ''), the same members as window
  stream:   the partition's decision stream
  click:    { ip, device_id, transaction_id, deadline, stream_maxlen }
  rules:    parse_rules(...) (includes/rules.lua)
  now_text, now: the server's time, from server_now() (includes/rules.lua)
  checks:   functions called once, only for a click that is not a retry:
            allowlisted() -> true/false; listed() -> true/false; range() -> CIDR or nil;
            address(now) -> clicks, devices of the address in its windows, this click included

  Rules apply in this order, the allowlist before all: ip_blacklist, ip_range, click_spam,
  ip_flood, device_farm. The first hit of an enforced rule is the verdict; hits of rules in shadow
  mode are recorded beside it.

  Returns { fraud_type, ts, stream id, duplicate (0|1), allowlisted (0|1), reason, shadow, rules version },
  or { "expired", ts } when the script ran after its deadline and changed nothing.
]]
-- Most expired clicks one call forgets (see below).
local SWEEP_LIMIT = 100
-- The velocity rules, in the order they apply; each is given what decide_click counted for it.
local VELOCITY_RULES = { 'click_spam', 'ip_flood', 'device_farm' }

local function decide_click(window, verdicts, stream, click, rules, checks, now_text, now)

  -- A click that reaches Redis after its caller answered 503 (Redis hung or slow, the command
  -- queued meanwhile) must not be decided behind that answer's back: a retry decides it instead.
  if now > click.deadline then
    return { 'expired', now_text }
  end

  -- A click at or before window_start is outside the window: the window is (now - window_ms, now].
  local window_ms = rules.click_spam.window_ms
  local window_start = now - window_ms

  -- Forget clicks that left the window. At most 100 per call keeps every call short even after a
  -- burst; the rest go on later calls or with the key's expiry, and the count below ignores them.
  local expired = redis.call('ZRANGEBYSCORE', window, '-inf', window_start, 'LIMIT', 0, SWEEP_LIMIT)
  if #expired > 0 then
    redis.call('ZREM', window, unpack(expired))
    redis.call('HDEL', verdicts, unpack(expired))
  end

  -- A retry of a click still in the window gets the original verdict and changes nothing. (Where
  -- eviction took the window but not the verdict, the verdict's own time still tells.)
  local original = redis.call('HGET', verdicts, click.transaction_id)
  if original then
    local seen_at, fraud_type, stream_id, allowlisted, reason, shadow, version = string.match(original, '^(%d+)\t(%S+)\t(%S+)\t(%d)\t([^\t]*)\t([^\t]*)\t(%d+)$')
    if not seen_at then
      -- Written before rules had reasons: "<ts> <fraud_type> <stream id>".
      seen_at, fraud_type, stream_id = string.match(original, '^(%d+) (%S+) (%S+)$')
      allowlisted, reason, shadow, version = '0', '', '', '0'
    end
    if seen_at and tonumber(seen_at) > window_start then
      return { fraud_type, seen_at, stream_id, 1, tonumber(allowlisted), reason, shadow, version }
    end
  end

  local hits = {}
  local function hit(rule, observed, limit, window)
    local entry = { rule = rule, observed = observed }
    if limit then
      entry.limit = limit
      entry.window_sec = window / 1000
    end
    hits[#hits + 1] = { mode = rules[rule].mode, entry = entry }
  end

  local allowlisted = checks.allowlisted()
  -- Every click counts towards its address's windows, fraud or not, allowlisted or not.
  local address_clicks, address_devices = checks.address(now)
  local device_clicks = redis.call('ZCOUNT', window, '(' .. window_start, '+inf') + 1
  if not allowlisted then
    if rules.ip_blacklist.mode ~= 'o' and checks.listed() then
      hit('ip_blacklist', click.ip)
    end
    if rules.ip_range.mode ~= 'o' then
      local range = checks.range()
      if range then
        hit('ip_range', range)
      end
    end
    for i = 1, #VELOCITY_RULES do
      local rule = VELOCITY_RULES[i]
      local spec = rules[rule]
      local observed = i == 1 and device_clicks or i == 2 and address_clicks or address_devices
      if spec.mode ~= 'o' and observed > spec.threshold then
        hit(rule, observed, spec.threshold, spec.window_ms)
      end
    end
  end

  local fraud_type, reason, shadow = 'clean', '', {}
  for _, found in ipairs(hits) do
    if found.mode == 'e' and fraud_type == 'clean' then
      fraud_type, reason = found.entry.rule, cjson.encode(found.entry)
    elseif found.mode == 's' then
      shadow[#shadow + 1] = found.entry
    end
  end
  shadow = #shadow > 0 and cjson.encode(shadow) or ''
  local status = fraud_type == 'clean' and 'clean' or 'fraud'

  local fields = { 'transaction_id', click.transaction_id, 'device_id', click.device_id, 'ip', click.ip,
    'status', status, 'fraud_type', fraud_type, 'ts', now_text, 'rules_version', rules.version }
  if reason ~= '' then
    fields[#fields + 1], fields[#fields + 2] = 'reason', reason
  end
  if shadow ~= '' then
    fields[#fields + 1], fields[#fields + 2] = 'shadow', shadow
  end
  if allowlisted then
    fields[#fields + 1], fields[#fields + 2] = 'allowlisted', '1'
  end
  local stream_id = redis.call('XADD', stream, 'MAXLEN', '~', click.stream_maxlen, '*', unpack(fields))

  -- Every click counts towards its device's window, fraud or not.
  redis.call('ZADD', window, now, click.transaction_id)
  redis.call('HSET', verdicts, click.transaction_id,
    table.concat({ now_text, fraud_type, stream_id, allowlisted and '1' or '0', reason, shadow, rules.version }, '\t'))
  -- Whatever one device sends, its window holds only what the rules need (see RULES in domain/rules.ts):
  -- the newest clicks, as many as click_spam's threshold or the recent transactions kept for retries.
  -- The window holds the clicks counted above and this one, unless the sweep left some behind.
  local held = #expired < SWEEP_LIMIT and device_clicks or redis.call('ZCARD', window)
  local excess = held - rules.device_cap
  if excess > 0 then
    local oldest = redis.call('ZRANGE', window, 0, excess - 1)
    redis.call('ZREM', window, unpack(oldest))
    redis.call('HDEL', verdicts, unpack(oldest))
  end
  -- A device that goes quiet for a whole window leaves nothing behind.
  redis.call('PEXPIRE', window, window_ms)
  redis.call('PEXPIRE', verdicts, window_ms)

  return { fraud_type, now_text, stream_id, 0, allowlisted and 1 or 0, reason, shadow, rules.version }
end
