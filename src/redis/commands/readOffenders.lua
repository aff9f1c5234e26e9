--[[
  One partition's top offenders over some minutes: its minutes' offenders added up, by device and
  by address, heaviest first. The caller adds the partitions up (an address's clicks can be in any
  of them). All the keys are in the partition's slot; the caller passes the number of keys first.

  KEYS[1..n]     the devices of each minute
  KEYS[n+1..2n]  the addresses of the same minutes
  ARGV[1] n, ARGV[2] the backend ("topk" or "zset", see includes/offenders.lua)
  ARGV[3] how many devices and how many addresses to answer, at most

  Returns { devices, addresses }, each a list of { id, fraud clicks, verdict, clicks, verdict, clicks, ... },
  most fraud clicks first.
]]
--- @include "offenders"

local minutes, backend, top = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])

local function heaviest(first, last)
  local by_id, ids = {}, {}
  for i = first, last do
    local flat = offenders_list(KEYS[i], backend)
    for j = 1, #flat, 2 do
      -- Verdicts have no colon, ids may: the first one ends the verdict.
      local member, clicks = flat[j], tonumber(flat[j + 1])
      local colon = string.find(member, ':', 1, true)
      if colon then
        local verdict, id = string.sub(member, 1, colon - 1), string.sub(member, colon + 1)
        local entry = by_id[id]
        if not entry then
          entry = { id = id, fraud = 0, verdicts = {} }
          by_id[id] = entry
          ids[#ids + 1] = entry
        end
        entry.fraud = entry.fraud + clicks
        entry.verdicts[verdict] = (entry.verdicts[verdict] or 0) + clicks
      end
    end
  end
  table.sort(ids, function(a, b)
    if a.fraud ~= b.fraud then return a.fraud > b.fraud end
    return a.id < b.id
  end)
  local reply = {}
  for i = 1, math.min(top, #ids) do
    local entry = ids[i]
    local row = { entry.id, entry.fraud }
    for verdict, clicks in pairs(entry.verdicts) do
      row[#row + 1] = verdict
      row[#row + 1] = clicks
    end
    reply[i] = row
  end
  return reply
end

return { heaviest(1, minutes), heaviest(minutes + 1, 2 * minutes) }
