/* api_register.c - registerBranch: a TCC/XA branch, or a workflow branch's
 * outcome, added to a prepared transaction by one script
 * (lua/register_branch.lua); what a registration adds is one row per mode
 * (reg_parsers). */
#include "api_cas.h"
#include "api_handlers.h"
#include "auth.h"

#include "http_api.h"
#include "trans_request.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* c->gid is the gid, c->trans_type the registration's type. */
static void registered(void *arg, tstore_reply *reply, const char *err) {
    api_call *c = arg;
    const char *gid = c->gid;
    if (err) {
        api_reply_store_error(c, gid, err);
        return;
    }
    char msg[256];
    switch (reply->tag) {
        case TS_OK:
        case TS_SAME:
            api_reply_ok(c);
            break;
        case TS_DUPLICATE:
            snprintf(msg, sizeof msg, "gid %s: branch already registered with different content",
                     gid);
            api_reply_failure(c, msg);
            break;
        case TS_TOO_MANY:
            snprintf(msg, sizeof msg,
                     "gid %s: the transaction has %s branches; Limits.MaxBranches is %d", gid,
                     reply->status, c->cfg->max_branches);
            api_reply_error(c, 400, msg);
            break;
        case TS_WRONG_TYPE:
        case TS_BAD:
            api_reply_for_tag(c, RQ_REGISTER, gid, reply, trans_type_name(c->trans_type));
            break;
        default: /* absent or not prepared: dtm's words */
            snprintf(msg, sizeof msg, "no trans with gid: %s status: prepared found", gid);
            api_reply_failure(c, msg);
    }
}

/* What one registration adds, per mode: TCC [cancel, confirm] and XA
 * [rollback, commit] branches start prepared; a workflow records one
 * branch's outcome. The identity (branch id + ident_op) and the content
 * signature make a repeat harmless and a changed repeat a conflict. */
typedef struct registration {
    int n;
    const char *op[2], *url[2];
    const char *status; /* of the new branches */
    const char *ident_op;
    const char *sig[3]; /* joined with '|', then the data */
} registration;

typedef int reg_parser(yajl_val root, const dtmd_config *cfg, registration *r, char *err,
                       size_t errlen);

static const char *str_field(yajl_val root, const char *name, const char *dflt) {
    yajl_val v = json_field(root, name);
    return v && YAJL_IS_STRING(v) ? v->u.string : dflt;
}

static int reg_tcc(yajl_val root, const dtmd_config *cfg, registration *r, char *err,
                   size_t errlen) {
    const char *confirm = str_field(root, "confirm", ""), *cancel = str_field(root, "cancel", "");
    if (!url_is_http(confirm) || !url_is_http(cancel))
        return snprintf(err, errlen, "confirm and cancel must be http(s) URLs"), -1;
    if (branch_url_check(cfg, confirm, "confirm", err, errlen) ||
        branch_url_check(cfg, cancel, "cancel", err, errlen))
        return -1;
    *r = (registration){2,        {"cancel", "confirm"},  {cancel, confirm}, "prepared",
                        "cancel", {confirm, cancel, NULL}};
    return 0;
}

static int reg_xa(yajl_val root, const dtmd_config *cfg, registration *r, char *err,
                  size_t errlen) {
    const char *url = str_field(root, "url", "");
    if (!*url || !url_is_http(url))
        return snprintf(err, errlen, "url is required and must be an http(s) URL"), -1;
    if (branch_url_check(cfg, url, "url", err, errlen)) return -1;
    *r = (registration){2,          {"rollback", "commit"}, {url, url}, "prepared",
                        "rollback", {url, NULL, NULL}};
    return 0;
}

static int reg_workflow(yajl_val root, const dtmd_config *cfg, registration *r, char *err,
                        size_t errlen) {
    (void)cfg;
    const char *op = str_field(root, "op", NULL), *st = str_field(root, "status", NULL);
    if (!op || !*op || !st || (strcmp(st, "succeed") != 0 && strcmp(st, "failed") != 0))
        return snprintf(err, errlen,
                        "workflow registerBranch needs op and status 'succeed' or 'failed'"),
               -1;
    *r = (registration){1, {op, NULL}, {"", NULL}, st, op, {st, NULL, NULL}};
    return 0;
}

/* One row per mode that has branches to register (the transition table's
 * RQ_REGISTER rows). */
static reg_parser *const reg_parsers[TT_COUNT] = {
    [TT_TCC] = reg_tcc, [TT_XA] = reg_xa, [TT_WORKFLOW] = reg_workflow};

void api_register_branch(api_call *c, struct evkeyvalq *q, const char *body, size_t len) {
    (void)q;
    char err[256];
    char *gid = NULL;
    yajl_val root = json_parse(body, len, err, sizeof err);
    if (!root) {
        api_reply_error(c, 400, err);
        return;
    }
    const char *bad = NULL;
    if (!YAJL_IS_OBJECT(root)) bad = "request body must be a JSON object";
    for (size_t i = 0; !bad && i < root->u.object.len; i++) {
        yajl_val v = root->u.object.values[i];
        if (v && !YAJL_IS_NULL(v) && !YAJL_IS_STRING(v)) {
            snprintf(err, sizeof err,
                     "registerBranch: %s must be a string (all values are strings)",
                     root->u.object.keys[i]);
            bad = err;
        }
    }
    const char *raw_gid = bad ? NULL : str_field(root, "gid", NULL);
    const char *type = bad ? NULL : str_field(root, "trans_type", NULL);
    const char *bid = bad ? NULL : str_field(root, "branch_id", NULL);
    const char *data = bad ? "" : str_field(root, "data", "");
    int tt = type ? trans_type_parse(type) : -1;
    registration r;
    if (bad) {
    } else if (raw_gid && !(gid = trans_clean_gid(raw_gid, c->cfg, err, sizeof err))) {
        bad = err;
    } else if (!gid) {
        bad = "gid is required";
    } else if (!bid || !*bid) {
        bad = "branch_id is required";
    } else if (!type) {
        bad = "trans_type is required";
    } else if (tt < 0 || !reg_parsers[tt]) {
        snprintf(err, sizeof err,
                 "registerBranch: trans_type '%.64s' has no branches to register (tcc, xa, "
                 "workflow)",
                 type);
        bad = err;
    } else if (reg_parsers[tt](root, c->cfg, &r, err, sizeof err)) {
        bad = err;
    }
    if (bad) {
        api_reply_error(c, 400, bad);
        free(gid);
        json_free(root);
        return;
    }
    tstore_registration reg = {.gid = gid,
                               .type = tt,
                               .from = transition_find(RQ_REGISTER, tt)->from,
                               .bid = bid,
                               .ident_op = r.ident_op,
                               .data = data,
                               .sig = r.sig,
                               .n = r.n,
                               .op = r.op,
                               .url = r.url,
                               .status = r.status,
                               .max_branches = c->cfg->max_branches};
    c->gid = gid;
    c->trans_type = tt;
    tstore_register_branch(&reg, registered, c);
    json_free(root); /* after: bid, data and r's strings point into it */
}
