/* trans_hash.c - a transaction as a Redis hash, both ways (see trans_hash.h). */
#include "trans_hash.h"

#include "branch_states.h"
#include "def_text.h"
#include "hash_pieces.h"
#include "trans_request.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- field names ------------------------------------------------------- */

/* The compact layout's names (trans_hash.h). */
static const char *const field_names[] = {
    [TF_STATUS] = "status",         [TF_CUSTOM_DATA] = "cd",     [TF_QUERY_PREPARED] = "qp",
    [TF_ROLLBACK_REASON] = "rr",    [TF_LAST_ERROR] = "le",      [TF_RESULT] = "rs",
    [TF_BRANCH_HEADERS] = "bh",     [TF_CREATE_TIME] = "ct",     [TF_UPDATE_TIME] = "ut",
    [TF_FINISH_TIME] = "ft",        [TF_ROLLBACK_TIME] = "rbt",  [TF_NEXT_CRON_TIME] = "nc",
    [TF_NEXT_CRON_INTERVAL] = "ci", [TF_WAIT_RESULT] = "wr",     [TF_CONCURRENT] = "cc",
    [TF_TIMEOUT_TO_FAIL] = "tf",    [TF_REQUEST_TIMEOUT] = "rt", [TF_RETRY_INTERVAL] = "ri",
    [TF_RETRY_LIMIT] = "rl",        [TF_RETRY_COUNT] = "rc",
};
/* The previous layout's names, read only (transactions it stored). */
static const char *const old_names[] = {
    [TF_STATUS] = "status",
    [TF_CUSTOM_DATA] = "custom_data",
    [TF_QUERY_PREPARED] = "query_prepared",
    [TF_ROLLBACK_REASON] = "rollback_reason",
    [TF_LAST_ERROR] = "last_error",
    [TF_RESULT] = "result",
    [TF_BRANCH_HEADERS] = "branch_headers",
    [TF_CREATE_TIME] = "create_time",
    [TF_UPDATE_TIME] = "update_time",
    [TF_FINISH_TIME] = "finish_time",
    [TF_ROLLBACK_TIME] = "rollback_time",
    [TF_NEXT_CRON_TIME] = "next_cron_time",
    [TF_NEXT_CRON_INTERVAL] = "next_cron_interval",
    [TF_WAIT_RESULT] = "wait_result",
    [TF_CONCURRENT] = "concurrent",
    [TF_TIMEOUT_TO_FAIL] = "timeout_to_fail",
    [TF_REQUEST_TIMEOUT] = "request_timeout",
    [TF_RETRY_INTERVAL] = "retry_interval",
    [TF_RETRY_LIMIT] = "retry_limit",
    [TF_RETRY_COUNT] = "retry_count",
};
#define NFIELDS ((int)(sizeof field_names / sizeof field_names[0]))
#define F(k) field_names[k]

/* ---- long values in pieces ---------------------------------------------- */

/* Is field k a text (written in pieces) rather than a number or a status? */
static int is_text_field(trans_field k) {
    return k == TF_CUSTOM_DATA || k == TF_QUERY_PREPARED || k == TF_ROLLBACK_REASON ||
           k == TF_LAST_ERROR || k == TF_RESULT || k == TF_BRANCH_HEADERS;
}

static size_t digits_of(size_t n) {
    size_t d = 1;
    while (n >= 10) n /= 10, d++;
    return d;
}

static void put_str(rargs *a, const char *name, const char *v) {
    pieces_put(a, name, v ? v : "", v ? strlen(v) : 0);
}

void trans_set(rargs *f, trans_field k, const char *v) {
    if (is_text_field(k)) {
        put_str(f, F(k), v);
        return;
    }
    ra_adds(f, F(k));
    ra_adds(f, v);
}

void trans_set_int(rargs *f, trans_field k, int64_t v) {
    ra_adds(f, F(k));
    ra_addi(f, v);
}

/* Distances from the create time are below this (about three years); times
 * since 1973 are above it. */
#define TIME_DELTA_MAX 100000000000LL

static int64_t time_stored(const trans *t, int64_t ms) {
    int64_t base = trans_stored_ms(t), d = ms - base;
    return base > 0 && d >= 0 && d < TIME_DELTA_MAX ? d : ms;
}

void trans_set_time(rargs *f, const trans *t, trans_field k, int64_t ms) {
    ra_adds(f, F(k));
    ra_addi(f, time_stored(t, ms));
}

/* ---- the hash ---------------------------------------------------------- */

/* A number only when it is not 0: trans_from_hash starts from zeros, so a
 * missing field reads as 0. Only for a hash written afresh (save_new): an
 * update that sets a value back to 0 must write it. */
static void add_pair_nonzero(rargs *a, const char *k, int64_t v) {
    if (!v) return;
    ra_adds(a, k);
    ra_addi(a, v);
}

/* "<n>:" and the n bytes of s at out; returns the bytes written. */
static size_t put_counted(char *out, const char *s, size_t n) {
    size_t at = fmt_i64(out, (int64_t)n);
    out[at++] = ':';
    memcpy(out + at, s, n);
    return at + n;
}

/* The definition "<n>:<id><n>:<op><n>:<url><payload>" into a new buffer
 * (*len bytes); the caller frees it. */
static char *branch_def_text(const branch *b, size_t *len) {
    const char *part[3] = {b->branch_id ? b->branch_id : "", b->op ? b->op : "",
                           b->url ? b->url : ""};
    size_t data_len = b->data ? b->data_len : 0, l[3], total = data_len;
    for (int i = 0; i < 3; i++) {
        l[i] = strlen(part[i]);
        total += digits_of(l[i]) + 1 + l[i];
    }
    char *v = xmalloc(total + 1), *p = v;
    for (int i = 0; i < 3; i++) p += put_counted(p, part[i], l[i]);
    if (data_len) memcpy(p, b->data, data_len);
    v[total] = 0;
    *len = total;
    return v;
}

void branch_def_value(const branch *b, rargs *a) {
    size_t n;
    char *v = branch_def_text(b, &n);
    ra_add(a, v, n);
    free(v);
}

void branch_state_value(const branch *b, rargs *a) {
    /* "<status> <ct> <ut> <ft> <rt>": at most 9 + 4 * 21 bytes */
    char v[128];
    size_t n = strlen(branch_status_name(b->status));
    memcpy(v, branch_status_name(b->status), n);
    const int64_t times[4] = {b->create_ms, b->update_ms, b->finish_ms, b->rollback_ms};
    for (int i = 0; i < 4; i++) {
        v[n++] = ' ';
        n += fmt_i64(v + n, times[i]);
    }
    ra_add(a, v, n);
}

/* "b<i>" plus suffix, without snprintf (fmt_i64 says why). */
static size_t branch_key(char *k, int i, const char *suffix) {
    k[0] = 'b';
    size_t at = 1 + fmt_i64(k + 1, i);
    size_t sl = strlen(suffix);
    memcpy(k + at, suffix, sl + 1);
    return at + sl;
}

void trans_set_branch_state(rargs *f, const trans *t, int i) {
    if (t->old_layout) {
        char k[40];
        ra_add(f, k, branch_key(k, i, ".s"));
        branch_state_value(&t->branches[i], f);
    } else {
        bstates_put(f, t, i);
    }
}

/* Do the branches follow from steps and payloads (trans_make_branches)?
 * A saga's do: they are not stored. */
static int branches_derived(const trans *t) {
    return t->type == TT_SAGA && t->steps;
}

/* A definition text packed (def_text.h), or as it is if it cannot be. */
static void put_packed(rargs *a, const char *name, const char *json,
                       int (*pack)(const char *, size_t, sbuf *)) {
    sbuf s;
    sb_init(&s);
    size_t n = strlen(json);
    if (pack(json, n, &s))
        pieces_put(a, name, json, n);
    else
        pieces_put(a, name, s.ptr, s.len);
    sb_free(&s);
}

/* The stored value of name unpacked to its JSON into *dst: 0 (also when
 * absent), -1 if malformed. */
static int take_packed(const hview *h, const char *name, char **dst,
                       int (*unpack)(const char *, size_t, sbuf *)) {
    char *v;
    size_t n;
    int rc = hv_long(h, name, &v, &n);
    if (rc <= 0) return rc;
    sbuf s;
    sb_init(&s);
    rc = unpack(v, n, &s);
    free(v);
    if (rc) {
        sb_free(&s);
        return -1;
    }
    free(*dst);
    *dst = sb_detach(&s);
    return 0;
}

/* Always the compact layout: a new hash. */
void trans_hash_fields(const trans *t, rargs *a) {
    ra_adds(a, "trans_type");
    ra_adds(a, trans_type_name(t->type));
    ra_adds(a, F(TF_STATUS));
    ra_adds(a, global_status_name(t->status));
    if (t->steps) put_packed(a, "st", t->steps, steps_pack);
    if (t->payloads) put_packed(a, "pl", t->payloads, payloads_pack);
    if (t->custom_data) put_str(a, F(TF_CUSTOM_DATA), t->custom_data);
    if (t->query_prepared) put_str(a, F(TF_QUERY_PREPARED), t->query_prepared);
    if (t->protocol) put_str(a, "pr", t->protocol);
    if (t->rollback_reason) put_str(a, F(TF_ROLLBACK_REASON), t->rollback_reason);
    if (t->last_error) put_str(a, F(TF_LAST_ERROR), t->last_error);
    if (t->result) put_str(a, F(TF_RESULT), t->result);
    if (t->branch_headers) put_str(a, F(TF_BRANCH_HEADERS), t->branch_headers);
    add_pair_nonzero(a, F(TF_CREATE_TIME), t->create_ms);
    add_pair_nonzero(a, "cs", t->create_shift_ms); /* the times below count from ct - cs */
    const trans_field times[] = {TF_UPDATE_TIME, TF_FINISH_TIME, TF_ROLLBACK_TIME,
                                 TF_NEXT_CRON_TIME};
    const int64_t values[] = {t->update_ms, t->finish_ms, t->rollback_ms, t->next_cron_ms};
    for (int i = 0; i < 4; i++)
        if (values[i]) trans_set_time(a, t, times[i], values[i]);
    add_pair_nonzero(a, F(TF_NEXT_CRON_INTERVAL), t->next_cron_interval_ms);
    add_pair_nonzero(a, "lease_until", t->lease_until_ms);
    add_pair_nonzero(a, F(TF_WAIT_RESULT), t->wait_result);
    add_pair_nonzero(a, F(TF_CONCURRENT), t->concurrent);
    add_pair_nonzero(a, F(TF_TIMEOUT_TO_FAIL), t->timeout_to_fail);
    add_pair_nonzero(a, F(TF_REQUEST_TIMEOUT), t->request_timeout);
    add_pair_nonzero(a, F(TF_RETRY_INTERVAL), t->retry_interval);
    add_pair_nonzero(a, F(TF_RETRY_LIMIT), t->retry_limit);
    add_pair_nonzero(a, F(TF_RETRY_COUNT), t->retry_count);
    add_pair_nonzero(a, "nb", t->nbranches);
    if (!branches_derived(t))
        for (int i = 0; i < t->nbranches; i++) {
            char k[40];
            branch_key(k, i, "");
            size_t n;
            char *v = branch_def_text(&t->branches[i], &n);
            pieces_put(a, k, v, n);
            free(v);
        }
    bstates_put_all(a, t);
}

/* ---- reading ------------------------------------------------------------- */

static int64_t to_i64(const char *s) {
    int64_t v = 0;
    parse_i64(s, &v);
    return v;
}

/* A text field in pieces into *dst (replacing it); -1 if malformed. */
static int take_long(const hview *h, const char *name, char **dst) {
    char *v;
    size_t n;
    int rc = hv_long(h, name, &v, &n);
    if (rc <= 0) return rc;
    free(*dst);
    *dst = v;
    return 0;
}

static void set_str(char **dst, const redisReply *v) {
    free(*dst);
    *dst = xstrndup(v->str, v->len);
}

/* Rebuild the "Name: value" lines from the stored branch_headers JSON. */
static void derive_headers(trans *t) {
    if (!t->branch_headers) return;
    char perr[64];
    yajl_val h = json_parse(t->branch_headers, strlen(t->branch_headers), perr, sizeof perr);
    if (h && YAJL_IS_OBJECT(h) && h->u.object.len) {
        t->header_lines = xcalloc(h->u.object.len, sizeof(char *));
        for (size_t i = 0; i < h->u.object.len; i++) {
            yajl_val val = h->u.object.values[i];
            if (!YAJL_IS_STRING(val)) continue;
            sbuf line;
            sb_init(&line);
            sb_printf(&line, "%s: %s", h->u.object.keys[i], val->u.string);
            t->header_lines[t->nheaders++] = sb_detach(&line);
        }
    }
    if (h) json_free(h);
}

/* Read "<len>:" at *p (within end); the counted bytes follow. -1 if malformed. */
static int take_counted(const char **p, const char *end, char **out) {
    size_t n = 0;
    const char *q = *p;
    if (q >= end || *q < '0' || *q > '9') return -1;
    while (q < end && *q >= '0' && *q <= '9') {
        if (n > (size_t)(end - q)) return -1;
        n = n * 10 + (size_t)(*q++ - '0');
    }
    if (q >= end || *q != ':' || n > (size_t)(end - q - 1)) return -1;
    q++;
    free(*out);
    *out = xstrndup(q, n);
    *p = q + n;
    return 0;
}

/* The inverse of branch_def_value. */
static int branch_def_parse(branch *b, const char *v, size_t len) {
    const char *p = v, *end = v + len;
    if (take_counted(&p, end, &b->branch_id) || take_counted(&p, end, &b->op) ||
        take_counted(&p, end, &b->url))
        return -1;
    free(b->data);
    b->data_len = (size_t)(end - p);
    b->data = xstrndup(p, b->data_len);
    return 0;
}

/* The inverse of branch_state_value (the previous layout's "b<i>.s"). */
static int branch_state_parse(branch *b, const char *v) {
    char st[16];
    size_t n = strcspn(v, " ");
    if (n >= sizeof st) return -1;
    memcpy(st, v, n);
    st[n] = 0;
    b->status = branch_status_parse(st);
    int64_t *times[4] = {&b->create_ms, &b->update_ms, &b->finish_ms, &b->rollback_ms};
    const char *p = v + n;
    for (int i = 0; i < 4; i++) {
        if (*p != ' ') return -1;
        char *end;
        long long x = strtoll(p + 1, &end, 10);
        if (end == p + 1 || !trans_time_sane(x)) return -1;
        *times[i] = x;
        p = end;
    }
    return *p || b->status < 0 ? -1 : 0;
}

/* The previous layout's fields (the hash has "gid"): definitions "b<i>"
 * and states "b<i>.s" whole, long names. */
static int read_old(trans *t, const redisReply *r) {
    int bad = 0;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const char *k = r->element[i]->str;
        const redisReply *v = r->element[i + 1];
        if (k[0] == 'b' && k[1] >= '0' && k[1] <= '9') {
            char *end;
            long idx = strtol(k + 1, &end, 10);
            if (idx < 0 || idx >= t->nbranches) continue;
            branch *b = &t->branches[idx];
            if (!*end) {
                if (branch_def_parse(b, v->str, v->len)) bad = 1;
            } else if (!strcmp(end, ".s")) {
                if (branch_state_parse(b, v->str)) bad = 1;
            }
            continue;
        }
        if (!strcmp(k, "steps"))
            set_str(&t->steps, v);
        else if (!strcmp(k, "payloads"))
            set_str(&t->payloads, v);
        else if (!strcmp(k, "protocol"))
            set_str(&t->protocol, v);
    }
    return bad ? -1 : 0;
}

/* The field's value: the compact name wins over the previous layout's (a
 * transaction of the previous layout gets compact fields written by a new
 * dtmd: trans_hash.h). */
static const redisReply *field(const hview *h, trans_field k) {
    const redisReply *v = hv_get(h, F(k), strlen(F(k)));
    return v ? v : hv_get(h, old_names[k], strlen(old_names[k]));
}

/* The global fields, both layouts. */
static int read_fields(trans *t, const hview *h) {
    char **texts[] = {[TF_CUSTOM_DATA] = &t->custom_data,
                      [TF_QUERY_PREPARED] = &t->query_prepared,
                      [TF_ROLLBACK_REASON] = &t->rollback_reason,
                      [TF_LAST_ERROR] = &t->last_error,
                      [TF_RESULT] = &t->result,
                      [TF_BRANCH_HEADERS] = &t->branch_headers};
    for (int k = TF_CUSTOM_DATA; k <= TF_BRANCH_HEADERS; k++) {
        int rc = take_long(h, F(k), texts[k]);
        if (rc < 0) return -1;
        if (rc == 0) {
            const redisReply *v = hv_get(h, old_names[k], strlen(old_names[k]));
            if (v) set_str(texts[k], v);
        }
    }
    int64_t *nums[] = {[TF_CREATE_TIME] = &t->create_ms,
                       [TF_UPDATE_TIME] = &t->update_ms,
                       [TF_FINISH_TIME] = &t->finish_ms,
                       [TF_ROLLBACK_TIME] = &t->rollback_ms,
                       [TF_NEXT_CRON_TIME] = &t->next_cron_ms,
                       [TF_NEXT_CRON_INTERVAL] = &t->next_cron_interval_ms,
                       [TF_WAIT_RESULT] = NULL,
                       [TF_CONCURRENT] = NULL,
                       [TF_TIMEOUT_TO_FAIL] = &t->timeout_to_fail,
                       [TF_REQUEST_TIMEOUT] = &t->request_timeout,
                       [TF_RETRY_INTERVAL] = &t->retry_interval,
                       [TF_RETRY_LIMIT] = &t->retry_limit,
                       [TF_RETRY_COUNT] = &t->retry_count};
    for (int k = TF_CREATE_TIME; k < NFIELDS; k++) {
        const redisReply *v = field(h, (trans_field)k);
        if (!v) continue;
        if (k == TF_WAIT_RESULT)
            t->wait_result = (int)to_i64(v->str);
        else if (k == TF_CONCURRENT)
            t->concurrent = (int)to_i64(v->str);
        else
            *nums[k] = to_i64(v->str);
    }
    const redisReply *shift = hv_get(h, "cs", 2);
    if (shift) t->create_shift_ms = to_i64(shift->str);
    if (!trans_time_sane(t->create_ms) || !trans_time_sane(t->create_shift_ms)) return -1;
    int64_t *times[] = {&t->update_ms, &t->finish_ms, &t->rollback_ms, &t->next_cron_ms};
    const trans_field time_fields[] = {TF_UPDATE_TIME, TF_FINISH_TIME, TF_ROLLBACK_TIME,
                                       TF_NEXT_CRON_TIME};
    int64_t base = trans_stored_ms(t);
    for (int i = 0; i < 4; i++) {
        if (!trans_time_sane(*times[i])) return -1;
        if (base > 0 /* as time_stored wrote them */ && *times[i] >= 0 &&
            *times[i] < TIME_DELTA_MAX && field(h, time_fields[i]))
            *times[i] += base;
    }
    const redisReply *v = hv_get(h, "lease_until", 11);
    if (v) t->lease_until_ms = to_i64(v->str);
    return 0;
}

/* The compact layout's definition and branches. */
static int read_compact(trans *t, const hview *h) {
    if (take_packed(h, "st", &t->steps, steps_unpack) ||
        take_packed(h, "pl", &t->payloads, payloads_unpack) || take_long(h, "pr", &t->protocol))
        return -1;
    int nb = t->nbranches;
    if (branches_derived(t)) {
        /* rebuilt from steps and payloads as the submit built them */
        t->nbranches = 0;
        char err[256];
        if (trans_make_branches(t, NULL, NULL, err, sizeof err) || t->nbranches != nb) return -1;
    } else {
        for (int i = 0; i < nb; i++) {
            char k[40], *v;
            size_t n;
            branch_key(k, i, "");
            if (hv_long(h, k, &v, &n) != 1) return -1;
            int rc = branch_def_parse(&t->branches[i], v, n);
            free(v);
            if (rc) return -1;
        }
    }
    return nb ? bstates_read(t, h) : 0;
}

trans *trans_from_hash(const redisReply *r, const char *gid) {
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 2) return NULL;
    for (size_t i = 0; i < r->elements; i++)
        if (r->element[i]->type != REDIS_REPLY_STRING) return NULL;
    hview h;
    hv_init(&h, r);
    trans *t = trans_new();
    const redisReply *v = hv_get(&h, "nb", 2);
    int nb = v ? (int)to_i64(v->str) : 0;
    if (nb < 0 || nb > 1000000) nb = 0;
    if (nb) {
        t->branches = xcalloc((size_t)nb, sizeof(branch));
        t->branches_cap = t->nbranches = nb;
    }
    t->stop_recorded = hv_get(&h, "stop_req", 8) != NULL;
    const redisReply *g = hv_get(&h, "gid", 3);
    t->old_layout = g != NULL;
    if (g)
        set_str(&t->gid, g);
    else if (gid)
        t->gid = xstrdup(gid);
    v = hv_get(&h, "trans_type", 10);
    t->type = v ? trans_type_parse(v->str) : -1;
    v = hv_get(&h, "status", 6);
    t->status = v ? global_status_parse(v->str) : -1;
    int ok = t->gid && t->type >= 0 && t->status >= 0 && !read_fields(t, &h);
    if (ok) ok = !(t->old_layout ? read_old(t, r) : read_compact(t, &h));
    for (int i = 0; ok && i < t->nbranches; i++) {
        branch *b = &t->branches[i];
        if (!b->branch_id || !b->op || b->status < 0) ok = 0;
        if (!b->url) b->url = xstrdup("");
        if (!b->data) b->data = xstrdup("");
    }
    hv_free(&h);
    if (!ok) {
        trans_free(t);
        return NULL;
    }
    derive_headers(t);
    return t;
}
