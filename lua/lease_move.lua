-- lease_move.lua: the driving process extends or gives back its hold on a
-- transaction (claim.lua says what the hold is for).
--
-- While a branch call runs, the hold and the due time must stay ahead of it
-- (engine.c hold_lease); a pass that ends without finishing the transaction
-- gives the hold back, so a repeated submit may drive it at once; SIGTERM
-- gives back both hold and due time (cron.c). The hold is only changed while
-- it is still the caller's: a process whose hold ran out must not take it
-- from the one that holds it now.
--
-- KEYS[1] transaction hash, KEYS[2] shard due zset
-- ARGV[1] gid
-- ARGV[2] due time: '' = leave, 'GT:<ms>' = raise to, 'XX:<ms>' = set (if listed)
-- ARGV[3] the caller's hold as it knows it ('' = whatever is stored)
-- ARGV[4] new hold end (ms, '0' = nobody)
-- Returns 1 if the hold changed, else 0.
local mode, due = string.match(ARGV[2], '^(%u%u):(%d+)$')
if mode == 'GT' then
  redis.call('ZADD', KEYS[2], 'XX', 'GT', due, ARGV[1])
elseif mode == 'XX' then
  redis.call('ZADD', KEYS[2], 'XX', due, ARGV[1])
end
local held = redis.call('HGET', KEYS[1], 'lease_until')
if not held and redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
if ARGV[3] ~= '' and (tonumber(held or '0') or 0) ~= tonumber(ARGV[3]) then
  return 0
end
redis.call('HSET', KEYS[1], 'lease_until', ARGV[4])
return 1
