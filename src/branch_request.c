/* branch_request.c - what a branch call sends and how its answer is read.
 *
 * Why a module of its own: the bytes of a branch call are part of the
 * protocol, not of the transport: the four query parameters dtm appends
 * (encoded and ordered as Go's url.Values does), the headers (defaults,
 * then the stored ones, CR/LF refused), and dtm's classification of the
 * answer. None of it does I/O, so it is unit tested on its own; the
 * transport (branch_call.c) only carries the result. */
#include "branch_request.h"

#include "log.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *branch_outcome_name(branch_outcome o) {
    switch (o) {
        case BR_SUCCESS:
            return "SUCCESS";
        case BR_FAILURE:
            return "FAILURE";
        case BR_ONGOING:
            return "ONGOING";
        case BR_ERROR:
            return "ERROR";
    }
    return "ERROR";
}

/* Length-bounded substring test: response bodies are not NUL-terminated. */
static int body_has(const char *body, size_t len, const char *needle) {
    if (!body) return 0;
    return memmem(body, len, needle, strlen(needle)) != NULL;
}

/* dtm's classification; the order of the tests is part of the protocol. */
branch_outcome branch_classify(long http_status, const char *body, size_t body_len) {
    if (http_status == 0) return BR_ERROR;
    if (http_status == 425 || body_has(body, body_len, "ONGOING")) return BR_ONGOING;
    if (http_status == 409 || body_has(body, body_len, "FAILURE")) return BR_FAILURE;
    if (http_status != 200) return BR_ERROR;
    return BR_SUCCESS;
}

/* Go's url.QueryEscape: unreserved bytes kept, space -> '+', rest %XX. */
static void query_escape(sbuf *b, const char *s) {
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        /* Runs of unreserved bytes (all of a typical gid or id) in one append. */
        const unsigned char *run = p;
        while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
               *p == '-' || *p == '_' || *p == '.' || *p == '~')
            p++;
        if (p > run) sb_append(b, (const char *)run, (size_t)(p - run));
        if (!*p) break;
        if (*p == ' ') {
            sb_putc(b, '+');
        } else {
            char esc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            sb_append(b, esc, 3);
        }
        p++;
    }
}

/* Appends the four dtm query parameters as dtm (resty + url.Values) does.
 * A fragment, if any, stays after the query so the parameters reach the
 * server. */
char *branch_build_url(const char *url, const char *gid, const char *trans_type,
                       const char *branch_id, const char *op) {
    /* url.Values.Encode sorts keys: branch_id, gid, op, trans_type. */
    const char *keys[4] = {"branch_id", "gid", "op", "trans_type"};
    const char *vals[4] = {branch_id, gid, op, trans_type};
    const char *frag = strchr(url, '#');
    size_t base_len = frag ? (size_t)(frag - url) : strlen(url);
    sbuf b;
    sb_init(&b);
    /* the usual size at once: a typical URL outgrew 64 and 128 bytes */
    sb_reserve(&b, base_len + 64 + (gid ? 3 * strlen(gid) : 0) + (frag ? strlen(frag) : 0));
    sb_append(&b, url, base_len);
    int has_query = memchr(url, '?', base_len) != NULL;
    int need_sep = !(base_len > 0 && (url[base_len - 1] == '?' || url[base_len - 1] == '&'));
    for (int i = 0; i < 4; i++) {
        if (!vals[i]) continue;
        if (need_sep) sb_putc(&b, has_query ? '&' : '?');
        has_query = need_sep = 1;
        sb_puts(&b, keys[i]);
        sb_putc(&b, '=');
        query_escape(&b, vals[i]);
    }
    if (frag) sb_puts(&b, frag);
    if (!b.ptr) sb_puts(&b, ""); /* empty URL and no parameters */
    return sb_detach(&b);
}

int branch_url_target(const char *url, size_t *at, size_t *len) {
    const char *p = strstr(url, "://");
    if (!p || (size_t)(p - url) > 5) return 0;
    p += 3 + strcspn(p + 3, "/?#");
    if (*p != '/') return 0;
    const char *end = p + strcspn(p, "#");
    for (const char *q = p; q < end; q++)
        if ((unsigned char)*q <= ' ' || *q == 0x7f) return 0;
    *at = (size_t)(p - url);
    *len = (size_t)(end - p);
    return 1;
}

/* A header's name, for override detection: the bytes before ':' or ';'
 * (curl's "Name;" form sends an empty header). */
static size_t header_name_len(const char *h) {
    return strcspn(h, ":;");
}

static int header_same_name(const char *a, const char *b) {
    size_t la = header_name_len(a), lb = header_name_len(b);
    return la == lb && strncasecmp(a, b, la) == 0;
}

/* Defaults first, then the caller's lines; a later line with the same name
 * replaces an earlier one (curl itself would send both). Lines containing
 * CR/LF are dropped: they would let a stored header inject raw HTTP. */
struct curl_slist *branch_build_headers(const branch_request *req) {
    /* "Name:" removes a header curl would add: Expect (100-continue waits
     * for large bodies) and Accept, which dtm's Go client does not send
     * either (and curl prints each request header byte by byte). */
    enum { NDEF = 3 };
    const char *defaults[NDEF] = {"Content-Type: application/json", "Expect:", "Accept:"};
    int n = NDEF + (req->nheaders > 0 ? req->nheaders : 0);
    const char **all = xcalloc((size_t)n, sizeof *all);
    for (int i = 0; i < NDEF; i++) all[i] = defaults[i];
    for (int i = NDEF; i < n; i++) {
        const char *h = req->headers[i - NDEF];
        if (!h || !*h || strpbrk(h, "\r\n")) {
            if (h && *h) log_warn("branch call: dropping header with CR/LF");
            continue;
        }
        all[i] = h;
    }
    struct curl_slist *list = NULL;
    for (int i = 0; i < n; i++) {
        if (!all[i]) continue;
        int overridden = 0;
        for (int j = i + 1; j < n && !overridden; j++)
            if (all[j] && header_same_name(all[i], all[j])) overridden = 1;
        if (overridden) continue;
        struct curl_slist *nl = curl_slist_append(list, all[i]);
        if (!nl) {
            curl_slist_free_all(list);
            list = NULL;
            break;
        }
        list = nl;
    }
    free(all);
    return list;
}
