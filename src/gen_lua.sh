#!/bin/sh
# gen_lua.sh - embed lua/*.lua into C: one string per script, named by file.
# A line "--@include NAME" is replaced by lua/lib/NAME.lua: helpers several
# scripts share are written once (Redis runs each script on its own).
# Usage: gen_lua.sh lua/a.lua lua/b.lua ... > lua_scripts.c
echo '/* generated from the lua/ directory by src/gen_lua.sh - do not edit */'
echo '#include "lua_scripts.h"'
echo '#include <stddef.h>'
n=0
for f in "$@"; do
  name=$(basename "$f" .lua)
  echo "static const char script_$n[] ="
  lib=$(dirname "$f")/lib
  for inc in $(sed -n 's/^--@include //p' "$f"); do
    [ -f "$lib/$inc.lua" ] || { echo "gen_lua.sh: $f includes $lib/$inc.lua, which does not exist" >&2; exit 1; }
  done
  while IFS= read -r line || [ -n "$line" ]; do
    case "$line" in
      --@include\ *) cat "$lib/${line#--@include }.lua" ;;
      *) printf '%s\n' "$line" ;;
    esac
  done <"$f" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/    "/' -e 's/$/\\n"/'
  echo '    ;'
  n=$((n + 1))
done
echo 'const lua_script lua_scripts[] = {'
n=0
for f in "$@"; do
  name=$(basename "$f" .lua)
  echo "    {\"$name\", script_$n, sizeof(script_$n) - 1},"
  n=$((n + 1))
done
echo '    {NULL, NULL, 0},'
echo '};'
