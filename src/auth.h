/* auth.h - access control: bearer tokens on the incoming API, and the
 * configured allow-list of outgoing branch URLs (url_allow.h).
 *
 * Tokens (Auth.Token, Auth.AdminToken) are compared in constant time and
 * never logged. */
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

/* url_allow_check (url_allow.h) under cfg's BranchAllow. */
int branch_url_check(const dtmd_config *cfg, const char *url, const char *what, char *err,
                     size_t errlen);

#endif
