/* api_workflow.c - prepareWorkflow and a workflow's submit, which carries
 * the outcome the client reached (docs/protocol.md#endpoints). */
#include "api_cas.h"
#include "api_handlers.h"

#include "engine.h"
#include "http_api.h"
#include "trans_json.h"

#include <stdlib.h>
#include <string.h>

static void workflow_loaded(void *arg, tstore_reply *reply, const char *err) {
    api_call *c = arg;
    if (err) {
        api_reply_store_error(c, c->t->gid, err);
        return;
    }
    const trans *t = reply->t;
    if (!t) {
        api_reply_error(c, 500, "stored transaction vanished or is malformed");
        return;
    }
    sbuf b;
    sb_init(&b);
    trans_answer_json(t, "progresses", &b);
    api_reply_json(c, 200, b.ptr);
    sb_free(&b);
}

static void workflow_saved(void *arg, tstore_reply *reply, const char *err) {
    api_call *c = arg;
    if (err) {
        api_reply_store_error(c, c->t->gid, err);
        return;
    }
    if (reply->tag == TS_BAD) {
        api_reply_error(c, 500, "unexpected reply from store");
        return;
    }
    if (reply->tag != TS_OK) {
        transition_verdict v =
            transition_check(RQ_PREPARE_WORKFLOW, TT_WORKFLOW, trans_type_parse(reply->type),
                             global_status_parse(reply->status));
        if (v != TV_OK) {
            api_reply_refused(c, RQ_PREPARE_WORKFLOW, c->t->gid, v, reply->status, reply->type,
                              "workflow");
            return;
        }
    }
    tstore_load(c->t->gid, workflow_loaded, c);
}

void api_prepare_workflow(api_call *c, struct evkeyvalq *q, const char *body, size_t len) {
    (void)q;
    if (api_parse_trans(c, body, len)) return;
    if (c->t->type != TT_WORKFLOW) {
        api_reply_error(c, 400, "prepareWorkflow needs trans_type 'workflow'");
        return;
    }
    trans *t = c->t;
    int64_t now = now_ms();
    t->status = GS_PREPARED;
    t->create_ms = t->update_ms = now;
    t->next_cron_interval_ms = trans_base_interval_ms(t, c->cfg);
    t->next_cron_ms = now + t->next_cron_interval_ms;
    /* prepared: nobody drives it */
    tstore_save_new(t, t->next_cron_ms, c->cfg->data_expire, 0, workflow_saved, c);
}

static void workflow_submitted(void *arg, tstore_reply *reply, const char *err) {
    api_call *c = arg;
    if (err) {
        api_reply_store_error(c, c->t->gid, err);
        return;
    }
    if (reply->tag == TS_OK) {
        engine_cancel(c->t->gid, c->t->status, "workflow submitted");
        api_reply_ok(c);
    } else if (reply->tag == TS_NOT_FOUND) {
        api_reply_error(c, 404, "no such workflow: call prepareWorkflow first");
    } else {
        api_reply_for_tag(c, RQ_WORKFLOW_SUBMIT, c->t->gid, reply, "workflow");
    }
}

/* Workflow submit carries the outcome the client reached: prepared ->
 * succeed/failed directly, merged into the stored record (12.2). */
void api_workflow_submit(api_call *c) {
    trans *t = c->t;
    char err[256];
    yajl_val extra = NULL;
    const char *status = NULL, *reason = NULL, *result = NULL;
    if (t->req_extra) extra = json_parse(t->req_extra, strlen(t->req_extra), err, sizeof err);
    yajl_val v;
    if ((v = json_field(extra, "status"))) status = v->u.string;
    if ((v = json_field(extra, "rollback_reason"))) reason = v->u.string;
    if ((v = json_field(extra, "result"))) result = v->u.string;
    if (!status || (strcmp(status, "succeed") != 0 && strcmp(status, "failed") != 0)) {
        if (extra) json_free(extra);
        api_reply_error(c, 400, "workflow submit needs req_extra.status 'succeed' or 'failed'");
        return;
    }
    int64_t now = now_ms();
    t->status = global_status_parse(status);
    rargs f;
    ra_init(&f);
    trans_set(&f, TF_STATUS, status);
    trans_set_int(&f, TF_UPDATE_TIME, now);
    trans_set_int(&f, strcmp(status, "succeed") == 0 ? TF_FINISH_TIME : TF_ROLLBACK_TIME, now);
    if (reason && *reason) {
        trans_set(&f, TF_ROLLBACK_REASON, reason);
    }
    if (result && *result) {
        trans_set(&f, TF_RESULT, result);
    }
    if (extra) json_free(extra);
    api_cas(t->gid, "workflow", transition_find(RQ_WORKFLOW_SUBMIT, TT_WORKFLOW), -1,
            c->cfg->finished_data_expire, &f, workflow_submitted, c);
}
