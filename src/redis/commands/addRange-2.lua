--[[
  Adds an address range to a list (the blacklist's, or the allowlist's).

  KEYS[1] ranges: hash, member -> CIDR; KEYS[2] prefix lengths in use (see includes/ranges.lua)
  ARGV[1] member (`4:cb0071/24`), ARGV[2] CIDR (`203.0.113.0/24`), ARGV[3] length field (`4/24`)

  Returns 1 if added, 0 if it was there.
]]
--- @include "rangeLists"

return add_range(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3])
