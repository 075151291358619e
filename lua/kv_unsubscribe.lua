-- kv_unsubscribe.lua: remove a subscriber URL from a topic.
--
-- Removing the last URL leaves an empty topic (as dtm does); DELETE
-- /topic/{name} removes the topic itself.
-- KEYS[1] category hash; ARGV[1] topic, ARGV[2] url, ARGV[3] now (text)
-- Returns 'OK', 'NO_TOPIC', 'EMPTY' or 'NO_URL'.
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then
  return 'NO_TOPIC'
end
local rec = cjson.decode(raw)
local subs = cjson.decode(rec.v)
if #subs == 0 then
  return 'EMPTY'
end
local kept, found = {}, false
for _, s in ipairs(subs) do
  if s.url == ARGV[2] then
    found = true
  else
    table.insert(kept, s)
  end
end
if not found then
  return 'NO_URL'
end
if #kept == 0 then
  rec.v = '[]' -- cjson would encode an empty table as {}
else
  rec.v = cjson.encode(kept)
end
rec.version = rec.version + 1
rec.update_time = ARGV[3]
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(rec))
return 'OK'
