/* trans.c - the transaction model, its timing, and its Redis hash mapping
 * (see trans.h). */
#include "trans.h"

#include "backoff.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *type_names[TT_COUNT] = {"saga", "msg", "tcc", "xa", "workflow"};
static const char *gstatus_names[GS_COUNT] = {"prepared", "submitted", "aborting", "succeed",
                                              "failed"};
static const char *bstatus_names[BS_COUNT] = {"prepared", "succeed", "failed"};

const char *trans_type_name(int t) {
    return t >= 0 && t < TT_COUNT ? type_names[t] : "";
}

int trans_type_parse(const char *s) {
    for (int i = 0; i < TT_COUNT; i++)
        if (strcmp(s, type_names[i]) == 0) return i;
    return -1;
}

const char *global_status_name(int s) {
    return s >= 0 && s < GS_COUNT ? gstatus_names[s] : "";
}

int global_status_parse(const char *s) {
    for (int i = 0; i < GS_COUNT; i++)
        if (strcmp(s, gstatus_names[i]) == 0) return i;
    return -1;
}

const char *branch_status_name(int s) {
    return s >= 0 && s < BS_COUNT ? bstatus_names[s] : "";
}

int branch_status_parse(const char *s) {
    for (int i = 0; i < BS_COUNT; i++)
        if (strcmp(s, bstatus_names[i]) == 0) return i;
    return -1;
}

int global_status_final(int s) {
    return s == GS_SUCCEED || s == GS_FAILED;
}

trans *trans_new(void) {
    return xcalloc(1, sizeof(trans));
}

static void branch_clear(branch *b) {
    free(b->branch_id);
    free(b->op);
    free(b->url);
    free(b->data);
}

void trans_free(trans *t) {
    if (!t) return;
    free(t->gid);
    free(t->steps);
    free(t->payloads);
    free(t->custom_data);
    free(t->query_prepared);
    free(t->protocol);
    free(t->rollback_reason);
    free(t->last_error);
    free(t->result);
    free(t->branch_headers);
    free(t->req_extra);
    for (int i = 0; i < t->nbranches; i++) branch_clear(&t->branches[i]);
    free(t->branches);
    for (int i = 0; i < t->nheaders; i++) free(t->header_lines[i]);
    free(t->header_lines);
    trans_drop_request(t);
    free(t);
}

void trans_drop_request(trans *t) {
    if (t && t->request) {
        json_free(t->request);
        t->request = NULL;
    }
}

branch *trans_add_branch(trans *t, const char *branch_id, const char *op, const char *url,
                         const char *data, size_t data_len, int status) {
    if (t->nbranches == t->branches_cap) {
        t->branches_cap = t->branches_cap ? t->branches_cap * 2 : 4; /* a 2-step saga */
        t->branches = xrealloc(t->branches, sizeof(branch) * (size_t)t->branches_cap);
    }
    branch *b = &t->branches[t->nbranches++];
    memset(b, 0, sizeof *b);
    b->branch_id = xstrdup(branch_id ? branch_id : "");
    b->op = xstrdup(op ? op : "");
    b->url = xstrdup(url ? url : "");
    b->data = xstrndup(data ? data : "", data ? data_len : 0);
    b->data_len = data ? data_len : 0;
    b->status = status;
    return b;
}

int url_is_http(const char *url) {
    if (!url || !*url) return 1;
    const char *rest = NULL;
    if (strncasecmp(url, "http://", 7) == 0)
        rest = url + 7;
    else if (strncasecmp(url, "https://", 8) == 0)
        rest = url + 8;
    if (!rest || !*rest || *rest == '/') return 0;
    for (const char *p = url; *p; p++)
        if ((unsigned char)*p <= ' ') return 0;
    return 1;
}

/* ---- hash mapping ---------------------------------------------------- */

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

void trans_branch_fields(const trans *t, int i, rargs *a) {
    add_branch_key(a, i, "");
    branch_def_value(&t->branches[i], a);
    trans_branch_state_field(t, i, a);
}

void trans_branch_state_field(const trans *t, int i, rargs *a) {
    add_branch_key(a, i, ".s");
    branch_state_value(&t->branches[i], a);
}

void trans_hash_fields(const trans *t, rargs *a) {
    add_pair(a, "gid", t->gid);
    add_pair(a, "trans_type", trans_type_name(t->type));
    add_pair(a, "status", global_status_name(t->status));
    if (t->steps) add_pair(a, "steps", t->steps);
    if (t->payloads) add_pair(a, "payloads", t->payloads);
    if (t->custom_data) add_pair(a, "custom_data", t->custom_data);
    if (t->query_prepared) add_pair(a, "query_prepared", t->query_prepared);
    if (t->protocol) add_pair(a, "protocol", t->protocol);
    if (t->rollback_reason) add_pair(a, "rollback_reason", t->rollback_reason);
    if (t->result) add_pair(a, "result", t->result);
    if (t->branch_headers) add_pair(a, "branch_headers", t->branch_headers);
    add_pair_nonzero(a, "create_time", t->create_ms);
    add_pair_nonzero(a, "update_time", t->update_ms);
    add_pair_nonzero(a, "finish_time", t->finish_ms);
    add_pair_nonzero(a, "rollback_time", t->rollback_ms);
    add_pair_nonzero(a, "next_cron_time", t->next_cron_ms);
    add_pair_nonzero(a, "next_cron_interval", t->next_cron_interval_ms);
    add_pair_nonzero(a, "lease_until", t->lease_until_ms);
    add_pair_nonzero(a, "wait_result", t->wait_result);
    add_pair_nonzero(a, "concurrent", t->concurrent);
    add_pair_nonzero(a, "timeout_to_fail", t->timeout_to_fail);
    add_pair_nonzero(a, "request_timeout", t->request_timeout);
    add_pair_nonzero(a, "retry_interval", t->retry_interval);
    add_pair_nonzero(a, "retry_limit", t->retry_limit);
    add_pair_nonzero(a, "retry_count", t->retry_count);
    add_pair_nonzero(a, "nb", t->nbranches);
    for (int i = 0; i < t->nbranches; i++) trans_branch_fields(t, i, a);
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

/* A branch field of the layout before "b<i>" / "b<i>.s" (one field per
 * member, "b<i>.<f>"), so transactions stored by an older dtmd still load;
 * its state fields give way to a "b<i>.s" written since. */
static void legacy_branch_field(branch *b, const char *f, const redisReply *v, int has_state) {
    if (!strcmp(f, "id"))
        set_str(&b->branch_id, v);
    else if (!strcmp(f, "op"))
        set_str(&b->op, v);
    else if (!strcmp(f, "url"))
        set_str(&b->url, v);
    else if (!strcmp(f, "data")) {
        set_str(&b->data, v);
        b->data_len = v->len;
    } else if (has_state)
        return;
    else if (!strcmp(f, "st"))
        b->status = branch_status_parse(v->str);
    else if (!strcmp(f, "ct"))
        b->create_ms = to_i64(v->str);
    else if (!strcmp(f, "ut"))
        b->update_ms = to_i64(v->str);
    else if (!strcmp(f, "ft"))
        b->finish_ms = to_i64(v->str);
    else if (!strcmp(f, "rt"))
        b->rollback_ms = to_i64(v->str);
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
    /* packed_state[i]: "b<i>.s" seen, which wins over the legacy state fields */
    char *packed_state = xcalloc((size_t)(nb ? nb : 1), 1);
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
                packed_state[idx] = 1;
            } else if (*end == '.') {
                legacy_branch_field(b, end + 1, v, packed_state[idx]);
            }
            continue;
        }
        if (!strcmp(k, "gid"))
            set_str(&t->gid, v);
        else if (!strcmp(k, "trans_type"))
            t->type = trans_type_parse(v->str);
        else if (!strcmp(k, "status"))
            t->status = global_status_parse(v->str);
        else if (!strcmp(k, "steps"))
            set_str(&t->steps, v);
        else if (!strcmp(k, "payloads"))
            set_str(&t->payloads, v);
        else if (!strcmp(k, "custom_data"))
            set_str(&t->custom_data, v);
        else if (!strcmp(k, "query_prepared"))
            set_str(&t->query_prepared, v);
        else if (!strcmp(k, "protocol"))
            set_str(&t->protocol, v);
        else if (!strcmp(k, "rollback_reason"))
            set_str(&t->rollback_reason, v);
        else if (!strcmp(k, "last_error"))
            set_str(&t->last_error, v);
        else if (!strcmp(k, "result"))
            set_str(&t->result, v);
        else if (!strcmp(k, "branch_headers"))
            set_str(&t->branch_headers, v);
        else if (!strcmp(k, "create_time"))
            t->create_ms = to_i64(v->str);
        else if (!strcmp(k, "update_time"))
            t->update_ms = to_i64(v->str);
        else if (!strcmp(k, "finish_time"))
            t->finish_ms = to_i64(v->str);
        else if (!strcmp(k, "rollback_time"))
            t->rollback_ms = to_i64(v->str);
        else if (!strcmp(k, "next_cron_time"))
            t->next_cron_ms = to_i64(v->str);
        else if (!strcmp(k, "next_cron_interval"))
            t->next_cron_interval_ms = to_i64(v->str);
        else if (!strcmp(k, "lease_until"))
            t->lease_until_ms = to_i64(v->str);
        else if (!strcmp(k, "wait_result"))
            t->wait_result = (int)to_i64(v->str);
        else if (!strcmp(k, "concurrent"))
            t->concurrent = (int)to_i64(v->str);
        else if (!strcmp(k, "timeout_to_fail"))
            t->timeout_to_fail = to_i64(v->str);
        else if (!strcmp(k, "request_timeout"))
            t->request_timeout = to_i64(v->str);
        else if (!strcmp(k, "retry_interval"))
            t->retry_interval = to_i64(v->str);
        else if (!strcmp(k, "retry_limit"))
            t->retry_limit = to_i64(v->str);
        else if (!strcmp(k, "retry_count"))
            t->retry_count = to_i64(v->str);
    }
    free(packed_state);
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

/* ---- timing ---------------------------------------------------------- */

int64_t trans_base_interval_ms(const trans *t, const dtmd_config *cfg) {
    return backoff_base(t->retry_interval * 1000, t->timeout_to_fail * 1000,
                        (int64_t)(cfg->retry_interval * 1000),
                        (int64_t)(cfg->retry_max_interval * 1000));
}

int64_t trans_request_timeout_ms(const trans *t, const dtmd_config *cfg) {
    return t->request_timeout > 0 ? t->request_timeout * 1000
                                  : (int64_t)(cfg->request_timeout * 1000);
}

int64_t trans_timeout_ms(const trans *t, const dtmd_config *cfg) {
    if (t->timeout_to_fail > 0) return t->timeout_to_fail * 1000;
    if (t->type == TT_SAGA || t->type == TT_WORKFLOW) return 0;
    return (int64_t)(cfg->timeout_to_fail * 1000);
}

int trans_timed_out(const trans *t, const dtmd_config *cfg, int64_t now) {
    int64_t to = trans_timeout_ms(t, cfg);
    return to > 0 && now - t->create_ms >= to;
}
