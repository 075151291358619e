-- kv_subscribe.lua: add a subscriber URL to a topic (created on first use).
--
-- Topics are KV records of category 'topics' in one hash per category:
-- field = topic name, value = {"cat","k","v","version","create_time",
-- "update_time"} where v is the JSON text of [{"url","remark"}, ...].
-- Doing the read-modify-write inside one script makes concurrent
-- subscribers safe without dtm's optimistic-lock retries.
-- KEYS[1] category hash; ARGV[1] topic, ARGV[2] url, ARGV[3] remark, ARGV[4] now (text)
-- Returns 'OK' or 'EXISTS'.
local raw = redis.call('HGET', KEYS[1], ARGV[1])
local rec, subs
if raw then
  rec = cjson.decode(raw)
  subs = cjson.decode(rec.v)
  for _, s in ipairs(subs) do
    if s.url == ARGV[2] then
      return 'EXISTS'
    end
  end
  rec.version = rec.version + 1
else
  rec = {id = 0, cat = 'topics', k = ARGV[1], version = 1, create_time = ARGV[4]}
  subs = {}
end
table.insert(subs, {url = ARGV[2], remark = ARGV[3]})
rec.v = cjson.encode(subs)
rec.update_time = ARGV[4]
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(rec))
return 'OK'
