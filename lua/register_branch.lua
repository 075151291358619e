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
-- ARGV[9..] n*m (suffix, value) pairs: '' the definition, '.s' the state
-- ('<status> <ct> <ut> <ft> <rt>', ms).
-- The hash's layout (src/trans_hash.h) decides how they are stored: the
-- previous layout (a 'gid' field) as 'b<index><suffix>' whole; the compact one
-- with the definition in pieces ('b<index>') and the state appended to 'bs',
-- the content signature as its SHA-1 (a payload may be longer than a
-- listpack value).
-- Returns {'OK', ''}, {'SAME', ''} (identical re-registration),
-- {'DUPLICATE', ''}, {'TOO_MANY', <branches stored>},
-- {'CONFLICT', <status>, <type>}, {'WRONG_TYPE', <status>, <type>} or {'NOT_FOUND', ''}.
--@include pieces
local st = redis.call('HMGET', KEYS[1], 'status', 'trans_type', 'nb', 'gid')
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
local old = st[4] ~= false and st[4] ~= nil
local want = ARGV[4]
if not old then
  want = redis.sha1hex(ARGV[4])
end
local sig = redis.call('HGET', KEYS[1], ARGV[3])
if sig then
  if sig == want then
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
if old then
  for j = 0, n - 1 do
    for _ = 1, m do
      redis.call('HSET', KEYS[1], 'b' .. (nb + j) .. ARGV[pos], ARGV[pos + 1])
      pos = pos + 2
    end
  end
  redis.call('HSET', KEYS[1], 'nb', nb + n, ARGV[3], want, 'update_time', ARGV[5])
  return {'OK', ''}
end
-- Branch states (src/trans_hash.h): in groups of 8 branches, 'bs', 'bs1',
-- 'bs2', ..., each '<p|s|f><ct>,<ut>,<ft>,<rt>' per branch (unset times at the
-- end left out with their commas), space-separated,
-- ms after the time the transaction was stored ('ct' - 'cs'); or, as the
-- compact layout first stored
-- them, all in 'bs' led by their base ('<base> <entry> <entry> ...').
local bs = get(KEYS[1], 'bs')
local whole = bs ~= nil and string.match(bs, '^%-?%d') ~= nil
local base
if whole then
  base = tonumber(string.match(bs, '^%-?%d+'))
else
  -- the time it was stored: ct less what submits moved it (cs, claim.lua)
  local c = redis.call('HMGET', KEYS[1], 'ct', 'cs')
  base = (tonumber(c[1] or '0') or 0) - (tonumber(c[2] or '0') or 0)
end
local function rel(x)
  if x == '0' then
    return ''
  end
  return string.format('%.0f', tonumber(x) - base)
end
local groups, dirty = {}, {}
for j = 0, n - 1 do
  for _ = 1, m do
    local suffix, v = ARGV[pos], ARGV[pos + 1]
    if suffix == '' then
      put(KEYS[1], 'b' .. (nb + j), v)
    else
      local s, c, u, f, r = string.match(v, '^(%a)%a* (%d+) (%d+) (%d+) (%d+)$')
      local e = string.gsub(s .. rel(c) .. ',' .. rel(u) .. ',' .. rel(f) .. ',' .. rel(r), ',+$', '')
      if whole then
        bs = bs .. ' ' .. e
      else
        local g = math.floor((nb + j) / 8)
        local name = g == 0 and 'bs' or 'bs' .. g
        if (nb + j) % 8 == 0 then
          groups[name] = e
        else
          groups[name] = (groups[name] or get(KEYS[1], name) or '') .. ' ' .. e
        end
        if not dirty[name] then
          dirty[name] = true
          dirty[#dirty + 1] = name
        end
      end
    end
    pos = pos + 2
  end
end
if whole then
  put(KEYS[1], 'bs', bs)
end
for _, name in ipairs(dirty) do
  put(KEYS[1], name, groups[name])
end
redis.call('HSET', KEYS[1], 'nb', nb + n, ARGV[3], want, 'ut', ARGV[5])
return {'OK', ''}
