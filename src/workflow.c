/* workflow.c - workflow decisions (docs/modes.md#workflow).
 *
 * A workflow runs inside the application (the SDK); dtmd only records its
 * progress (registerBranch) and outcome (submit). If the application dies
 * before submitting, the retry scanner finds the workflow unfinished and
 * calls the SDK's resume URL (query_prepared) with branch_id "00", op = the
 * workflow name and body = its base64-decoded input, both from custom_data
 * {"name","data"}; the SDK then replays the recorded progress and submits.
 * The answer never changes the state here: it only sets when to call again
 * (an error backs off). */
#include "log.h"
#include "mode.h"

#include <stdlib.h>
#include <string.h>

/* The resume call's op and body, decoded once per pass. */
static void workflow_plan(mode_plan *pl, const trans *t) {
    if (global_status_final(t->status)) return; /* nothing to resume */
    const char *name = "", *data = "";
    char err[64];
    yajl_val root = NULL;
    if (t->custom_data && t->custom_data[0]) {
        root = json_parse(t->custom_data, strlen(t->custom_data), err, sizeof err);
        yajl_val v;
        if ((v = json_field(root, "name")) && YAJL_IS_STRING(v)) name = v->u.string;
        if ((v = json_field(root, "data")) && YAJL_IS_STRING(v)) data = v->u.string;
    }
    pl->resume_op = xstrdup(name);
    pl->resume_input = base64_decode(data, strlen(data), &pl->resume_len);
    if (!pl->resume_input) {
        log_warn("gid %s: workflow custom_data.data is not base64; resuming with no input", t->gid);
        pl->resume_len = 0;
    }
    if (root) json_free(root);
}

static void workflow_decide(const trans *t, const mode_pass *v, mode_decision *d) {
    if (global_status_final(t->status) || v->special_called) return;
    d->special = 1;
    d->special_url = t->query_prepared;
    d->special_op = v->plan->resume_op ? v->plan->resume_op : "";
    d->special_body = v->plan->resume_input;
    d->special_len = v->plan->resume_len;
}

static void workflow_result(const trans *t, const mode_pass *v, int bi, branch_outcome o,
                            const char *body, size_t len, mode_effect *e, sbuf *text) {
    (void)v;
    (void)bi;
    e->record = 1;
    if (o != BR_SUCCESS) {
        e->halt = 1;
        mode_halt_text(text, t->query_prepared, o, body, len);
    }
}

const mode_ops workflow_mode = {workflow_plan, workflow_decide, workflow_result, 0};
