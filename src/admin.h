/* admin.h - the admin web UI at /admin/, served from memory.
 *
 * The files of admin/ (HTML, JS, CSS) are compiled into the binary by
 * src/gen_admin.sh, so dtmd never reads the source tree at run time and the
 * UI works offline (no CDN). The UI itself only calls the public API under
 * /api/dtmsvr/ (all, query, forceStop, resetNextCronTime), so whatever
 * protects the API (the bearer token) protects the UI's actions too; the
 * static files carry no data. */
#ifndef DTMD_ADMIN_H
#define DTMD_ADMIN_H

#include <stddef.h>

struct evhttp_request;

typedef struct admin_file {
    const char *path;         /* "/admin/app.js"; the table ends with a NULL path */
    const char *content_type; /* full Content-Type header value */
    const char *etag;         /* strong ETag, quoted */
    const unsigned char *data;
    size_t len;
} admin_file;

extern const admin_file admin_files[]; /* generated: build/admin_files.c */

/* 1 if path is the admin UI's ("/admin" or under "/admin/"), or "/" (which
 * redirects to it). */
int admin_path(const char *path);

/* The embedded file for a request path ("/admin/" is index.html), or NULL. */
const admin_file *admin_find(const char *path);

/* Answer a request for an admin path: GET/HEAD of a known file 200 (or 304
 * on a matching If-None-Match), "/admin" 301 to "/admin/", other paths 404,
 * other methods 405. */
void admin_serve(struct evhttp_request *req, const char *path);

#endif
