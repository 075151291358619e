/* auth.c - bearer-token checks (see auth.h). */
#include "auth.h"

#include "url_allow.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- incoming: bearer tokens ------------------------------------------ */

static int path_has_route(const char *path, const char *name) {
    static const char *const prefixes[] = {"/api/dtmsvr/", "/api/dtms/", "/api/"};
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        size_t n = strlen(prefixes[i]);
        if (strncmp(path, prefixes[i], n) == 0) {
            const char *r = path + n;
            size_t k = strlen(name);
            if (name[k - 1] == '/') return strncmp(r, name, k) == 0;
            return strcmp(r, name) == 0;
        }
    }
    return 0;
}

auth_scope auth_route_scope(const char *path, int is_delete) {
    if (!path) return AUTH_API;
    if (strcmp(path, "/api/ping") == 0 || strcmp(path, "/api/dtmsvr/ping") == 0) return AUTH_OPEN;
    if (strcmp(path, "/admin") == 0 || strncmp(path, "/admin/", 7) == 0) return AUTH_ADMIN;
    static const char *const admin_routes[] = {"forceStop", "resetCronTime", "resetNextCronTime",
                                               "subscribe", "unsubscribe"};
    for (size_t i = 0; i < sizeof admin_routes / sizeof admin_routes[0]; i++)
        if (path_has_route(path, admin_routes[i])) return AUTH_ADMIN;
    if (is_delete || path_has_route(path, "topic/")) return AUTH_ADMIN;
    return AUTH_API;
}

int auth_token_equal(const char *given, size_t glen, const char *want) {
    size_t wlen = strlen(want);
    volatile unsigned char diff = (unsigned char)(glen != wlen);
    for (size_t i = 0; i < wlen; i++) {
        unsigned char g = i < glen ? (unsigned char)given[i] : 0;
        diff |= (unsigned char)(g ^ (unsigned char)want[i]);
    }
    return diff == 0;
}

/* The token of "Bearer <token>" (scheme case-insensitive, spaces trimmed). */
static const char *bearer_token(const char *h, size_t *len) {
    if (!h) return NULL;
    while (*h == ' ' || *h == '\t') h++;
    if (strncasecmp(h, "Bearer", 6) != 0 || (h[6] != ' ' && h[6] != '\t')) return NULL;
    h += 6;
    while (*h == ' ' || *h == '\t') h++;
    size_t n = strlen(h);
    while (n > 0 && (h[n - 1] == ' ' || h[n - 1] == '\t')) n--;
    if (n == 0) return NULL;
    *len = n;
    return h;
}

int auth_check(const dtmd_config *cfg, auth_scope scope, const char *authorization,
               const char **why) {
    const char *api = cfg->auth_token && *cfg->auth_token ? cfg->auth_token : NULL;
    const char *admin =
        cfg->auth_admin_token && *cfg->auth_admin_token ? cfg->auth_admin_token : NULL;
    /* Which tokens open this scope; none configured = open. */
    const char *a = NULL, *b = NULL;
    if (scope == AUTH_API && api) {
        a = api;
        b = admin;
    } else if (scope == AUTH_ADMIN) {
        a = admin ? admin : api;
    }
    if (!a) return 0;
    size_t n = 0;
    const char *tok = bearer_token(authorization, &n);
    if (!tok) {
        *why = scope == AUTH_ADMIN && admin
                   ? "unauthorized: this endpoint needs 'Authorization: Bearer <admin token>'"
                   : "unauthorized: send 'Authorization: Bearer <token>'";
        return -1;
    }
    /* Both comparisons always run, so the time does not tell which matched. */
    int ok = auth_token_equal(tok, n, a);
    ok |= b ? auth_token_equal(tok, n, b) : 0;
    if (!ok) {
        *why = scope == AUTH_ADMIN && admin ? "unauthorized: wrong token (this endpoint needs the "
                                              "admin token)"
                                            : "unauthorized: wrong token";
        return -1;
    }
    return 0;
}

/* ---- outgoing: branch URL allow-list ---------------------------------- */

int branch_url_check(const dtmd_config *cfg, const char *url, const char *what, char *err,
                     size_t errlen) {
    if (!cfg) return 0;
    return url_allow_check(cfg->branch_allow, cfg->nbranch_allow, url, what, err, errlen);
}
