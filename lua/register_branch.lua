-- register_branch.lua: append branches to a prepared transaction (TCC, XA,
-- workflow progress), atomically with the status check and duplicate check.
--
-- The stored type must be the request's and the status one its rule allows
-- (src/transition.c), checked here, atomically with the write; the branch
-- count stays within Limits.MaxBranches.
--
-- KEYS[1] transaction hash
-- ARGV[1] required trans_type, ARGV[2] allowed statuses (comma list)
-- ARGV[3] identity field ('k:<length of branch_id>:<branch_id>:<op>', unambiguous
-- whatever the id holds), ARGV[4] content signature
-- ARGV[5] now (ms), ARGV[6] number of branches n, ARGV[7] fields per branch m
-- ARGV[8] most branches the transaction may have (Limits.MaxBranches)
-- ARGV[9..] n*m (suffix, value) pairs, written as 'b<index><suffix>'
-- Returns {'OK', ''}, {'SAME', ''} (identical re-registration),
-- {'DUPLICATE', ''}, {'TOO_MANY', <branches stored>},
-- {'CONFLICT', <status>, <type>}, {'WRONG_TYPE', <status>, <type>} or {'NOT_FOUND', ''}.
local st = redis.call('HMGET', KEYS[1], 'status', 'trans_type', 'nb')
local cur = st[1]
if not cur then
  return {'NOT_FOUND', ''}
end
if st[2] ~= ARGV[1] then
  return {'WRONG_TYPE', cur, st[2] or ''}
end
if not string.find(',' .. ARGV[2] .. ',', ',' .. cur .. ',', 1, true) then
  return {'CONFLICT', cur, st[2]}
end
local sig = redis.call('HGET', KEYS[1], ARGV[3])
if sig then
  if sig == ARGV[4] then
    return {'SAME', ''}
  end
  return {'DUPLICATE', ''}
end
local nb = tonumber(st[3] or '0')
local n, m = tonumber(ARGV[6]), tonumber(ARGV[7])
if nb + n > tonumber(ARGV[8]) then
  return {'TOO_MANY', tostring(nb)}
end
local pos = 9
for j = 0, n - 1 do
  for _ = 1, m do
    redis.call('HSET', KEYS[1], 'b' .. (nb + j) .. ARGV[pos], ARGV[pos + 1])
    pos = pos + 2
  end
end
redis.call('HSET', KEYS[1], 'nb', nb + n, ARGV[3], ARGV[4], 'update_time', ARGV[5])
return {'OK', ''}
