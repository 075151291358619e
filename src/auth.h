/* auth.h - access control: bearer tokens on the incoming API and the
 * allow-list of outgoing branch URLs (defence against SSRF through dtmd).
 *
 * Tokens (Auth.Token, Auth.AdminToken) are compared in constant time and
 * never logged. The allow-list (BranchAllow) holds URL prefixes
 * ("https://svc.internal:8443/api/") or host[:port] entries ("svc", "svc:80");
 * a branch URL is parsed with libcurl's URL parser (the same parser that later
 * makes the call), so "http://good@evil/" or "http://good.evil/" cannot pass
 * as "good": the host must be equal, the port equal (scheme default when
 * omitted), and the path start with the entry's path on a '/' boundary. */
#ifndef DTMD_AUTH_H
#define DTMD_AUTH_H

#include "config.h"

#include <stddef.h>

typedef enum { AUTH_OPEN = 0, AUTH_API, AUTH_ADMIN } auth_scope;

/* Which token a request needs. path is the request path, is_delete whether
 * the method is DELETE. /api/ping is open; management routes (forceStop,
 * resetCronTime, resetNextCronTime, subscribe, unsubscribe, DELETE topic,
 * /admin/...) are AUTH_ADMIN; the rest of /api/ is AUTH_API. */
auth_scope auth_route_scope(const char *path, int is_delete);

/* 0 when the Authorization header value (may be NULL) satisfies scope under
 * cfg; else -1 with a client-facing reason in *why (static string).
 * Rules: AUTH_API needs Auth.Token or Auth.AdminToken when Auth.Token is set;
 * AUTH_ADMIN needs Auth.AdminToken when set, else Auth.Token when set. */
int auth_check(const dtmd_config *cfg, auth_scope scope, const char *authorization,
               const char **why);

/* Constant-time (in the length of want) equality of given[0..glen) and want. */
int auth_token_equal(const char *given, size_t glen, const char *want);

/* Is entry a valid BranchAllow entry? 0 ok, -1 with a message in err. */
int branch_allow_entry_check(const char *entry, char *err, size_t errlen);

/* 0 when url may be called under cfg's BranchAllow ("" needs no call and
 * always passes; an empty list allows every URL); else -1 with a message
 * naming the URL in err. what names the field ("steps[0].action"). */
int branch_url_check(const dtmd_config *cfg, const char *url, const char *what, char *err,
                     size_t errlen);

#endif
