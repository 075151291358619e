-- lib/ix.lua: reading the shards' index streams (keys.h "ix"), shared by
-- all_page, index_trim and index_migrate; put where a script says
-- "--@include ix" (src/gen_lua.sh). An entry is {id, {'g', gid}}, its id
-- '<ms>-<seq>'.
-- Byte order of two gids, as C's strcmp and the zsets order them (Lua's <
-- follows the locale).
local function before(a, b)
  local m = math.min(#a, #b)
  for i = 1, m do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then
      return x < y
    end
  end
  return #a < #b
end
-- The ms of an entry id, as a string.
local function id_ms(id)
  return string.sub(id, 1, (string.find(id, '-', 1, true) or (#id + 1)) - 1)
end
-- The gid of an entry, nil if it has none (not written by dtmd).
local function entry_gid(e)
  local f = e[2]
  for i = 1, #f - 1, 2 do
    if f[i] == 'g' then
      return f[i + 1]
    end
  end
  return nil
end
