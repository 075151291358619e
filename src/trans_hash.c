/* trans_hash.c - a transaction as a Redis hash, both ways (see trans_hash.h). */
#include "trans_hash.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- field names ------------------------------------------------------- */

static const char *const field_names[] = {
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
#define F(k) field_names[k]

void trans_set(rargs *f, trans_field k, const char *v) {
    ra_adds(f, F(k));
    ra_adds(f, v);
}

void trans_set_int(rargs *f, trans_field k, int64_t v) {
    ra_adds(f, F(k));
    ra_addi(f, v);
}

/* ---- the hash ---------------------------------------------------------- */

static void add_pair(rargs *a, const char *k, const char *v) {
    ra_adds(a, k);
    ra_adds(a, v ? v : "");
}

/* A number only when it is not 0: trans_from_hash starts from zeros, so a
 * missing field reads as 0. Only for a hash written afresh (save_new): an
 * update that sets a value back to 0 must write it. */
static void add_pair_nonzero(rargs *a, const char *k, int64_t v) {
    if (!v) return;
    ra_adds(a, k);
    ra_addi(a, v);
}

/* "<len>:<bytes>", the length in decimal: unambiguous whatever s holds. */
/* "<n>:" and the n bytes of s at out; returns the bytes written. */
static size_t put_counted(char *out, const char *s, size_t n) {
    size_t at = fmt_i64(out, (int64_t)n);
    out[at++] = ':';
    memcpy(out + at, s, n);
    return at + n;
}

void branch_def_value(const branch *b, rargs *a) {
    /* Written straight into the command's arena: sized first, no buffer
     * growing and copied. */
    const char *part[3] = {b->branch_id ? b->branch_id : "", b->op ? b->op : "",
                           b->url ? b->url : ""};
    size_t data_len = b->data ? b->data_len : 0, len[3], total = data_len;
    for (int i = 0; i < 3; i++) {
        len[i] = strlen(part[i]);
        size_t digits = 1;
        for (size_t n = len[i]; n >= 10; n /= 10) digits++;
        total += digits + 1 + len[i];
    }
    char *p = ra_alloc(a, total);
    for (int i = 0; i < 3; i++) p += put_counted(p, part[i], len[i]);
    if (data_len) memcpy(p, b->data, data_len);
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
static void add_branch_key(rargs *a, int i, const char *suffix) {
    char k[40] = "b";
    size_t at = 1 + fmt_i64(k + 1, i);
    size_t sl = strlen(suffix);
    memcpy(k + at, suffix, sl);
    ra_add(a, k, at + sl);
}

void trans_set_branch_state(rargs *f, const trans *t, int i) {
    add_branch_key(f, i, ".s");
    branch_state_value(&t->branches[i], f);
}

/* "b<i>" and "b<i>.s" of branch i. */
static void branch_fields(const trans *t, int i, rargs *a) {
    add_branch_key(a, i, "");
    branch_def_value(&t->branches[i], a);
    trans_set_branch_state(a, t, i);
}

void trans_hash_fields(const trans *t, rargs *a) {
    add_pair(a, "gid", t->gid);
    add_pair(a, "trans_type", trans_type_name(t->type));
    add_pair(a, F(TF_STATUS), global_status_name(t->status));
    if (t->steps) add_pair(a, "steps", t->steps);
    if (t->payloads) add_pair(a, "payloads", t->payloads);
    if (t->custom_data) add_pair(a, F(TF_CUSTOM_DATA), t->custom_data);
    if (t->query_prepared) add_pair(a, F(TF_QUERY_PREPARED), t->query_prepared);
    if (t->protocol) add_pair(a, "protocol", t->protocol);
    if (t->rollback_reason) add_pair(a, F(TF_ROLLBACK_REASON), t->rollback_reason);
    if (t->result) add_pair(a, F(TF_RESULT), t->result);
    if (t->branch_headers) add_pair(a, F(TF_BRANCH_HEADERS), t->branch_headers);
    add_pair_nonzero(a, F(TF_CREATE_TIME), t->create_ms);
    add_pair_nonzero(a, F(TF_UPDATE_TIME), t->update_ms);
    add_pair_nonzero(a, F(TF_FINISH_TIME), t->finish_ms);
    add_pair_nonzero(a, F(TF_ROLLBACK_TIME), t->rollback_ms);
    add_pair_nonzero(a, F(TF_NEXT_CRON_TIME), t->next_cron_ms);
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
    for (int i = 0; i < t->nbranches; i++) branch_fields(t, i, a);
}

static int64_t to_i64(const char *s) {
    int64_t v = 0;
    parse_i64(s, &v);
    return v;
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

/* The inverse of branch_state_value. */
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
        if (end == p + 1) return -1;
        *times[i] = x;
        p = end;
    }
    return *p || b->status < 0 ? -1 : 0;
}

trans *trans_from_hash(const redisReply *r) {
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 2) return NULL;
    trans *t = trans_new();
    int nb = 0;
    /* First pass: branch count, so branch fields can be placed by index. */
    for (size_t i = 0; i + 1 < r->elements; i += 2)
        if (strcmp(r->element[i]->str, "nb") == 0) nb = (int)to_i64(r->element[i + 1]->str);
    if (nb < 0 || nb > 1000000) nb = 0;
    if (nb) {
        t->branches = xcalloc((size_t)nb, sizeof(branch));
        t->branches_cap = t->nbranches = nb;
    }
    t->type = -1;
    t->status = -1;
    int bad = 0;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const char *k = r->element[i]->str;
        const redisReply *v = r->element[i + 1];
        if (k[0] == 'b' && k[1] >= '0' && k[1] <= '9') {
            char *end;
            long idx = strtol(k + 1, &end, 10);
            if (idx < 0 || idx >= nb) continue;
            branch *b = &t->branches[idx];
            if (!*end) {
                if (branch_def_parse(b, v->str, v->len)) bad = 1;
            } else if (!strcmp(end, ".s")) {
                if (branch_state_parse(b, v->str)) bad = 1;
            }
            continue;
        }
        if (!strcmp(k, "gid"))
            set_str(&t->gid, v);
        else if (!strcmp(k, "trans_type"))
            t->type = trans_type_parse(v->str);
        else if (!strcmp(k, F(TF_STATUS)))
            t->status = global_status_parse(v->str);
        else if (!strcmp(k, "steps"))
            set_str(&t->steps, v);
        else if (!strcmp(k, "payloads"))
            set_str(&t->payloads, v);
        else if (!strcmp(k, F(TF_CUSTOM_DATA)))
            set_str(&t->custom_data, v);
        else if (!strcmp(k, F(TF_QUERY_PREPARED)))
            set_str(&t->query_prepared, v);
        else if (!strcmp(k, "protocol"))
            set_str(&t->protocol, v);
        else if (!strcmp(k, F(TF_ROLLBACK_REASON)))
            set_str(&t->rollback_reason, v);
        else if (!strcmp(k, F(TF_LAST_ERROR)))
            set_str(&t->last_error, v);
        else if (!strcmp(k, F(TF_RESULT)))
            set_str(&t->result, v);
        else if (!strcmp(k, F(TF_BRANCH_HEADERS)))
            set_str(&t->branch_headers, v);
        else if (!strcmp(k, F(TF_CREATE_TIME)))
            t->create_ms = to_i64(v->str);
        else if (!strcmp(k, F(TF_UPDATE_TIME)))
            t->update_ms = to_i64(v->str);
        else if (!strcmp(k, F(TF_FINISH_TIME)))
            t->finish_ms = to_i64(v->str);
        else if (!strcmp(k, F(TF_ROLLBACK_TIME)))
            t->rollback_ms = to_i64(v->str);
        else if (!strcmp(k, F(TF_NEXT_CRON_TIME)))
            t->next_cron_ms = to_i64(v->str);
        else if (!strcmp(k, F(TF_NEXT_CRON_INTERVAL)))
            t->next_cron_interval_ms = to_i64(v->str);
        else if (!strcmp(k, "lease_until"))
            t->lease_until_ms = to_i64(v->str);
        else if (!strcmp(k, F(TF_WAIT_RESULT)))
            t->wait_result = (int)to_i64(v->str);
        else if (!strcmp(k, F(TF_CONCURRENT)))
            t->concurrent = (int)to_i64(v->str);
        else if (!strcmp(k, F(TF_TIMEOUT_TO_FAIL)))
            t->timeout_to_fail = to_i64(v->str);
        else if (!strcmp(k, F(TF_REQUEST_TIMEOUT)))
            t->request_timeout = to_i64(v->str);
        else if (!strcmp(k, F(TF_RETRY_INTERVAL)))
            t->retry_interval = to_i64(v->str);
        else if (!strcmp(k, F(TF_RETRY_LIMIT)))
            t->retry_limit = to_i64(v->str);
        else if (!strcmp(k, F(TF_RETRY_COUNT)))
            t->retry_count = to_i64(v->str);
    }
    int ok = !bad && t->gid && t->type >= 0 && t->status >= 0;
    for (int i = 0; ok && i < nb; i++) {
        branch *b = &t->branches[i];
        if (!b->branch_id || !b->op || b->status < 0) ok = 0;
        if (!b->url) b->url = xstrdup("");
        if (!b->data) b->data = xstrdup("");
    }
    if (!ok) {
        trans_free(t);
        return NULL;
    }
    derive_headers(t);
    return t;
}
