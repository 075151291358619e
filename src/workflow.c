/* workflow.c - workflow pass logic (PROTOCOL.md 4.6).
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
#include "modes.h"

#include <stdlib.h>
#include <string.h>

static void workflow_advance(pass *p) {
    trans *t = p->t;
    static char called; /* p->mode = &called: the resume call was made in this pass */
    if (global_status_final(t->status) || p->mode) return;
    p->mode = &called;
    const char *name = "", *data = "";
    char err[64];
    yajl_val root = NULL;
    if (t->custom_data && t->custom_data[0]) {
        root = json_parse(t->custom_data, strlen(t->custom_data), err, sizeof err);
        yajl_val v;
        if ((v = json_field(root, "name")) && YAJL_IS_STRING(v)) name = v->u.string;
        if ((v = json_field(root, "data")) && YAJL_IS_STRING(v)) data = v->u.string;
    }
    size_t len = 0;
    char *input = base64_decode(data, strlen(data), &len);
    if (!input) {
        log_warn("gid %s: workflow custom_data.data is not base64; resuming with no input", t->gid);
        len = 0;
    }
    pass_call_special(p, t->query_prepared, name, input, len);
    free(input);
    if (root) json_free(root);
}

static void workflow_on_result(pass *p, int bi, branch_outcome o, long status, const char *body,
                               size_t len) {
    (void)bi;
    (void)status;
    if (o != BR_SUCCESS) pass_halt(p, o, p->t->query_prepared, body, len);
    pass_record_result(p, -1, -1, o);
}

const pass_ops workflow_ops = {workflow_advance, workflow_on_result, NULL, NULL};
