-- register_branch.lua: append branches to a prepared transaction (TCC, XA,
-- workflow progress), atomically with the status check and duplicate check.
--
-- KEYS[1] transaction hash
-- ARGV[1] required status ('prepared')
-- ARGV[2] identity field ('k:<length of branch_id>:<branch_id>:<op>', unambiguous
-- whatever the id holds), ARGV[3] content signature
-- ARGV[4] now (ms), ARGV[5] number of branches n, ARGV[6] fields per branch m
-- ARGV[7..] n*m (suffix, value) pairs, written as 'b<index><suffix>'
-- Returns {'OK', ''}, {'SAME', ''} (identical re-registration),
-- {'DUPLICATE', ''}, {'CONFLICT', <status>} or {'NOT_FOUND', ''}.
local cur = redis.call('HGET', KEYS[1], 'status')
if not cur then
  return {'NOT_FOUND', ''}
end
if cur ~= ARGV[1] then
  return {'CONFLICT', cur}
end
local sig = redis.call('HGET', KEYS[1], ARGV[2])
if sig then
  if sig == ARGV[3] then
    return {'SAME', ''}
  end
  return {'DUPLICATE', ''}
end
local nb = tonumber(redis.call('HGET', KEYS[1], 'nb') or '0')
local n, m = tonumber(ARGV[5]), tonumber(ARGV[6])
local pos = 7
for j = 0, n - 1 do
  for _ = 1, m do
    redis.call('HSET', KEYS[1], 'b' .. (nb + j) .. ARGV[pos], ARGV[pos + 1])
    pos = pos + 2
  end
end
redis.call('HSET', KEYS[1], 'nb', nb + n, ARGV[2], ARGV[3], 'update_time', ARGV[4])
return {'OK', ''}
