/* test_transition.c - the request transition table (transition.c), every
 * cell: each request x the type it names x the stored type x the stored
 * status, against the rules written out once more here as the spec
 * (docs/requests.md). */
#include "unit.h"

#include "transition.h"
#include "trans.h"

/* Statuses a request may act on, per stored type; NULL: never applies. */
static const char *const spec[RQ_COUNT][TT_COUNT] = {
    /*                 saga                  msg                   tcc                   xa workflow
     */
    [RQ_SUBMIT] = {"prepared,submitted", "prepared,submitted", "prepared,submitted",
                   "prepared,submitted", NULL},
    [RQ_PREPARE] = {"prepared", "prepared", "prepared", "prepared", "prepared"},
    [RQ_ABORT] = {"", "prepared", "prepared,aborting", "prepared,aborting", ""},
    [RQ_REGISTER] = {NULL, NULL, "prepared", "prepared", "prepared"},
    [RQ_WORKFLOW_SUBMIT] = {NULL, NULL, NULL, NULL, "prepared"},
    [RQ_PREPARE_WORKFLOW] = {NULL, NULL, NULL, NULL, "prepared,submitted,aborting,succeed,failed"},
    [RQ_FORCE_STOP] = {"prepared,submitted,aborting", "prepared,submitted,aborting",
                       "prepared,submitted,aborting", "prepared,submitted,aborting",
                       "prepared,submitted,aborting"},
    [RQ_RESET_CRON] = {"prepared,submitted,aborting", "prepared,submitted,aborting",
                       "prepared,submitted,aborting", "prepared,submitted,aborting",
                       "prepared,submitted,aborting"},
    [RQ_RESET_CRON_FINAL] = {"succeed,failed", "succeed,failed", "succeed,failed", "succeed,failed",
                             "succeed,failed"},
};

static int listed(const char *list, const char *s) {
    size_t n = strlen(s);
    for (const char *p = list; (p = strstr(p, s)); p += n)
        if ((p == list || p[-1] == ',') && (p[n] == ',' || p[n] == '\0')) return 1;
    return 0;
}

void test_transition_table(void) {
    int cells = 0;
    for (int rq = 0; rq < RQ_COUNT; rq++)
        for (int req_type = -1; req_type < TT_COUNT; req_type++)
            for (int type = 0; type < TT_COUNT; type++)
                for (int st = 0; st < GS_COUNT; st++) {
                    transition_verdict want;
                    if (req_type >= 0 && req_type != type)
                        want = TV_WRONG_TYPE;
                    else if (!spec[rq][type])
                        want = TV_NO_SUCH;
                    else if (listed(spec[rq][type], global_status_name(st)))
                        want = TV_OK;
                    else
                        want = TV_CONFLICT;
                    transition_verdict got = transition_check(rq, req_type, type, st);
                    if (got != want)
                        fprintf(stderr, "  %s by %s on %s %s: verdict %d, want %d\n",
                                trans_request_name(rq),
                                req_type < 0 ? "-" : trans_type_name(req_type),
                                trans_type_name(type), global_status_name(st), got, want);
                    CHECK_INT(got, want);
                    cells++;
                }
    CHECK_INT(cells, RQ_COUNT * (TT_COUNT + 1) * TT_COUNT * GS_COUNT);
    /* nothing stored */
    CHECK_INT(transition_check(RQ_SUBMIT, TT_SAGA, -1, -1), TV_NOT_FOUND);
    CHECK_INT(transition_check(RQ_ABORT, TT_TCC, TT_TCC, -1), TV_NOT_FOUND);
    /* out of range */
    CHECK(transition_find(RQ_COUNT, TT_SAGA) == NULL);
    CHECK(transition_find(RQ_SUBMIT, TT_COUNT) == NULL);
    CHECK(transition_find(RQ_SUBMIT, -1) == NULL);
}

/* What each row does once allowed: the new status, drive, cancel. */
void test_transition_rows(void) {
    const transition *r;
    for (int t = TT_SAGA; t <= TT_XA; t++) {
        r = transition_find(RQ_SUBMIT, t);
        CHECK(r && r->to == GS_SUBMITTED && r->drive && !r->cancel);
    }
    r = transition_find(RQ_ABORT, TT_TCC);
    CHECK(r && r->to == GS_ABORTING && r->drive && !r->cancel);
    r = transition_find(RQ_ABORT, TT_XA);
    CHECK(r && r->to == GS_ABORTING && r->drive && !r->cancel);
    r = transition_find(RQ_ABORT, TT_MSG);
    CHECK(r && r->to == GS_FAILED && r->cancel);
    r = transition_find(RQ_WORKFLOW_SUBMIT, TT_WORKFLOW);
    CHECK(r && r->to == -2 && r->cancel && !r->drive);
    for (int t = 0; t < TT_COUNT; t++) {
        r = transition_find(RQ_FORCE_STOP, t);
        CHECK(r && r->to == GS_FAILED && r->cancel && !r->drive);
        r = transition_find(RQ_RESET_CRON, t);
        CHECK(r && r->to == -1 && !r->cancel);
        r = transition_find(RQ_PREPARE, t);
        CHECK(r && r->to == -1 && !r->drive);
    }
    /* the Lua scripts take the same comma lists */
    r = transition_find(RQ_ABORT, TT_TCC);
    CHECK(r && transition_allows(r, GS_PREPARED) && transition_allows(r, GS_ABORTING) &&
          !transition_allows(r, GS_SUBMITTED) && !transition_allows(r, GS_FAILED));
    CHECK_STR(trans_request_name(RQ_REGISTER), "registerBranch");
    CHECK_STR(trans_request_name(RQ_COUNT), "?");
}
