--[[
  Decides clicks in order and records each, on a single Redis: for each, every rule's lookup and
  window in the same step, so concurrent clicks of one device or one address are counted exactly
  (no read-then-write race between API instances), and a later click of a batch sees the earlier.
  The API sends the clicks of one turn of its event loop in one call: what a call costs apart from
  its clicks (the arguments that every click shares, the script's start) is paid once for them all.

  The caller passes the number of keys first: 7 + 5 per click.
  KEYS[1]  IP blacklist: a cuckoo filter (RedisBloom) or a set, per ARGV[1]
  KEYS[2]  blacklisted ranges, KEYS[3] their prefix lengths (see includes/ranges.lua)
  KEYS[4]  allowlisted addresses (hash), KEYS[5] allowlisted ranges, KEYS[6] their prefix lengths
  KEYS[7]  allowlisted devices (hash)
  then per click, 5 keys: device window, device verdicts (see includes/decideClick.lua), the
           partition's decision stream, the address's clicks, the address's devices (see
           includes/addressWindows.lua)

  ARGV[1]     blacklist backend: "cuckoo" or "set"
  ARGV[2..14] the rule set (see includes/rules.lua)
  ARGV[15]    approximate stream cap (XADD MAXLEN ~)
  ARGV[16]    deadline, in ms on this server's clock: the callers have given up by then
  then per click, 4 arguments: canonical ip, its hex form (`4:cb007105`), device_id, transaction_id

  Returns one reply per click, in order: what decide_click returns, or { "error", message } for a
  click whose step Redis refused (a key of the wrong type), which does not stop the others.
]]
--- @include "rules"
--- @include "ranges"
--- @include "allowlist"
--- @include "addressWindows"
--- @include "decideClick"

local backend = ARGV[1]
local rules = parse_rules(ARGV, 2)
local stream_maxlen, deadline = ARGV[15], tonumber(ARGV[16])
local allowlist = allowlist_in_use(KEYS[4], KEYS[7], KEYS[6])
-- One instant for the whole call, as for a single click: the call is one atomic step.
local now_text, now = server_now()

local replies = {}
for i = 1, (#KEYS - 7) / 5 do
  local k, a = 7 + (i - 1) * 5, 16 + (i - 1) * 4
  local ip, ip_hex, device_id, transaction_id = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]
  local click = { ip = ip, device_id = device_id, transaction_id = transaction_id, stream_maxlen = stream_maxlen, deadline = deadline }
  local checks = {
    allowlisted = function()
      return allowlist and allowlisted(KEYS[4], KEYS[5], KEYS[6], KEYS[7], ip, ip_hex, device_id)
    end,
    listed = function()
      if backend == 'cuckoo' then
        return redis.call('CF.EXISTS', KEYS[1], ip) == 1
      end
      return redis.call('SISMEMBER', KEYS[1], ip) == 1
    end,
    range = function()
      return range_of(KEYS[2], KEYS[3], ip_hex)
    end,
    address = function(at)
      -- The device and transaction, length-prefixed so that no two pairs read the same.
      return record_address(KEYS[k + 4], KEYS[k + 5], #device_id .. ':' .. device_id .. transaction_id, device_id, at, rules)
    end,
  }
  local ok, reply = pcall(decide_click, KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], click, rules, checks, now_text, now)
  if ok then
    replies[i] = reply
  else
    -- redis.call raises a table { err = ... }; a fault of the script itself, a string.
    replies[i] = { 'error', type(reply) == 'table' and reply.err or tostring(reply) }
  end
end
return replies
