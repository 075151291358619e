#!/bin/sh
# gen_lua.sh - embed lua/*.lua into C: one string per script, named by file.
# Usage: gen_lua.sh lua/a.lua lua/b.lua ... > lua_scripts.c
echo '/* generated from the lua/ directory by src/gen_lua.sh - do not edit */'
echo '#include "lua_scripts.h"'
echo '#include <stddef.h>'
n=0
for f in "$@"; do
  name=$(basename "$f" .lua)
  echo "static const char script_$n[] ="
  sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/    "/' -e 's/$/\\n"/' "$f"
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
