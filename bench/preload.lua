-- bench/preload.lua - store finished transactions quickly, for the latency
-- run with many of them stored (bench/run.sh, saga_half). Each one is a
-- copy of a transaction dtmd itself stored (KEYS[1], a finished saga of an
-- earlier run), so the copies have dtmd's layout whatever it is: the same
-- hash fields and values but the gid, the same TTL, and an entry in their
-- shard's index stream (keys.h "ix", Redis' time now). The shard
-- is dtmd's (src/keys.c key_shard: FNV-1a of the gid modulo the shards).
-- Single Redis only (the keys it writes are not declared).
--
-- KEYS[1] the template's hash key
-- ARGV[1] key prefix (Store.RedisPrefix), ARGV[2] shards (Store.Shards),
-- ARGV[3] gid prefix, ARGV[4] first number, ARGV[5] how many
-- Returns the number written.
local tpl = redis.call('HGETALL', KEYS[1])
if #tpl == 0 then return redis.error_reply('no template ' .. KEYS[1]) end
local ttl = redis.call('TTL', KEYS[1])
local prefix, nshards, gpre = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local first, n = tonumber(ARGV[4]), tonumber(ARGV[5])
local gidpos = nil
for i = 1, #tpl, 2 do
  if tpl[i] == 'gid' then gidpos = i + 1 end
end
local band, bxor = bit.band, bit.bxor
local function shard(g)
  local h = 2166136261
  for i = 1, #g do
    h = bxor(h, string.byte(g, i)) % 4294967296
    -- h * 16777619 mod 2^32, as h * 2^24 + h * 403 (exact in doubles)
    h = (band(h, 255) * 16777216 + h * 403) % 4294967296
  end
  return h % nshards
end
for k = first, first + n - 1 do
  local g = gpre .. k
  local s = '{' .. shard(g) .. '}'
  local key = prefix .. s .. ':t:' .. g
  if gidpos then tpl[gidpos] = g end
  redis.call('HSET', key, unpack(tpl))
  if ttl > 0 then redis.call('EXPIRE', key, ttl) end
  redis.call('XADD', prefix .. s .. ':ix', '*', 'g', g)
end
return n
