--[[
  On a Redis Cluster, a click in its address's windows, for the per-address rules (ip_flood,
  device_farm): their state lives in the address's slot, so this is its own step before the
  device's, which is given the counts. A retry adds nothing (the member is the device and the
  transaction), and nothing is written past the deadline.

  KEYS[1] the address's clicks, KEYS[2] its devices (see includes/addressWindows.lua)

  ARGV[1] device_id, ARGV[2] transaction_id
  ARGV[3..15] the rule set (see includes/rules.lua)
  ARGV[16] deadline, in ms on this server's clock

  Returns { clicks, devices } in the windows, this click included, or { "expired" }.
]]
--- @include "rules"
--- @include "addressWindows"

local device_id, transaction_id = ARGV[1], ARGV[2]
local rules = parse_rules(ARGV, 3)
local _, now = server_now()
if now > tonumber(ARGV[16]) then
  return { 'expired' }
end
local clicks, devices = record_address(KEYS[1], KEYS[2], #device_id .. ':' .. device_id .. transaction_id, device_id, now, rules)
return { clicks, devices }
