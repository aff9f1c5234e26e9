--[[
  Moves a decision that keeps failing out of the group's way: appends it, with the reason, to the
  dead-letter stream and acknowledges it, in one step, unless another worker already counted or
  moved it.

  KEYS[1] decision stream
  KEYS[2] dead-letter stream

  ARGV[1] consumer group
  ARGV[2] entry id
  ARGV[3] reason
  ARGV[4] deliveries so far
  ARGV[5] approximate cap of the dead-letter stream
  ARGV[6..] the entry's fields, as read

  Returns 1 if moved, 0 if the entry was no longer pending.
]]
local stream, dead = KEYS[1], KEYS[2]
local group, id = ARGV[1], ARGV[2]

if #redis.call('XPENDING', stream, group, id, id, 1) == 0 then
  return 0
end

redis.call('XADD', dead, 'MAXLEN', '~', ARGV[5], '*',
  'entry_id', id, 'reason', ARGV[3], 'deliveries', ARGV[4], unpack(ARGV, 6))
redis.call('XACK', stream, group, id)
return 1
