#!/bin/sh
# gen_admin.sh - embed the admin UI (admin/*) into C: one byte array per file,
# with its URL path, Content-Type and a strong ETag (cksum of the content).
# Usage: gen_admin.sh admin/index.html admin/app.js ... > admin_files.c
echo '/* generated from the admin/ directory by src/gen_admin.sh - do not edit */'
echo '#include "admin.h"'
echo '#include <stddef.h>'
n=0
for f in "$@"; do
  echo "static const unsigned char file_$n[] = {"
  od -An -v -tx1 "$f" | sed -e 's/^ *//' -e 's/ *$//' -e 's/  */, 0x/g' -e 's/^/    0x/' -e 's/$/,/'
  echo '    0};'
  n=$((n + 1))
done
echo 'const admin_file admin_files[] = {'
n=0
for f in "$@"; do
  name=$(basename "$f")
  case "$name" in
    *.html) type='text/html; charset=utf-8' ;;
    *.js) type='text/javascript; charset=utf-8' ;;
    *.css) type='text/css; charset=utf-8' ;;
    *.svg) type='image/svg+xml' ;;
    *.png) type='image/png' ;;
    *.ico) type='image/x-icon' ;;
    *) type='application/octet-stream' ;;
  esac
  sum=$(cksum < "$f" | awk '{printf "%08x-%x", $1, $2}')
  echo "    {\"/admin/$name\", \"$type\", \"\\\"$sum\\\"\", file_$n, sizeof(file_$n) - 1},"
  n=$((n + 1))
done
echo '    {NULL, NULL, NULL, NULL, 0},'
echo '};'
