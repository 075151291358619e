/* jsonrpc.c - dtm's JSON-RPC envelopes and the branch-call side of the
 * protocol (jsonrpc.h). */
#include "jsonrpc.h"

#include "json.h"
#include "util.h"

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

/* ---- server answers ----------------------------------------------------- */

/* {"error":<error>,"id":<id>,"jsonrpc":"2.0","result":<result>}: the keys in
 * the order Go's map encoding writes them, as dtm answers. */
static char *envelope(const char *id, const char *error, const char *result) {
    sbuf b;
    sb_init(&b);
    sb_puts(&b, "{\"error\":");
    sb_puts(&b, error ? error : "null");
    sb_puts(&b, ",\"id\":");
    sb_json_str(&b, id ? id : "", id ? strlen(id) : 0);
    sb_puts(&b, ",\"jsonrpc\":\"2.0\",\"result\":");
    sb_puts(&b, result ? result : "null");
    sb_putc(&b, '}');
    return sb_detach(&b);
}

static char *error_object(int code, const char *message) {
    sbuf b;
    sb_init(&b);
    sb_printf(&b, "{\"code\":%d,\"message\":", code);
    sb_json_str(&b, message, strlen(message));
    sb_putc(&b, '}');
    return sb_detach(&b);
}

char *jsonrpc_error(const char *id, int code, const char *message) {
    char *e = error_object(code, message);
    char *out = envelope(id, e, NULL);
    free(e);
    return out;
}

char *jsonrpc_answer(const char *id, int http_code, const char *body) {
    char err[128];
    yajl_val root = json_parse(body, strlen(body), err, sizeof err);
    char *out;
    if (http_code == 200) {
        /* the endpoint's object without dtm's HTTP-only dtm_result */
        sbuf r;
        sb_init(&r);
        size_t kept = 0;
        for (size_t i = 0; root && YAJL_IS_OBJECT(root) && i < root->u.object.len; i++) {
            if (strcmp(root->u.object.keys[i], "dtm_result") == 0) continue;
            sb_putc(&r, kept++ ? ',' : '{');
            sb_json_str(&r, root->u.object.keys[i], strlen(root->u.object.keys[i]));
            sb_putc(&r, ':');
            json_write(&r, root->u.object.values[i]);
        }
        if (kept) sb_putc(&r, '}');
        out = envelope(id, NULL, kept ? r.ptr : NULL);
        sb_free(&r);
    } else {
        yajl_val m = json_field(root, "message");
        const char *msg = m && YAJL_IS_STRING(m) ? m->u.string : body;
        char *e = error_object(http_code == 409 ? JSONRPC_FAILURE : JSONRPC_INTERNAL, msg);
        /* dtm's result is the handler's error value, which encodes as {} */
        out = envelope(id, e, "{}");
        free(e);
    }
    json_free(root);
    return out;
}

/* ---- branch calls --------------------------------------------------------- */

int jsonrpc_branch_url(const char *protocol, const char *url) {
    return protocol && strcmp(protocol, "json-rpc") == 0 && url && strstr(url, "method");
}

/* The URL's query parameter "method", decoded; "" when absent. */
static char *url_method(const char *url) {
    char *method = NULL;
    struct evhttp_uri *u = evhttp_uri_parse_with_flags(url, EVHTTP_URI_NONCONFORMANT);
    const char *qs = u ? evhttp_uri_get_query(u) : NULL;
    struct evkeyvalq q;
    q.tqh_first = NULL;
    q.tqh_last = &q.tqh_first;
    if (qs && evhttp_parse_query_str(qs, &q) == 0) {
        const char *m = evhttp_find_header(&q, "method");
        if (m) method = xstrdup(m);
    }
    evhttp_clear_headers(&q);
    if (u) evhttp_uri_free(u);
    return method ? method : xstrdup("");
}

/* A value with every object's keys in byte order, as Go writes a
 * map[string]interface{} (dtm re-encodes the payload that way). */
static int key_cmp(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void write_sorted(sbuf *b, yajl_val v) {
    if (!v || !YAJL_IS_OBJECT(v)) {
        if (v && YAJL_IS_ARRAY(v)) {
            sb_putc(b, '[');
            for (size_t i = 0; i < v->u.array.len; i++) {
                if (i) sb_putc(b, ',');
                write_sorted(b, v->u.array.values[i]);
            }
            sb_putc(b, ']');
        } else {
            json_write(b, v);
        }
        return;
    }
    size_t n = v->u.object.len;
    const char **keys = xcalloc(n ? n : 1, sizeof *keys);
    for (size_t i = 0; i < n; i++) keys[i] = v->u.object.keys[i];
    qsort(keys, n, sizeof *keys, key_cmp);
    sb_putc(b, '{');
    for (size_t i = 0; i < n; i++) {
        if (i && strcmp(keys[i], keys[i - 1]) == 0) continue; /* Go keeps one */
        if (i) sb_putc(b, ',');
        sb_json_str(b, keys[i], strlen(keys[i]));
        sb_putc(b, ':');
        /* the last value of a repeated key wins, as in Go */
        yajl_val last = NULL;
        for (size_t k = 0; k < n; k++)
            if (strcmp(v->u.object.keys[k], keys[i]) == 0) last = v->u.object.values[k];
        write_sorted(b, last);
    }
    sb_putc(b, '}');
    free(keys);
}

/* 22 characters of base57, like the shortuuid ids dtm sends. */
static void random_id(char out[23]) {
    static const char alphabet[] = "23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    unsigned char rnd[22];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
        for (size_t i = 0; i < sizeof rnd; i++) rnd[i] = (unsigned char)random();
    for (int i = 0; i < 22; i++) out[i] = alphabet[rnd[i] % 57];
    out[22] = '\0';
}

char *jsonrpc_branch_body(const char *url, const char *payload, size_t payload_len, const char *gid,
                          const char *trans_type, const char *branch_id, const char *op,
                          size_t *out_len, char *err, size_t errlen) {
    char perr[128];
    yajl_val params = payload_len ? json_parse(payload, payload_len, perr, sizeof perr) : NULL;
    if (!params || !YAJL_IS_OBJECT(params)) {
        snprintf(err, errlen, "json-rpc branch: the payload must be a JSON object, not '%.*s'",
                 (int)(payload_len > 100 ? 100 : payload_len), payload ? payload : "");
        json_free(params);
        return NULL;
    }
    /* params = the payload's members with the four transaction fields set
     * over them, keys sorted (dtm builds a Go map and encodes it) */
    const char *names[4] = {"branch_id", "gid", "op", "trans_type"};
    const char *vals[4] = {branch_id, gid, op, trans_type};
    size_t n = params->u.object.len;
    const char **keys = xcalloc(n + 4, sizeof *keys);
    size_t nk = 0;
    for (size_t i = 0; i < n; i++) keys[nk++] = params->u.object.keys[i];
    for (int i = 0; i < 4; i++) keys[nk++] = names[i];
    qsort(keys, nk, sizeof *keys, key_cmp);
    char *method = url_method(url);
    char id[23];
    random_id(id);
    sbuf b;
    sb_init(&b);
    sb_puts(&b, "{\"id\":");
    sb_json_str(&b, id, strlen(id));
    sb_puts(&b, ",\"jsonrpc\":\"2.0\",\"method\":");
    sb_json_str(&b, method, strlen(method));
    sb_puts(&b, ",\"params\":{");
    for (size_t i = 0; i < nk; i++) {
        if (i && strcmp(keys[i], keys[i - 1]) == 0) continue;
        if (i) sb_putc(&b, ',');
        sb_json_str(&b, keys[i], strlen(keys[i]));
        sb_putc(&b, ':');
        int fixed = -1;
        for (int k = 0; k < 4; k++)
            if (strcmp(keys[i], names[k]) == 0) fixed = k;
        if (fixed >= 0) {
            const char *s = vals[fixed] ? vals[fixed] : "";
            sb_json_str(&b, s, strlen(s));
        } else {
            yajl_val last = NULL;
            for (size_t k = 0; k < n; k++)
                if (strcmp(params->u.object.keys[k], keys[i]) == 0)
                    last = params->u.object.values[k];
            write_sorted(&b, last);
        }
    }
    sb_puts(&b, "}}");
    free(keys);
    free(method);
    json_free(params);
    *out_len = b.len;
    return sb_detach(&b);
}

branch_outcome jsonrpc_classify(const char *body, size_t len) {
    char err[64];
    yajl_val root = json_parse(body, len, err, sizeof err);
    if (!root) return BR_ERROR; /* dtm cannot decode it either: retried */
    if (YAJL_IS_ARRAY(root) || YAJL_IS_STRING(root) || YAJL_IS_NUMBER(root) || YAJL_IS_TRUE(root) ||
        YAJL_IS_FALSE(root)) {
        json_free(root);
        return BR_ERROR; /* not decodable as an object */
    }
    branch_outcome o = BR_SUCCESS;
    yajl_val e = json_field(root, "error");
    if (e) {
        yajl_val code = json_field(e, "code");
        long long c = code && YAJL_IS_INTEGER(code) ? YAJL_GET_INTEGER(code) : 0;
        o = c == JSONRPC_FAILURE ? BR_FAILURE : c == JSONRPC_ONGOING ? BR_ONGOING : BR_ERROR;
    }
    json_free(root);
    return o;
}
