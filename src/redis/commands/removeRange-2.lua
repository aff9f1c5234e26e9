--[[
  Removes an address range from a list (the blacklist's, or the allowlist's).

  KEYS[1] ranges, KEYS[2] prefix lengths in use (see includes/ranges.lua)
  ARGV[1] member, ARGV[2] length field

  Returns 1 if removed, 0 if it was not there.
]]
--- @include "rangeLists"

return remove_range(KEYS[1], KEYS[2], ARGV[1], ARGV[2])
