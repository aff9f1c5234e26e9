--[[
  Address ranges: a hash of ranges, member -> CIDR text, where a member is the family, the first
  ceil(length / 4) hex digits of the network and the length (`4:cb0071/24` for 203.0.113.0/24), and
  a hash of the prefix lengths in use, `<family>/<length>` -> ranges of that length. An address
  (`4:cb007105`) is looked up once per prefix length in use: the cost is bounded by those lengths
  (at most 33 for IPv4, 129 for IPv6), however many ranges there are.
]]
local function range_of(ranges, lengths, address_hex)
  local family = string.sub(address_hex, 1, 1)
  local digits = string.sub(address_hex, 3)
  for _, field in ipairs(redis.call('HKEYS', lengths)) do
    local field_family, bits = string.match(field, '^(%d)/(%d+)$')
    if field_family == family then
      bits = tonumber(bits)
      local count = math.ceil(bits / 4)
      local prefix = string.sub(digits, 1, count)
      local partial = bits % 4
      if partial ~= 0 then
        -- Only the top `partial` bits of the last digit belong to the network.
        local last = tonumber(string.sub(prefix, count, count), 16)
        last = last - (last % 2 ^ (4 - partial))
        prefix = string.sub(prefix, 1, count - 1) .. string.format('%x', last)
      end
      local cidr = redis.call('HGET', ranges, family .. ':' .. prefix .. '/' .. bits)
      if cidr then
        return cidr
      end
    end
  end
  return nil
end
