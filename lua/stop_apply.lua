-- stop_apply.lua: the process holding a transaction stores the stop a
-- request recorded on it (stop_req, cas_update.lua), after cancelling its own
-- queued and running calls of it: so no branch call starts after the final
-- status is stored, whichever process the request reached.
--
-- Only the holder applies it (lease_owner, and the gid in its set, live.lua);
-- the stop's own compare-and-set on the status still applies. stop_done
-- keeps the request's id, so the request, asking again, hears that it
-- happened.
--
-- KEYS[1] transaction hash, KEYS[2] shard due zset, KEYS[3] shard live hash
-- ARGV[1] gid, ARGV[2] the caller's identity
-- Returns {'OK', <new status>, <rollback_reason>} / {'NONE', ''} (no stop recorded)
--       / {'NOT_OURS', ''} / {'CONFLICT', <status>}.
--@include pieces
local h = redis.call('HMGET', KEYS[1], 'status', 'lease_owner', 'stop_req')
if not h[1] or not h[3] then
  return {'NONE', ''}
end
if h[2] ~= ARGV[2] or redis.call('SISMEMBER', KEYS[3] .. ':' .. ARGV[2], ARGV[1]) == 0 then
  return {'NOT_OURS', ''}
end
local req = cjson.decode(get(KEYS[1], 'stop_req'))
del(KEYS[1], 'stop_req')
if req.from ~= '' and not string.find(',' .. req.from .. ',', ',' .. h[1] .. ',', 1, true) then
  return {'CONFLICT', h[1]}
end
for i = 1, #req.fields, 1000 do
  redis.call('HSET', KEYS[1], unpack(req.fields, i, math.min(i + 999, #req.fields)))
end
redis.call('HSET', KEYS[1], 'stop_done', req.id)
redis.call('HDEL', KEYS[1], 'lease_until', 'lease_owner')
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('SREM', KEYS[3] .. ':' .. ARGV[2], ARGV[1])
if req.ttl ~= '0' then
  redis.call('EXPIRE', KEYS[1], req.ttl)
end
-- the compact layout's 'rr' wins over the previous layout's field
local now = redis.call('HMGET', KEYS[1], 'status', 'rollback_reason')
return {'OK', now[1], get(KEYS[1], 'rr') or now[2] or ''}
