/* transition.c - the table of what each request may do to each type of
 * stored transaction (transition.h says why it is the only one).
 *
 * Where dtm refuses a request by status ("cannot abort", "cannot submit") the
 * row exists with the statuses that allow it, so the refusal is dtm's 409;
 * a row that is absent means the request never applies to that type, and a
 * request naming another type than the stored one is refused with 400. */
#include "transition.h"

#include "trans.h"

#include <stddef.h>
#include <string.h>

#define UNFINISHED "prepared,submitted,aborting"
#define ANY "prepared,submitted,aborting,succeed,failed"

/* to: -1 unchanged, -2 given by the request */
static const transition submit_row = {"prepared,submitted", GS_SUBMITTED, 1, 0};
static const transition prepare_row = {"prepared", -1, 0, 0};
static const transition abort_phase2 = {"prepared,aborting", GS_ABORTING, 1, 0};
static const transition abort_msg = {"prepared", GS_FAILED, 1, 1};
static const transition abort_never = {"", -1, 0, 0};
static const transition register_row = {"prepared", -1, 0, 0};
static const transition workflow_submit_row = {"prepared", -2, 0, 1};
static const transition prepare_workflow_row = {ANY, -1, 0, 0};
static const transition force_stop_row = {UNFINISHED, GS_FAILED, 0, 1};
static const transition reset_cron_row = {UNFINISHED, -1, 0, 0};
static const transition reset_cron_final_row = {"succeed,failed", -1, 0, 0};

static const transition *const table[RQ_COUNT][TT_COUNT] = {
    /*                      saga            msg           tcc            xa             workflow */
    [RQ_SUBMIT] = {&submit_row, &submit_row, &submit_row, &submit_row, NULL},
    [RQ_PREPARE] = {&prepare_row, &prepare_row, &prepare_row, &prepare_row, &prepare_row},
    [RQ_ABORT] = {&abort_never, &abort_msg, &abort_phase2, &abort_phase2, &abort_never},
    [RQ_REGISTER] = {NULL, NULL, &register_row, &register_row, &register_row},
    [RQ_WORKFLOW_SUBMIT] = {NULL, NULL, NULL, NULL, &workflow_submit_row},
    [RQ_PREPARE_WORKFLOW] = {NULL, NULL, NULL, NULL, &prepare_workflow_row},
    [RQ_FORCE_STOP] = {&force_stop_row, &force_stop_row, &force_stop_row, &force_stop_row,
                       &force_stop_row},
    [RQ_RESET_CRON] = {&reset_cron_row, &reset_cron_row, &reset_cron_row, &reset_cron_row,
                       &reset_cron_row},
    [RQ_RESET_CRON_FINAL] = {&reset_cron_final_row, &reset_cron_final_row, &reset_cron_final_row,
                             &reset_cron_final_row, &reset_cron_final_row},
};

static const char *const request_names[RQ_COUNT] = {
    "submit",
    "prepare",
    "abort",
    "registerBranch",
    "submit",
    "prepareWorkflow",
    "forceStop",
    "resetNextCronTime",
    "resetNextCronTime",
};

const transition *transition_find(trans_request rq, int type) {
    if ((unsigned)rq >= RQ_COUNT || type < 0 || type >= TT_COUNT) return NULL;
    return table[rq][type];
}

const char *trans_request_name(trans_request rq) {
    return (unsigned)rq < RQ_COUNT ? request_names[rq] : "?";
}

int transition_allows(const transition *row, int stored_status) {
    const char *name = global_status_name(stored_status);
    size_t n = strlen(name);
    for (const char *p = row->from; *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && memcmp(p, name, n) == 0) return 1;
        if (!end) break;
        p = end + 1;
    }
    return 0;
}

transition_verdict transition_check(trans_request rq, int req_type, int stored_type,
                                    int stored_status) {
    if (stored_type < 0 || stored_status < 0) return TV_NOT_FOUND;
    if (req_type >= 0 && req_type != stored_type) return TV_WRONG_TYPE;
    const transition *row = transition_find(rq, stored_type);
    if (!row) return TV_NO_SUCH;
    return transition_allows(row, stored_status) ? TV_OK : TV_CONFLICT;
}
