/* url_allow.c - the outgoing branch URL allow-list (see url_allow.h). */
#include "url_allow.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct url_parts {
    char *scheme, *host, *port, *path; /* curl-allocated */
    char *dpath; /* the path percent-decoded, "." segments dropped (malloc'd) */
    int dotdot;  /* the decoded path has a ".." segment */
} url_parts;

static void parts_free(url_parts *p) {
    curl_free(p->scheme);
    curl_free(p->host);
    curl_free(p->port);
    curl_free(p->path);
    free(p->dpath);
    memset(p, 0, sizeof *p);
}

/* A server may decode %2e%2e or %2f before resolving dot segments, so the
 * path is also checked as it would look decoded: '/' and '\' separate
 * segments (some servers take either), a segment "." is dropped and ".."
 * (also "..;x", as servlet containers read it) is remembered in dotdot. */
static void decoded_path(const char *dec, url_parts *p) {
    size_t n = strlen(dec);
    char *out = malloc(n + 1);
    if (!out) abort();
    size_t k = 0;
    const char *seg = dec;
    for (;;) {
        size_t len = strcspn(seg, "/\\");
        size_t core = strcspn(seg, "/\\;");
        if (core > len) core = len;
        if (core == 2 && seg[0] == '.' && seg[1] == '.') p->dotdot = 1;
        int drop = len == 1 && seg[0] == '.';
        if (!drop) {
            memcpy(out + k, seg, len);
            k += len;
        }
        if (!seg[len]) break;
        /* the separator after a dropped "." would double the previous one */
        if (!drop || k == 0 || out[k - 1] != '/') out[k++] = '/';
        seg += len + 1;
    }
    out[k] = '\0';
    p->dpath = out;
}

/* Parse an absolute http(s) URL. 0 ok, -1 not one. */
static int parse_url(const char *url, url_parts *p) {
    memset(p, 0, sizeof *p);
    CURLU *h = curl_url();
    if (!h) return -1;
    int rc = -1;
    if (curl_url_set(h, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(h, CURLUPART_SCHEME, &p->scheme, 0) == CURLUE_OK &&
        curl_url_get(h, CURLUPART_HOST, &p->host, 0) == CURLUE_OK &&
        curl_url_get(h, CURLUPART_PORT, &p->port, CURLU_DEFAULT_PORT) == CURLUE_OK &&
        curl_url_get(h, CURLUPART_PATH, &p->path, 0) == CURLUE_OK &&
        (strcasecmp(p->scheme, "http") == 0 || strcasecmp(p->scheme, "https") == 0) && *p->host) {
        char *dec = NULL;
        if (curl_url_get(h, CURLUPART_PATH, &dec, CURLU_URLDECODE) == CURLUE_OK) {
            decoded_path(dec, p);
            rc = 0;
        }
        curl_free(dec);
    }
    curl_url_cleanup(h);
    if (rc) parts_free(p);
    return rc;
}

/* An allow-list entry: a URL prefix "scheme://host[:port][/path]", or
 * "host[:port]" for any http(s) URL on that host (and port, when given). */
typedef struct allow_entry {
    url_parts u;
    int any_scheme, any_port, any_path;
} allow_entry;

static int parse_entry(const char *entry, allow_entry *e) {
    memset(e, 0, sizeof *e);
    if (!*entry) return -1;
    for (const char *p = entry; *p; p++)
        if ((unsigned char)*p <= ' ') return -1;
    if (strstr(entry, "://")) {
        if (parse_url(entry, &e->u) != 0) return -1;
        /* "http://h" and "http://h/" both allow every path on h */
        e->any_path = strcmp(e->u.path, "/") == 0;
        /* a port written out is kept; the default port is implied otherwise */
        return 0;
    }
    if (strpbrk(entry, "/?#@")) return -1;
    size_t n = strlen(entry) + 8;
    char *url = malloc(n);
    if (!url) abort();
    snprintf(url, n, "http://%s", entry);
    int rc = parse_url(url, &e->u);
    if (rc == 0) {
        e->any_scheme = e->any_path = 1;
        /* without an explicit port any port matches */
        const char *close = strrchr(entry, ']');
        const char *colon = strrchr(entry, ':');
        e->any_port = !colon || (close && colon < close) ||
                      (!close && strchr(entry, ':') != colon); /* bare IPv6 */
    }
    free(url);
    return rc;
}

int url_allow_entry_check(const char *entry, char *err, size_t errlen) {
    allow_entry e;
    if (parse_entry(entry, &e) != 0) {
        snprintf(err, errlen,
                 "'%.80s' is not a URL prefix (http(s)://host[:port][/path]) or host[:port]",
                 entry);
        return -1;
    }
    parts_free(&e.u);
    return 0;
}

static int path_prefix_ok(const char *prefix, const char *path) {
    size_t n = strlen(prefix);
    if (strncmp(path, prefix, n) != 0) return 0;
    return prefix[n - 1] == '/' || path[n] == '\0' || path[n] == '/';
}

static int entry_matches(const allow_entry *e, const url_parts *u) {
    if (!e->any_scheme && strcasecmp(e->u.scheme, u->scheme) != 0) return 0;
    if (strcasecmp(e->u.host, u->host) != 0) return 0;
    if (!e->any_port && strcmp(e->u.port, u->port) != 0) return 0;
    /* the path as sent and as a decoding server would read it */
    if (!e->any_path &&
        (!path_prefix_ok(e->u.path, u->path) || !path_prefix_ok(e->u.path, u->dpath)))
        return 0;
    return 1;
}

int url_allow_check(char *const *entries, int nentries, const char *url, const char *what,
                    char *err, size_t errlen) {
    if (nentries == 0 || !url || !*url) return 0;
    url_parts u;
    if (parse_url(url, &u) != 0) {
        snprintf(err, errlen, "%s '%.200s' is not an http(s) URL", what, url);
        return -1;
    }
    if (u.dotdot) {
        parts_free(&u);
        snprintf(err, errlen, "%s '%.200s' has a '..' path segment (BranchAllow)", what, url);
        return -1;
    }
    int ok = 0;
    for (int i = 0; i < nentries && !ok; i++) {
        allow_entry e;
        if (parse_entry(entries[i], &e) != 0) continue;
        ok = entry_matches(&e, &u);
        parts_free(&e.u);
    }
    parts_free(&u);
    if (!ok) {
        snprintf(err, errlen, "%s '%.200s' is not allowed by BranchAllow", what, url);
        return -1;
    }
    return 0;
}
