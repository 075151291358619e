/* lua_scripts.h - the Lua scripts of lua/, compiled into the binary.
 *
 * Each lua/NAME.lua file is the single source of truth; build/lua_scripts.c is generated
 * from it by src/gen_lua.sh. The table ends with a {NULL, NULL, 0} entry. */
#ifndef DTMD_LUA_SCRIPTS_H
#define DTMD_LUA_SCRIPTS_H

#include <stddef.h>

typedef struct lua_script {
    const char *name; /* file name without .lua */
    const char *text;
    size_t len;
} lua_script;

extern const lua_script lua_scripts[];

#endif
