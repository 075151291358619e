-- lib/pieces.lua: reading and writing a value stored in pieces, as
-- src/trans_hash.c stores texts so every hash value stays within 64 bytes
-- (a listpack); put where a script says "--@include pieces" (src/gen_lua.sh).
-- A value stored in pieces (src/hash_pieces.h): '<name>' = '<n>:' and the
-- first bytes, then '<name>.1' .. '<name>.<n-1>'; a value of one piece not
-- starting with '<digits>:' is stored as it is; nil if absent.
local function get(hash, name)
  local v = redis.call('HGET', hash, name)
  if not v then
    return nil
  end
  local n, rest = string.match(v, '^(%d+):(.*)$')
  if not n then
    return v -- one piece, stored without its count
  end
  local parts = {rest}
  for k = 1, tonumber(n) - 1 do
    parts[#parts + 1] = redis.call('HGET', hash, name .. '.' .. k) or ''
  end
  return table.concat(parts)
end
-- Store v as name in pieces of at most 64 bytes (the count as
-- src/hash_pieces.c computes it), or whole past 16 pieces.
local function put(hash, name, v)
  if #v <= 64 and not string.find(v, '^%d+:') then -- one piece: no count needed
    redis.call('HSET', hash, name, v)
    return
  end
  local n = 1
  while true do
    local cap0 = 64 - #tostring(n) - 1
    local need = 1
    if #v > cap0 then
      need = 1 + math.ceil((#v - cap0) / 64)
    end
    if need <= n then
      n = need
      break
    end
    n = need
  end
  if n > 16 then -- stored whole, as src/hash_pieces.h's HASH_MAX_PIECES says
    redis.call('HSET', hash, name, '1:' .. v)
    return
  end
  local cap0 = 64 - #tostring(n) - 1
  redis.call('HSET', hash, name, n .. ':' .. string.sub(v, 1, cap0))
  local at = cap0 + 1
  for k = 1, n - 1 do
    redis.call('HSET', hash, name .. '.' .. k, string.sub(v, at, at + 63))
    at = at + 64
  end
end
-- Delete name and its pieces.
local function del(hash, name)
  local v = redis.call('HGET', hash, name)
  if not v then
    return
  end
  local n = tonumber(string.match(v, '^(%d+):') or '1')
  for k = 1, n - 1 do
    redis.call('HDEL', hash, name .. '.' .. k)
  end
  redis.call('HDEL', hash, name)
end
