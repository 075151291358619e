/* trans.c - the transaction model and its timing (see trans.h). */
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
