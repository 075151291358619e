-- cas_update.lua: one state transition of a stored transaction.
--
-- Compare-and-set on the stored type and global status, then write fields and
-- keep the shard's due index in step, all in one atomic script, so that a
-- crash between any two Redis calls can never leave a transaction
-- half-changed or unscheduled, and no request changes a transaction of a type
-- or in a status its rule (src/transition.c) does not allow.
--
-- A driving process's write is fenced (docs/failover.md): it applies only
-- while the hold is still the one the process took (lease_owner, lease_until
-- and the owner's set, live.lua); otherwise another process took the
-- transaction over and the writer must stop (LOST). A stop asked for by a
-- request meanwhile (stop_req, below) comes first: the writer is told STOP,
-- cancels its calls and stores the stop itself (stop_apply.lua).
--
-- A request that ends the transaction (forceStop, msg abort, workflow
-- submit: ARGV[8] set) must not store the final status while another live
-- process holds the transaction: that one may be about to send a queued
-- call. Instead the stop is recorded (stop_req) and the gid published on
-- ARGV[8]; the holder stores it (stop_apply.lua) and marks it done with the
-- request's id (stop_done), and the request, asking again, hears OK. If the
-- holder's liveness lapses first, the request writes it itself
-- (docs/requests.md "No branch call after the end").
--
-- KEYS[1] transaction hash, KEYS[2] shard due zset, KEYS[3] shard live hash
-- ARGV[1] gid
-- ARGV[2] expected trans_type: '' = any
-- ARGV[3] expected statuses: '' = any, else a comma list ('submitted,aborting')
-- ARGV[4] due index: '' = leave, '-' = remove (finished), else the new due time (ms)
-- ARGV[5] TTL in seconds for the hash, '0' = leave
-- ARGV[6] the writer's identity, '' = not a holder (a request): not fenced
-- ARGV[7] a holder: its hold (its lease_until); an ending request: its id,
-- '<identity>:<n>'
-- ARGV[8] an ending request: the stop channel, else ''
-- ARGV[9] the branch count the writer knows ('' = not checked): a status change
-- out of 'prepared' must not miss a branch registered meanwhile
-- (register_branch.lua), whose cancel or rollback would then never be called
-- ARGV[10..] field/value pairs to write
-- Returns {'OK', <status before>, <type>} / {'CONFLICT', <status>, <type>}
--       / {'LOST', <status>, <type>} / {'STOP', <status>, <type>}
--       / {'HELD', <status>, <type>}
--       / {'WRONG_TYPE', <status>, <type>} / {'NOT_FOUND', ''}.
--@include pieces
local cur = redis.call('HMGET', KEYS[1], 'status', 'trans_type')
if not cur[1] then
  return {'NOT_FOUND', ''}
end
local hold = redis.call('HMGET', KEYS[1], 'lease_until', 'lease_owner', 'stop_req', 'stop_done')
if ARGV[6] ~= '' then
  if hold[2] ~= ARGV[6] or hold[1] ~= ARGV[7] or
      redis.call('SISMEMBER', KEYS[3] .. ':' .. ARGV[6], ARGV[1]) == 0 then
    return {'LOST', cur[1], cur[2] or ''}
  end
  if hold[3] then
    return {'STOP', cur[1], cur[2] or ''}
  end
elseif ARGV[8] ~= '' and hold[4] == ARGV[7] then
  return {'OK', cur[1], cur[2] or ''} -- the holder stored this request's stop
end
if ARGV[2] ~= '' and cur[2] ~= ARGV[2] then
  return {'WRONG_TYPE', cur[1], cur[2] or ''}
end
if ARGV[3] ~= '' and not string.find(',' .. ARGV[3] .. ',', ',' .. cur[1] .. ',', 1, true) then
  return {'CONFLICT', cur[1], cur[2] or ''}
end
if ARGV[9] ~= '' and (tonumber(redis.call('HGET', KEYS[1], 'nb') or '0') or 0) ~= tonumber(ARGV[9]) then
  return {'CONFLICT', cur[1], cur[2] or ''}
end
if ARGV[8] ~= '' and hold[2] and hold[2] ~= '' and
    hold[2] ~= string.match(ARGV[7], '^[^:]*') then
  -- held by another process: does the hold still count (claim.lua)?
  local t = redis.call('TIME')
  local now = t[1] * 1000 + math.floor(t[2] / 1000)
  local exp = tonumber(redis.call('HGET', KEYS[3], hold[2]) or '0') or 0
  if (tonumber(hold[1] or '0') or 0) > now and exp > now and
      redis.call('SISMEMBER', KEYS[3] .. ':' .. hold[2], ARGV[1]) == 1 then
    local fields = {}
    for i = 10, #ARGV do
      fields[#fields + 1] = ARGV[i]
    end
    -- in pieces, as every value: one longer than 64 bytes would turn the
    -- hash into a hash table for the rest of its life
    put(KEYS[1], 'stop_req', cjson.encode({id = ARGV[7], from = ARGV[3],
      ttl = ARGV[5], fields = fields}))
    redis.call('PUBLISH', ARGV[8], ARGV[1])
    return {'HELD', cur[1], cur[2] or ''}
  end
end
-- Lua's unpack takes at most about 8,000 values: write in bounded chunks.
for i = 10, #ARGV, 1000 do
  redis.call('HSET', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
if ARGV[4] == '-' then
  redis.call('ZREM', KEYS[2], ARGV[1])
  if hold[2] and hold[2] ~= '' then -- finished: out of its holder's set
    redis.call('SREM', KEYS[3] .. ':' .. hold[2], ARGV[1])
  end
  if hold[1] then -- a finished transaction is held by nobody: no need to keep its hold
    redis.call('HDEL', KEYS[1], 'lease_until', 'lease_owner')
  end
  if hold[3] then
    del(KEYS[1], 'stop_req')
  end
elseif ARGV[4] ~= '' then
  redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
end
if ARGV[5] ~= '0' then
  redis.call('EXPIRE', KEYS[1], ARGV[5])
end
return {'OK', cur[1], cur[2] or ''}
