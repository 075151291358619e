/* trans_request.c - a transaction from a request body: parsing, validation
 * and the branches a saga or msg has at creation (see trans_request.h).
 *
 * Validation is strict where dtm is lenient (docs/protocol.md#bad-input): a request
 * that dtmd cannot execute faithfully is refused with a message before
 * anything is stored, instead of being stored and retried forever. */
#include "trans_request.h"

#include "auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *trans_clean_gid(const char *raw, const dtmd_config *cfg, char *err, size_t errlen) {
    /* dtm strips these characters from gids; they would break logs and keys. */
    size_t n = strlen(raw), k = 0;
    char *gid = xmalloc(n + 1);
    for (size_t i = 0; i < n; i++)
        if (raw[i] != '\n' && raw[i] != '\r' && raw[i] != ';') gid[k++] = raw[i];
    gid[k] = '\0';
    int ctl = 0;
    for (size_t i = 0; i < k; i++) ctl |= (unsigned char)gid[i] < 0x20 || gid[i] == 0x7f;
    if (k == 0)
        snprintf(err, errlen, "gid must not be empty");
    else if (ctl)
        snprintf(err, errlen, "gid must not contain control characters");
    else if ((int)k > cfg->max_gid_length)
        snprintf(err, errlen, "gid is %zu bytes long, the limit is %d", k, cfg->max_gid_length);
    else
        return gid;
    free(gid);
    return NULL;
}

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        snprintf(err, errlen, __VA_ARGS__);                                                        \
        goto fail;                                                                                 \
    } while (0)

/* A string field: 0 ok (out set to a copy or left NULL when absent), -1 wrong type. */
static int get_str(yajl_val root, const char *key, char **out) {
    yajl_val v = json_field(root, key);
    if (!v) return 0;
    if (!YAJL_IS_STRING(v)) return -1;
    *out = xstrdup(v->u.string);
    return 0;
}

/* Largest accepted per-transaction number of seconds (about 31 years), so
 * the millisecond arithmetic can never overflow. */
#define MAX_SECONDS 1000000000LL

static int get_int(yajl_val root, const char *key, int64_t *out) {
    yajl_val v = json_field(root, key);
    if (!v) return 0;
    if (!YAJL_IS_INTEGER(v) || YAJL_GET_INTEGER(v) < 0) return -1;
    if (strcmp(key, "retry_limit") != 0 && YAJL_GET_INTEGER(v) > MAX_SECONDS) return -1;
    *out = YAJL_GET_INTEGER(v);
    return 0;
}

static int get_bool(yajl_val root, const char *key, int *out) {
    yajl_val v = json_field(root, key);
    if (!v) return 0;
    if (!YAJL_IS_TRUE(v) && !YAJL_IS_FALSE(v)) return -1;
    *out = YAJL_IS_TRUE(v);
    return 0;
}

/* An object whose values are all strings, re-serialised compactly. */
static int get_str_map(yajl_val root, const char *key, char **out) {
    yajl_val v = json_field(root, key);
    if (!v) return 0;
    if (!YAJL_IS_OBJECT(v)) return -1;
    for (size_t i = 0; i < v->u.object.len; i++)
        if (!YAJL_IS_STRING(v->u.object.values[i])) return -1;
    if (v->u.object.len == 0) return 0;
    sbuf b;
    sb_init(&b);
    json_write(&b, v);
    *out = sb_detach(&b);
    return 0;
}

/* payloads[i] of a request tree: a string, or "" for null. */
static const char *payload_at(yajl_val payloads, size_t i) {
    yajl_val p = payloads->u.array.values[i];
    return p && YAJL_IS_STRING(p) ? p->u.string : "";
}

int trans_from_request(yajl_val root, const dtmd_config *cfg, trans **out, char *err,
                       size_t errlen) {
    trans *t = trans_new();
    *out = NULL;
    if (!root || !YAJL_IS_OBJECT(root)) FAIL("request body must be a JSON object");

    yajl_val v = json_field(root, "gid");
    if (!v) FAIL("gid is required");
    if (!YAJL_IS_STRING(v)) FAIL("gid must be a string");
    if (!(t->gid = trans_clean_gid(v->u.string, cfg, err, errlen))) goto fail;

    v = json_field(root, "trans_type");
    if (!v) FAIL("trans_type is required");
    if (!YAJL_IS_STRING(v)) FAIL("trans_type must be a string");
    t->type = trans_type_parse(v->u.string);
    if (t->type < 0)
        FAIL("unknown trans_type '%s' (expected saga, msg, tcc, xa or workflow)", v->u.string);

    if (get_str(root, "custom_data", &t->custom_data)) FAIL("custom_data must be a string");
    if (get_str(root, "query_prepared", &t->query_prepared))
        FAIL("query_prepared must be a string");
    if (get_str(root, "protocol", &t->protocol)) FAIL("protocol must be a string");
    if (t->protocol && t->protocol[0] && strcmp(t->protocol, "http") != 0 &&
        strcmp(t->protocol, "json-rpc") != 0)
        FAIL("protocol '%s' is not supported: dtmd calls branches over http(s) and json-rpc only",
             t->protocol);
    if (get_str(root, "rollback_reason", &t->rollback_reason))
        FAIL("rollback_reason must be a string");
    if (get_bool(root, "wait_result", &t->wait_result)) FAIL("wait_result must be a boolean");
    if (get_bool(root, "concurrent", &t->concurrent)) FAIL("concurrent must be a boolean");
    if (get_int(root, "timeout_to_fail", &t->timeout_to_fail))
        FAIL("timeout_to_fail must be a non-negative integer (seconds)");
    if (get_int(root, "request_timeout", &t->request_timeout))
        FAIL("request_timeout must be a non-negative integer (seconds)");
    if (get_int(root, "retry_interval", &t->retry_interval))
        FAIL("retry_interval must be a non-negative integer (seconds)");
    if (get_int(root, "retry_limit", &t->retry_limit))
        FAIL("retry_limit must be a non-negative integer");
    /* A client could otherwise hold a call slot, or keep a transaction and
     * its lease alive, for as long as it likes. */
    if (t->request_timeout > cfg->max_request_timeout)
        FAIL("request_timeout %lld is above Limits.MaxRequestTimeout (%lld s)",
             (long long)t->request_timeout, (long long)cfg->max_request_timeout);
    if (t->timeout_to_fail > cfg->max_timeout_to_fail)
        FAIL("timeout_to_fail %lld is above Limits.MaxTimeoutToFail (%lld s)",
             (long long)t->timeout_to_fail, (long long)cfg->max_timeout_to_fail);
    if (t->retry_interval > cfg->max_retry_interval)
        FAIL("retry_interval %lld is above Limits.MaxRetryInterval (%lld s)",
             (long long)t->retry_interval, (long long)cfg->max_retry_interval);
    if (get_str_map(root, "branch_headers", &t->branch_headers))
        FAIL("branch_headers must be an object of strings");
    if (get_str_map(root, "req_extra", &t->req_extra))
        FAIL("req_extra must be an object of strings");
    if (t->query_prepared && !url_is_http(t->query_prepared))
        FAIL("query_prepared '%s' is not an http(s) URL", t->query_prepared);
    if (t->query_prepared &&
        branch_url_check(cfg, t->query_prepared, "query_prepared", err, errlen))
        goto fail;

    v = json_field(root, "steps");
    if (v) {
        if (!YAJL_IS_ARRAY(v)) FAIL("steps must be an array of objects");
        if ((int)v->u.array.len > cfg->max_branches)
            FAIL("steps has %zu items, the limit is %d", v->u.array.len, cfg->max_branches);
        for (size_t i = 0; i < v->u.array.len; i++) {
            yajl_val s = v->u.array.values[i];
            if (!YAJL_IS_OBJECT(s)) FAIL("steps[%zu] must be an object", i);
            for (size_t k = 0; k < s->u.object.len; k++) {
                yajl_val sv = s->u.object.values[k];
                if (sv && !YAJL_IS_NULL(sv) && !YAJL_IS_STRING(sv))
                    FAIL("steps[%zu].%s must be a string", i, s->u.object.keys[k]);
            }
        }
        /* [] is no steps: SDKs serialising a whole TransBase send it for
         * TCC and XA too (dtm ignores steps there). */
        if (v->u.array.len > 0) {
            sbuf b;
            sb_init(&b);
            json_write(&b, v);
            t->steps = sb_detach(&b);
        }
    }
    v = json_field(root, "payloads");
    if (v) {
        if (!YAJL_IS_ARRAY(v)) FAIL("payloads must be an array of strings");
        /* null is an empty payload, as dtm's string decoding has it: the
         * Node.js SDK sends [null] for a step added without data. */
        for (size_t i = 0; i < v->u.array.len; i++)
            if (!YAJL_IS_STRING(v->u.array.values[i]) && !YAJL_IS_NULL(v->u.array.values[i]))
                FAIL("payloads[%zu] must be a string", i);
        if (v->u.array.len > 0) {
            sbuf b;
            sb_init(&b);
            sb_putc(&b, '[');
            for (size_t i = 0; i < v->u.array.len; i++) {
                const char *p = payload_at(v, i);
                if (i) sb_putc(&b, ',');
                sb_json_str(&b, p, strlen(p));
            }
            sb_putc(&b, ']');
            t->payloads = sb_detach(&b);
        }
    }

    /* Header lines for branch calls, derived once. */
    yajl_val h = json_field(root, "branch_headers");
    if (h && YAJL_IS_OBJECT(h) && h->u.object.len > 0) {
        t->header_lines = xcalloc(h->u.object.len, sizeof(char *));
        for (size_t i = 0; i < h->u.object.len; i++) {
            const char *name = h->u.object.keys[i], *val = h->u.object.values[i]->u.string;
            if (!*name || strpbrk(name, ":\r\n \t") || strpbrk(val, "\r\n"))
                FAIL("branch_headers: invalid header '%s'", name);
            sbuf line;
            sb_init(&line);
            sb_printf(&line, "%s: %s", name, val);
            t->header_lines[t->nheaders++] = sb_detach(&line);
        }
    }
    t->status = GS_PREPARED;
    *out = t;
    return 0;
fail:
    trans_free(t);
    return -1;
}

int trans_from_body(const char *body, size_t len, const dtmd_config *cfg, trans **out, char *err,
                    size_t errlen) {
    /* One event-parser pass reads the payloads with their exact bytes (the
     * tree cuts strings at "\u0000") and finds NULs anywhere else: a gid,
     * URL or header cannot hold one, so such a request is refused rather
     * than silently stored cut short. */
    json_strs ps;
    /* A NUL can only come from the escape "\u0000" (raw NUL bytes are
     * refused by json_parse): without one the tree is exact, skip the pass. */
    int have_ps = memmem(body, len, "\\u0000", 6) && json_strings(body, len, "payloads", &ps) == 0;
    if (have_ps && ps.nul_elsewhere) {
        json_strs_free(&ps);
        snprintf(err, errlen, "only payloads may contain NUL characters (\\u0000)");
        return -1;
    }
    yajl_val root = json_parse(body, len, err, errlen);
    int rc = root ? trans_from_request(root, cfg, out, err, errlen) : -1;
    /* Kept for trans_make_branches, unless its strings were cut at a NUL:
     * then the branches come from the exact text. */
    if (rc == 0 && !have_ps)
        (*out)->request = root;
    else if (root)
        json_free(root);
    if (rc == 0 && have_ps && (*out)->payloads) {
        sbuf b;
        sb_init(&b);
        sb_putc(&b, '[');
        for (size_t i = 0; i < ps.n; i++) {
            if (i) sb_putc(&b, ',');
            sb_json_str(&b, ps.s[i], ps.len[i]);
        }
        sb_putc(&b, ']');
        free((*out)->payloads);
        (*out)->payloads = sb_detach(&b);
    }
    if (have_ps) json_strs_free(&ps);
    return rc;
}

/* Does the "orders" graph (step -> steps it waits for) have a cycle? A
 * cyclic saga could never start its first step, so it is refused up front.
 * Kahn's topological sort, linear in steps + edges however the entries
 * repeat: every entry naming a step counts (saga.c merges them too), and a
 * repeated edge is simply counted and released as often as it appears.
 * Entries are already validated (keys and values are step indexes). */
static int orders_cyclic(yajl_val orders, int nsteps) {
    size_t nedges = 0;
    for (size_t i = 0; i < orders->u.object.len; i++)
        nedges += orders->u.object.values[i]->u.array.len;
    size_t n = (size_t)nsteps;
    size_t *indeg = xcalloc(n, sizeof *indeg);
    size_t *start = xcalloc(n + 1, sizeof *start); /* CSR: step -> steps waiting for it */
    int *next = xmalloc((nedges ? nedges : 1) * sizeof *next);
    int *queue = xmalloc(n * sizeof *queue);
    for (size_t i = 0; i < orders->u.object.len; i++) {
        int64_t k;
        parse_i64(orders->u.object.keys[i], &k);
        yajl_val deps = orders->u.object.values[i];
        indeg[k] += deps->u.array.len;
        for (size_t j = 0; j < deps->u.array.len; j++)
            start[YAJL_GET_INTEGER(deps->u.array.values[j]) + 1]++;
    }
    for (size_t s = 0; s < n; s++) start[s + 1] += start[s];
    size_t *fill = xmalloc(n * sizeof *fill);
    memcpy(fill, start, n * sizeof *fill);
    for (size_t i = 0; i < orders->u.object.len; i++) {
        int64_t k;
        parse_i64(orders->u.object.keys[i], &k);
        yajl_val deps = orders->u.object.values[i];
        for (size_t j = 0; j < deps->u.array.len; j++)
            next[fill[YAJL_GET_INTEGER(deps->u.array.values[j])]++] = (int)k;
    }
    size_t head = 0, tail = 0;
    for (size_t s = 0; s < n; s++)
        if (indeg[s] == 0) queue[tail++] = (int)s;
    while (head < tail) {
        int s = queue[head++];
        for (size_t e = start[s]; e < start[s + 1]; e++)
            if (--indeg[next[e]] == 0) queue[tail++] = next[e];
    }
    free(fill);
    free(queue);
    free(next);
    free(start);
    free(indeg);
    return tail < n;
}

/* Saga custom_data: {"concurrent":bool,"orders":{"<step>":[<step>,...]}}. */
static int check_saga_custom(const trans *t, int nsteps, char *err, size_t errlen) {
    if (!t->custom_data || !t->custom_data[0]) return 0;
    char perr[128];
    yajl_val root = json_parse(t->custom_data, strlen(t->custom_data), perr, sizeof perr);
    if (!root) FAIL("custom_data is not valid JSON: %s", perr);
    if (!YAJL_IS_OBJECT(root)) FAIL("custom_data must be a JSON object");
    yajl_val c = json_field(root, "concurrent");
    if (c && !YAJL_IS_TRUE(c) && !YAJL_IS_FALSE(c))
        FAIL("custom_data.concurrent must be a boolean");
    yajl_val o = json_field(root, "orders");
    if (o) {
        if (!YAJL_IS_OBJECT(o)) FAIL("custom_data.orders must be an object");
        for (size_t i = 0; i < o->u.object.len; i++) {
            int64_t k;
            yajl_val deps = o->u.object.values[i];
            if (parse_i64(o->u.object.keys[i], &k) || k < 0 || k >= nsteps || !deps ||
                !YAJL_IS_ARRAY(deps))
                FAIL("custom_data.orders: '%s' must be a step index (0..%d) mapping to an array",
                     o->u.object.keys[i], nsteps - 1);
            for (size_t j = 0; j < deps->u.array.len; j++) {
                yajl_val d = deps->u.array.values[j];
                if (!YAJL_IS_INTEGER(d) || YAJL_GET_INTEGER(d) < 0 ||
                    YAJL_GET_INTEGER(d) >= nsteps || YAJL_GET_INTEGER(d) == k)
                    FAIL("custom_data.orders['%s']: invalid step index", o->u.object.keys[i]);
            }
        }
        if (orders_cyclic(o, nsteps))
            FAIL("custom_data.orders has a cycle: no step could ever start");
    }
    json_free(root);
    return 0;
fail:
    if (root) json_free(root);
    return -1;
}

static const char *step_str(yajl_val step, const char *key) {
    yajl_val v = json_field(step, key);
    return v && YAJL_IS_STRING(v) ? v->u.string : NULL;
}

/* Msg custom_data: {"delay": <whole seconds before delivery>}. */
static int check_msg_custom(const trans *t, const dtmd_config *cfg, char *err, size_t errlen) {
    if (!t->custom_data || !t->custom_data[0]) return 0;
    char perr[128];
    yajl_val root = json_parse(t->custom_data, strlen(t->custom_data), perr, sizeof perr);
    if (!root) FAIL("custom_data is not valid JSON: %s", perr);
    if (!YAJL_IS_OBJECT(root)) FAIL("custom_data must be a JSON object");
    yajl_val d = json_field(root, "delay");
    if (d && (!YAJL_IS_INTEGER(d) || YAJL_GET_INTEGER(d) < 0))
        FAIL("custom_data.delay must be a non-negative integer (seconds)");
    /* The record must outlive the delay, or the msg would silently expire. */
    if (d && YAJL_GET_INTEGER(d) >= cfg->data_expire)
        FAIL("custom_data.delay %lld must be below Store.DataExpire (%lld s)",
             (long long)YAJL_GET_INTEGER(d), (long long)cfg->data_expire);
    json_free(root);
    return 0;
fail:
    if (root) json_free(root);
    return -1;
}

#define TOPIC_PREFIX "topic://"

size_t trans_step_topics(const trans *t, char ***names) {
    *names = NULL;
    if (t->type != TT_MSG || !t->steps) return 0;
    char perr[64];
    yajl_val parsed = t->request ? NULL : json_parse(t->steps, strlen(t->steps), perr, sizeof perr);
    yajl_val steps = t->request ? json_field(t->request, "steps") : parsed;
    size_t n = 0;
    for (size_t i = 0; steps && YAJL_IS_ARRAY(steps) && i < steps->u.array.len; i++) {
        const char *a = step_str(steps->u.array.values[i], "action");
        if (!a || strncmp(a, TOPIC_PREFIX, strlen(TOPIC_PREFIX)) != 0) continue;
        a += strlen(TOPIC_PREFIX);
        size_t k = 0;
        while (k < n && strcmp((*names)[k], a) != 0) k++;
        if (k < n) continue;
        *names = xrealloc(*names, (n + 1) * sizeof(char *));
        (*names)[n++] = xstrdup(a);
    }
    if (parsed) json_free(parsed);
    return n;
}

const json_strs *topic_set_find(const topic_set *ts, const char *name) {
    for (size_t i = 0; ts && i < ts->n; i++)
        if (strcmp(ts->names[i], name) == 0) return &ts->urls[i];
    return NULL;
}

void topic_set_free(topic_set *ts) {
    for (size_t i = 0; i < ts->n; i++) {
        free(ts->names[i]);
        json_strs_free(&ts->urls[i]);
    }
    free(ts->names);
    free(ts->urls);
    memset(ts, 0, sizeof *ts);
}

/* A branch id: "%02d" of the step, or "%02d-%02d" of step and subscriber
 * (sub 0: none). Written by hand: it runs for every branch of every submit. */
static void branch_id_of(char *id, size_t i, size_t sub) {
    char *p = id;
    size_t v[2] = {i, sub};
    for (int k = 0; k < (sub ? 2 : 1); k++) {
        if (k) *p++ = '-';
        if (v[k] < 10) *p++ = '0';
        p += fmt_i64(p, (int64_t)v[k]);
    }
    *p = '\0';
}

/* branch_url_check for steps[i].<field>: its message is only built when
 * BranchAllow is set. */
static int step_url_check(const dtmd_config *cfg, const char *url, size_t i, const char *field,
                          char *err, size_t errlen) {
    if (!cfg || cfg->nbranch_allow == 0) return 0;
    char what[64];
    snprintf(what, sizeof what, "steps[%zu].%s", i, field);
    return branch_url_check(cfg, url, what, err, errlen);
}

int trans_make_branches(trans *t, const dtmd_config *cfg, const topic_set *topics, char *err,
                        size_t errlen) {
    yajl_val parsed = NULL, steps = NULL;
    yajl_val tree_payloads = NULL; /* payloads from the request tree, or */
    json_strs payloads = {0};      /* parsed from the stored text */
    size_t np = 0;
    int rc = -1;
    if (!t->steps) FAIL("steps must not be empty");
    if (t->request) {
        /* The request's own tree: its strings are exact (trans_from_body
         * keeps it only when none holds a NUL). */
        steps = json_field(t->request, "steps");
        tree_payloads = json_field(t->request, "payloads");
        np = tree_payloads && YAJL_IS_ARRAY(tree_payloads) ? tree_payloads->u.array.len : 0;
    } else {
        char perr[128];
        steps = parsed = json_parse(t->steps, strlen(t->steps), perr, sizeof perr);
        if (t->payloads) json_strings(t->payloads, strlen(t->payloads), NULL, &payloads);
        np = payloads.n;
    }
    size_t n = steps && YAJL_IS_ARRAY(steps) ? steps->u.array.len : 0;
    if (n == 0) FAIL("steps must not be empty");
    if (np > 0 && np != n)
        FAIL("payloads has %zu items but steps has %zu: give one payload per step", np, n);
    /* Without payloads, the legacy steps[i].data must give every step its payload. */
    for (size_t i = 0; np == 0 && i < n; i++) {
        const char *d = step_str(steps->u.array.values[i], "data");
        if (!d || !*d) FAIL("payloads has 0 items but steps has %zu: give one payload per step", n);
    }
    if (t->type == TT_SAGA && check_saga_custom(t, (int)n, err, errlen)) goto fail;
    if (t->type == TT_MSG && check_msg_custom(t, cfg, err, errlen)) goto fail;
    for (size_t i = 0; i < n; i++) {
        yajl_val s = steps->u.array.values[i];
        const char *action = step_str(s, "action");
        const char *comp = step_str(s, "compensate");
        const char *data;
        size_t dl;
        if (np && tree_payloads) {
            data = payload_at(tree_payloads, i);
            dl = strlen(data);
        } else if (np) {
            data = payloads.s[i];
            dl = payloads.len[i];
        } else {
            data = step_str(s, "data");
            dl = data ? strlen(data) : 0;
        }
        char id[48];
        if (!action) FAIL("steps[%zu].action is required", i);
        if (t->type == TT_MSG && strncmp(action, TOPIC_PREFIX, strlen(TOPIC_PREFIX)) == 0) {
            /* Fan out to every subscriber: ids "%02d-%02d" unless there is just one. */
            const char *name = action + strlen(TOPIC_PREFIX);
            const json_strs *urls = topic_set_find(topics, name);
            if (!urls || urls->n == 0)
                FAIL("steps[%zu]: topic not found: '%s' has no subscribers", i, name);
            if (trans_branch_limit(cfg, t->nbranches, urls->n, err, errlen)) goto fail;
            for (size_t j = 0; j < urls->n; j++) {
                char what[96];
                snprintf(what, sizeof what, "steps[%zu]: topic '%.40s' subscriber", i, name);
                if (branch_url_check(cfg, urls->s[j], what, err, errlen)) goto fail;
                branch_id_of(id, i + 1, urls->n == 1 ? 0 : j + 1);
                trans_add_branch(t, id, "action", urls->s[j], data, dl, BS_PREPARED);
            }
            continue;
        }
        if (!url_is_http(action)) FAIL("steps[%zu].action '%s' is not an http(s) URL", i, action);
        if (comp && !url_is_http(comp))
            FAIL("steps[%zu].compensate '%s' is not an http(s) URL", i, comp);
        if (step_url_check(cfg, action, i, "action", err, errlen)) goto fail;
        if (comp && step_url_check(cfg, comp, i, "compensate", err, errlen)) goto fail;
        branch_id_of(id, i + 1, 0);
        if (t->type == TT_SAGA && trans_branch_limit(cfg, t->nbranches, 2, err, errlen)) goto fail;
        if (t->type == TT_SAGA) trans_add_branch(t, id, "compensate", comp, data, dl, BS_PREPARED);
        if (t->type != TT_SAGA && trans_branch_limit(cfg, t->nbranches, 1, err, errlen)) goto fail;
        trans_add_branch(t, id, "action", action, data, dl, BS_PREPARED);
    }
    rc = 0;
fail:
    if (parsed) json_free(parsed);
    json_strs_free(&payloads);
    trans_drop_request(t);
    return rc;
}

int trans_branch_limit(const dtmd_config *cfg, long have, size_t adding, char *err, size_t errlen) {
    if (!cfg) return 0; /* rebuilding a stored transaction: checked when it came */
    if (have >= 0 && adding <= (size_t)cfg->max_branches &&
        (size_t)have + adding <= (size_t)cfg->max_branches)
        return 0;
    snprintf(err, errlen, "the transaction would have %lld branches; Limits.MaxBranches is %d",
             (long long)have + (long long)adding, cfg->max_branches);
    return -1;
}
