#!/bin/sh
# gen_openapi.sh - embed docs/openapi.json (the description of dtmd's HTTP
# API) into C, served at GET /api/openapi.json.
# Usage: gen_openapi.sh docs/openapi.json > openapi_json.c
echo '/* generated from docs/openapi.json by src/gen_openapi.sh - do not edit */'
echo '#include <stddef.h>'
echo 'const char openapi_json[] = {'
od -An -v -tx1 "$1" | sed -e 's/^ *//' -e 's/ *$//' -e 's/  */, 0x/g' -e 's/^/    0x/' -e 's/$/,/'
echo '    0};'
echo 'const size_t openapi_json_len = sizeof(openapi_json) - 1;'
