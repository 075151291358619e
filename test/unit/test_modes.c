/* test_modes.c - the modes' decision tables (src/mode.h, docs/modes.md).
 *
 * Each row builds a transaction in memory and what the pass knows, asks the
 * mode once, and compares the answer written as text:
 *   decide:  "wait" (nothing now), "call action0 action1" (branches by op and
 *            branch id, in call order), "special <op>" (query_prepared /
 *            resume), "postpone <ms after creation>", "-> <status>";
 *   result:  the effect's parts in a fixed order: new branch status,
 *            "record", "retry", "exhausted", "halt", "fail", "base",
 *            "-> <status>"; and the message exactly.
 * Branch states are one letter per branch: p prepared, s succeed, f failed;
 * upper case gives the branch an empty URL (mode_settle). Saga: b1 = the
 * actions, b2 = the compensates (per step); msg: b1 = the actions; TCC: b1 =
 * confirms, b2 = cancels (per registered branch); XA: commits, rollbacks.
 * Every transaction was created at T0, times out after 10 s, and "age" is
 * how many seconds later the decision is asked. */
#include "unit.h"

#include "mode.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define T0 1700000000000LL
#define MAXB 32

enum { EXHAUSTED = 1, SPECIAL = 2, POSTPONED = 4 };

static dtmd_config mcfg;

static void cfg_once(void) {
    static int done;
    if (!done) config_defaults(&mcfg);
    done = 1;
}

static int bstatus(char c) {
    switch (tolower((unsigned char)c)) {
        case 's':
            return BS_SUCCEED;
        case 'f':
            return BS_FAILED;
        default:
            return BS_PREPARED;
    }
}

static void add(trans *t, const char *op, int i, char state) {
    char id[16], url[64];
    snprintf(id, sizeof id, "%d", i);
    snprintf(url, sizeof url, "http://%s/%d", op, i);
    trans_add_branch(t, id, op, isupper((unsigned char)state) ? "" : url, "{}", 2, bstatus(state));
}

static trans *build(int type, int status, const char *b1, const char *b2, const char *custom,
                    int concurrent) {
    trans *t = trans_new();
    t->gid = xstrdup("g");
    t->type = type;
    t->status = status;
    t->create_ms = t->update_ms = T0;
    t->timeout_to_fail = 10;
    t->concurrent = concurrent;
    t->query_prepared = xstrdup("http://q");
    if (custom) t->custom_data = xstrdup(custom);
    int n = b1 ? (int)strlen(b1) : 0;
    for (int i = 0; i < n; i++) {
        char second = b2 && b2[i] ? b2[i] : 'p';
        switch (type) {
            case TT_SAGA:
                add(t, "compensate", i, second);
                add(t, "action", i, b1[i]);
                break;
            case TT_MSG:
                add(t, "action", i, b1[i]);
                break;
            case TT_TCC:
                add(t, "cancel", i, second);
                add(t, "confirm", i, b1[i]);
                break;
            case TT_XA:
                add(t, "rollback", i, second);
                add(t, "commit", i, b1[i]);
                break;
            default:
                add(t, "action", i, b1[i]);
                break;
        }
    }
    return t;
}

static void branch_name(const trans *t, int bi, char *out, size_t n) {
    snprintf(out, n, "%s%s", t->branches[bi].op, t->branches[bi].branch_id);
}

static int find_branch(const trans *t, const char *name) {
    char b[64];
    for (int i = 0; i < t->nbranches; i++) {
        branch_name(t, i, b, sizeof b);
        if (strcmp(b, name) == 0) return i;
    }
    fprintf(stderr, "  no branch %s in the test transaction\n", name);
    unit_failures++;
    return -1;
}

/* names: space-separated branch names -> started[] */
static void mark(const trans *t, const char *names, unsigned char *started) {
    memset(started, 0, MAXB);
    if (!names) return;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", names);
    for (char *tok = strtok(buf, " "); tok; tok = strtok(NULL, " ")) {
        int bi = find_branch(t, tok);
        if (bi >= 0) started[bi] = 1;
    }
}

static void fmt_decision(const trans *t, const mode_decision *d, char *out, size_t n) {
    size_t at = 0;
    out[0] = '\0';
    if (d->ncalls > 0) {
        at += (size_t)snprintf(out, n, "call");
        for (int k = 0; k < d->ncalls && at < n; k++) {
            char b[64];
            branch_name(t, d->calls[k], b, sizeof b);
            at += (size_t)snprintf(out + at, n - at, " %s", b);
        }
    }
    if (d->special && at < n)
        at += (size_t)snprintf(out + at, n - at, "%sspecial %s", at ? " + " : "", d->special_op);
    if (d->postpone_until > 0 && at < n)
        at += (size_t)snprintf(out + at, n - at, "%spostpone %lld", at ? " + " : "",
                               (long long)(d->postpone_until - t->create_ms));
    if (d->status >= 0 && at < n)
        at += (size_t)snprintf(out + at, n - at, "%s-> %s", at ? " + " : "",
                               global_status_name(d->status));
    if (at == 0) snprintf(out, n, "wait");
}

static void fmt_effect(const mode_effect *e, char *out, size_t n) {
    size_t at = 0;
    out[0] = '\0';
#define PART(cond, ...)                                                                            \
    if ((cond) && at < n) at += (size_t)snprintf(out + at, n - at, __VA_ARGS__)
    PART(e->branch_status >= 0, "%s ", branch_status_name(e->branch_status));
    PART(e->record, "record ");
    PART(e->retry, "retry ");
    PART(e->retry_exhausted, "exhausted ");
    PART(e->halt, "halt ");
    PART(e->fail, "fail ");
    PART(e->base_interval, "base ");
    PART(e->status >= 0, "-> %s ", global_status_name(e->status));
#undef PART
    if (at > 0 && at <= n) out[at - 1] = '\0'; /* the last space */
}

/* What a row says about the pass beyond the transaction. */
typedef struct pass_facts {
    const char *started; /* branches called in this pass */
    int calls;           /* in flight */
    int flags;           /* EXHAUSTED, SPECIAL, POSTPONED */
    int halted;          /* branch_outcome */
    const char *fail_msg;
    int age; /* seconds since creation */
} pass_facts;

typedef struct world {
    trans *t;
    const mode_ops *m;
    mode_plan plan;
    unsigned char started[MAXB];
    int calls[MAXB];
    mode_pass v;
} world;

static void world_init(world *w, trans *t, const pass_facts *f) {
    w->t = t;
    w->m = mode_for(t->type);
    memset(&w->plan, 0, sizeof w->plan);
    if (w->m->plan) w->m->plan(&w->plan, t);
    mark(t, f->started, w->started);
    mode_pass v = {
        .cfg = &mcfg,
        .plan = &w->plan,
        .now = T0 + (int64_t)f->age * 1000,
        .started = w->started,
        .calls = f->calls,
        .special_called = !!(f->flags & SPECIAL),
        .postponed = !!(f->flags & POSTPONED),
        .halted = f->halted,
        .retry_exhausted = !!(f->flags & EXHAUSTED),
        .fail_msg = f->fail_msg,
    };
    w->v = v;
}

static void world_free(world *w) {
    mode_plan_free(&w->plan);
    trans_free(w->t);
}

/* ---- decide ----------------------------------------------------------- */

typedef struct drow {
    int type, status;
    const char *b1, *b2, *custom;
    int concurrent; /* msg */
    pass_facts f;
    int64_t retry_limit;
    const char *want;
    const char *reason; /* NULL: none */
} drow;

static void run_decide(const char *table, const drow *rows, size_t n) {
    for (size_t i = 0; i < n; i++) {
        const drow *r = &rows[i];
        world w;
        trans *t = build(r->type, r->status, r->b1, r->b2, r->custom, r->concurrent);
        t->retry_limit = r->retry_limit;
        world_init(&w, t, &r->f);
        int before[MAXB];
        for (int k = 0; k < t->nbranches; k++) before[k] = t->branches[k].status;
        mode_decision d;
        mode_decision_init(&d, w.calls);
        w.m->decide(t, &w.v, &d);
        char got[256];
        fmt_decision(t, &d, got, sizeof got);
        int bad = strcmp(got, r->want) != 0;
        if (r->reason ? !d.reason || strcmp(d.reason, r->reason) != 0 : d.reason != NULL) bad = 1;
        for (int k = 0; k < t->nbranches; k++)
            if (t->branches[k].status != before[k]) bad = 1; /* decide must not write */
        if (t->status != r->status) bad = 1;
        if (bad) {
            fprintf(stderr,
                    "  %s row %zu (%s, %s %s/%s): got \"%s\" reason \"%s\", want \"%s\" reason "
                    "\"%s\"\n",
                    table, i + 1, trans_type_name(r->type), global_status_name(r->status),
                    r->b1 ? r->b1 : "", r->b2 ? r->b2 : "", got, d.reason ? d.reason : "(none)",
                    r->want, r->reason ? r->reason : "(none)");
            unit_failures++;
        }
        world_free(&w);
    }
}

#define ROWS(a) a, sizeof a / sizeof a[0]
#define ORDERS "{\"concurrent\":true,\"orders\":{\"2\":[0,1]}}"
#define CONC "{\"concurrent\":true}"

static const drow saga_decide_rows[] = {
    /* not yet submitted, or finished: nothing */
    {TT_SAGA, GS_PREPARED, "pp", "pp", .want = "wait"},
    {TT_SAGA, GS_SUCCEED, "ss", "pp", .want = "wait"},
    {TT_SAGA, GS_FAILED, "fp", "sp", .want = "wait"},
    /* submitted, sequential: one action at a time, in order */
    {TT_SAGA, GS_SUBMITTED, "pp", "pp", .want = "call action0"},
    {TT_SAGA, GS_SUBMITTED, "sp", "pp", .want = "call action1"},
    {TT_SAGA, GS_SUBMITTED, "ss", "pp", .want = "-> succeed"},
    {TT_SAGA, GS_SUBMITTED, "", "", .want = "-> succeed"}, /* no steps */
    /* called in this pass: in flight, or answered ONGOING / an error */
    {TT_SAGA, GS_SUBMITTED, "sp", "pp", .f = {"action1", 1}, .want = "wait"},
    {TT_SAGA, GS_SUBMITTED, "sp", "pp", .f = {"action1"}, .want = "wait"},
    /* an action failed: roll back, with its answer as the reason */
    {TT_SAGA, GS_SUBMITTED, "fp", "pp",
     .f = {"action0", .fail_msg = "url:x return failed: no FAILURE"}, .want = "-> aborting",
     .reason = "url:x return failed: no FAILURE"},
    {TT_SAGA, GS_SUBMITTED, "sf", "pp", .want = "-> aborting", .reason = "fail message lost"},
    /* timed out: roll back, even when every action succeeded */
    {TT_SAGA, GS_SUBMITTED, "sp", "pp", .f = {.age = 10}, .want = "-> aborting",
     .reason = "Timeout after 10 seconds"},
    {TT_SAGA, GS_SUBMITTED, "ss", "pp", .f = {.age = 10}, .want = "-> aborting",
     .reason = "Timeout after 10 seconds"},
    {TT_SAGA, GS_SUBMITTED, "sp", "pp", .f = {.age = 9}, .want = "call action1"},
    /* retry_limit ran out */
    {TT_SAGA, GS_SUBMITTED, "sp", "pp", .f = {"action1", .flags = EXHAUSTED}, .retry_limit = 2,
     .want = "-> aborting", .reason = "RetryCount is greater than RetryLimit, RetryLimit: 2"},
    /* concurrent: every runnable action at once; the outcome waits for all */
    {TT_SAGA, GS_SUBMITTED, "ppp", "ppp", CONC, .want = "call action0 action1 action2"},
    {TT_SAGA, GS_SUBMITTED, "ppp", "ppp", CONC, .f = {"action0 action1 action2", 3},
     .want = "wait"},
    {TT_SAGA, GS_SUBMITTED, "fpp", "ppp", CONC, .f = {"action0 action1 action2", 2},
     .want = "wait"},
    {TT_SAGA, GS_SUBMITTED, "fsp", "ppp", CONC, .f = {"action0 action1 action2", .fail_msg = "x"},
     .want = "-> aborting", .reason = "x"},
    {TT_SAGA, GS_SUBMITTED, "sps", "ppp", CONC, .f = {"action1", 1, EXHAUSTED}, .want = "wait"},
    {TT_SAGA, GS_SUBMITTED, "sss", "ppp", CONC, .want = "-> succeed"},
    /* concurrent with orders: step 2 waits for steps 0 and 1 */
    {TT_SAGA, GS_SUBMITTED, "ppp", "ppp", ORDERS, .want = "call action0 action1"},
    {TT_SAGA, GS_SUBMITTED, "spp", "ppp", ORDERS, .f = {"action1", 1}, .want = "wait"},
    {TT_SAGA, GS_SUBMITTED, "ssp", "ppp", ORDERS, .want = "call action2"},
    {TT_SAGA, GS_SUBMITTED, "fpp", "ppp", ORDERS, .want = "-> aborting",
     .reason = "fail message lost"},
    /* aborting, sequential: compensate every step whose action may have
     * run, from the last one back */
    {TT_SAGA, GS_ABORTING, "fp", "pp", .want = "call compensate0"},
    {TT_SAGA, GS_ABORTING, "sf", "pp", .want = "call compensate1"},
    {TT_SAGA, GS_ABORTING, "sf", "ps", .want = "call compensate0"},
    {TT_SAGA, GS_ABORTING, "sf", "ss", .want = "-> failed"},
    {TT_SAGA, GS_ABORTING, "sp", "pp", .want = "call compensate1"}, /* action1 may have run */
    {TT_SAGA, GS_ABORTING, "pp", "pp", .want = "call compensate0"}, /* timed out before a call */
    {TT_SAGA, GS_ABORTING, "fp", "sp", .want = "-> failed"},        /* action1 never ran */
    {TT_SAGA, GS_ABORTING, "sf", "pp", .f = {"compensate1", 1}, .want = "wait"},
    {TT_SAGA, GS_ABORTING, "sf", "pp", .f = {"compensate1"}, .want = "wait"}, /* failing: later */
    {TT_SAGA, GS_ABORTING, "sf", "ps", .f = {"compensate0"}, .want = "wait"},
    /* aborting, concurrent: a step after every step that depends on it */
    {TT_SAGA, GS_ABORTING, "fsp", "ppp", CONC, .want = "call compensate2 compensate1 compensate0"},
    {TT_SAGA, GS_ABORTING, "ssf", "ppp", ORDERS, .want = "call compensate2"},
    {TT_SAGA, GS_ABORTING, "ssf", "pps", ORDERS, .want = "call compensate1 compensate0"},
    {TT_SAGA, GS_ABORTING, "ssf", "sss", ORDERS, .want = "-> failed"},
    {TT_SAGA, GS_ABORTING, "fpp", "ppp", ORDERS, .want = "call compensate1 compensate0"},
};

static const drow msg_decide_rows[] = {
    /* prepared: ask query_prepared once it timed out, once per pass */
    {TT_MSG, GS_PREPARED, "pp", .f = {.age = 9}, .want = "wait"},
    {TT_MSG, GS_PREPARED, "pp", .f = {.age = 10}, .want = "special msg"},
    {TT_MSG, GS_PREPARED, "pp", .f = {.age = 10, .flags = SPECIAL}, .want = "wait"},
    {TT_MSG, GS_PREPARED, "pp", .f = {.age = 10, .calls = 1}, .want = "wait"},
    /* submitted, sequential: in order, stop at the first not delivered */
    {TT_MSG, GS_SUBMITTED, "pp", .want = "call action0"},
    {TT_MSG, GS_SUBMITTED, "sp", .want = "call action1"},
    {TT_MSG, GS_SUBMITTED, "ss", .want = "-> succeed"},
    {TT_MSG, GS_SUBMITTED, "pp", .f = {"action0", 1}, .want = "wait"},
    {TT_MSG, GS_SUBMITTED, "pp", .f = {"action0"}, .want = "wait"},          /* answered: later */
    {TT_MSG, GS_SUBMITTED, "sp", .f = {.age = 100}, .want = "call action1"}, /* never times out */
    /* concurrent: every action at once */
    {TT_MSG, GS_SUBMITTED, "pp", .concurrent = 1, .want = "call action0 action1"},
    {TT_MSG, GS_SUBMITTED, "pp", .concurrent = 1, .f = {"action0"}, .want = "call action1"},
    {TT_MSG, GS_SUBMITTED, "sp", .concurrent = 1, .f = {"action1", 1}, .want = "wait"},
    {TT_MSG, GS_SUBMITTED, "pp", .concurrent = 1, .f = {"action0 action1"}, .want = "wait"},
    {TT_MSG, GS_SUBMITTED, "ss", .concurrent = 1, .want = "-> succeed"},
    /* delay: store its end as the due time, then nothing in this pass */
    {TT_MSG, GS_SUBMITTED, "pp", "", "{\"delay\":5}", .f = {.age = 2}, .want = "postpone 5000"},
    {TT_MSG, GS_SUBMITTED, "pp", "", "{\"delay\":5}", .f = {.age = 2, .flags = POSTPONED},
     .want = "wait"},
    {TT_MSG, GS_SUBMITTED, "ss", "", "{\"delay\":5}", .f = {.age = 2, .flags = POSTPONED},
     .want = "-> succeed"},
    {TT_MSG, GS_SUBMITTED, "pp", "", "{\"delay\":5}", .f = {.age = 5}, .want = "call action0"},
    {TT_MSG, GS_SUBMITTED, "pp", "", "{\"delay\":\"x\"}", .want = "call action0"},
    /* a msg never aborts; finished: nothing */
    {TT_MSG, GS_ABORTING, "pp", .want = "wait"},
    {TT_MSG, GS_SUCCEED, "ss", .want = "wait"},
    {TT_MSG, GS_FAILED, "pp", .want = "wait"},
};

static const drow phase2_decide_rows[] = {
    /* TCC: prepared past its timeout -> aborting */
    {TT_TCC, GS_PREPARED, "ppp", "ppp", .f = {.age = 9}, .want = "wait"},
    {TT_TCC, GS_PREPARED, "ppp", "ppp", .f = {.age = 10}, .want = "-> aborting",
     .reason = "Timeout after 10 seconds"},
    /* submitted: confirm one at a time from the last registered branch */
    {TT_TCC, GS_SUBMITTED, "ppp", "ppp", .want = "call confirm2"},
    {TT_TCC, GS_SUBMITTED, "pps", "ppp", .want = "call confirm1"},
    {TT_TCC, GS_SUBMITTED, "pss", "ppp", .want = "call confirm0"},
    {TT_TCC, GS_SUBMITTED, "sss", "ppp", .want = "-> succeed"},
    {TT_TCC, GS_SUBMITTED, "", "", .want = "-> succeed"},
    {TT_TCC, GS_SUBMITTED, "pps", "ppp", .f = {"confirm1", 1}, .want = "wait"},
    {TT_TCC, GS_SUBMITTED, "pps", "ppp", .f = {"confirm1"}, .want = "wait"},
    {TT_TCC, GS_SUBMITTED, "pps", "ppp", .f = {"confirm1", .halted = BR_ONGOING}, .want = "wait"},
    {TT_TCC, GS_SUBMITTED, "pps", "ppp", .f = {.age = 100}, .want = "call confirm1"},
    /* aborting: cancel, same order */
    {TT_TCC, GS_ABORTING, "ppp", "ppp", .want = "call cancel2"},
    {TT_TCC, GS_ABORTING, "ppp", "pss", .want = "call cancel0"},
    {TT_TCC, GS_ABORTING, "ppp", "sss", .want = "-> failed"},
    {TT_TCC, GS_ABORTING, "ppp", "pss", .f = {"cancel0", .halted = BR_ERROR}, .want = "wait"},
    {TT_TCC, GS_SUCCEED, "sss", "ppp", .want = "wait"},
    {TT_TCC, GS_FAILED, "ppp", "sss", .want = "wait"},
    /* XA: the same from the first registered branch */
    {TT_XA, GS_PREPARED, "ppp", "ppp", .f = {.age = 10}, .want = "-> aborting",
     .reason = "Timeout after 10 seconds"},
    {TT_XA, GS_SUBMITTED, "ppp", "ppp", .want = "call commit0"},
    {TT_XA, GS_SUBMITTED, "spp", "ppp", .want = "call commit1"},
    {TT_XA, GS_SUBMITTED, "ssp", "ppp", .f = {"commit2"}, .want = "wait"},
    {TT_XA, GS_SUBMITTED, "sss", "ppp", .want = "-> succeed"},
    {TT_XA, GS_ABORTING, "ppp", "ppp", .want = "call rollback0"},
    {TT_XA, GS_ABORTING, "ppp", "ssp", .want = "call rollback2"},
    {TT_XA, GS_ABORTING, "ppp", "sss", .want = "-> failed"},
};

#define WF "{\"name\":\"wf\",\"data\":\"e30=\"}"

static const drow workflow_decide_rows[] = {
    {TT_WORKFLOW, GS_PREPARED, "", "", WF, .want = "special wf"},
    {TT_WORKFLOW, GS_SUBMITTED, "s", "", WF, .want = "special wf"},
    {TT_WORKFLOW, GS_ABORTING, "f", "", WF, .want = "special wf"},
    {TT_WORKFLOW, GS_PREPARED, "", "", WF, .f = {.flags = SPECIAL}, .want = "wait"},
    {TT_WORKFLOW, GS_PREPARED, "", "", NULL, .want = "special "}, /* no name: op "" */
    {TT_WORKFLOW, GS_SUCCEED, "s", "", WF, .want = "wait"},
    {TT_WORKFLOW, GS_FAILED, "f", "", WF, .want = "wait"},
};

void test_modes_saga_decide(void) {
    cfg_once();
    run_decide("saga", ROWS(saga_decide_rows));
}

void test_modes_msg_decide(void) {
    cfg_once();
    run_decide("msg", ROWS(msg_decide_rows));
}

void test_modes_tcc_xa_decide(void) {
    cfg_once();
    run_decide("tcc/xa", ROWS(phase2_decide_rows));
}

void test_modes_workflow_decide(void) {
    cfg_once();
    run_decide("workflow", ROWS(workflow_decide_rows));
    /* The resume call's body is custom_data's data, decoded. */
    trans *t = build(TT_WORKFLOW, GS_PREPARED, "", "", WF, 0);
    world w;
    pass_facts f = {0};
    world_init(&w, t, &f);
    mode_decision d;
    mode_decision_init(&d, w.calls);
    w.m->decide(t, &w.v, &d);
    CHECK_INT(d.special, 1);
    CHECK_STR(d.special_url, "http://q");
    CHECK_INT(d.special_len, 2);
    CHECK(d.special_body && memcmp(d.special_body, "{}", 2) == 0);
    world_free(&w);
}

/* ---- result ----------------------------------------------------------- */

typedef struct rrow {
    int type, status;
    const char *b1, *b2;
    const char *branch; /* who answered: a branch name, or NULL for the special call */
    branch_outcome o;
    const char *body;
    pass_facts f;
    int64_t retry_limit, retry_count;
    const char *want;
    const char *text; /* the message, exactly */
} rrow;

static void run_result(const char *table, const rrow *rows, size_t n) {
    for (size_t i = 0; i < n; i++) {
        const rrow *r = &rows[i];
        world w;
        trans *t = build(r->type, r->status, r->b1, r->b2, NULL, 0);
        t->retry_limit = r->retry_limit;
        t->retry_count = r->retry_count;
        world_init(&w, t, &r->f);
        int bi = r->branch ? find_branch(t, r->branch) : -1;
        mode_effect e;
        mode_effect_init(&e);
        sbuf text;
        sb_init(&text);
        const char *body = r->body ? r->body : "";
        w.m->result(t, &w.v, bi, r->o, body, strlen(body), &e, &text);
        char got[256];
        fmt_effect(&e, got, sizeof got);
        const char *msg = text.ptr ? text.ptr : "";
        const char *want_text = r->text ? r->text : "";
        if (strcmp(got, r->want) != 0 || strcmp(msg, want_text) != 0 ||
            t->retry_count != r->retry_count) {
            fprintf(stderr,
                    "  %s row %zu (%s %s answers %s): got \"%s\" \"%s\", want \"%s\" \"%s\"\n",
                    table, i + 1, global_status_name(r->status), r->branch ? r->branch : "special",
                    branch_outcome_name(r->o), got, msg, r->want, want_text);
            unit_failures++;
        }
        sb_free(&text);
        world_free(&w);
    }
}

static const rrow saga_result_rows[] = {
    {TT_SAGA, GS_SUBMITTED, "pp", "pp", "action0", BR_SUCCESS, .want = "succeed record"},
    {TT_SAGA, GS_SUBMITTED, "pp", "pp", "action0", BR_FAILURE, "no", .want = "failed record fail",
     .text = "url:http://action/0 return failed: no FAILURE"},
    {TT_SAGA, GS_SUBMITTED, "pp", "pp", "action0", BR_FAILURE, "{\"dtm_result\":\"FAILURE\"}",
     .want = "failed record fail",
     .text = "url:http://action/0 return failed: {\"dtm_result\":\"FAILURE\"}"},
    /* only the first FAILURE of the pass is the reason */
    {TT_SAGA,
     GS_SUBMITTED,
     "fp",
     "pp",
     "action1",
     BR_FAILURE,
     "no",
     {.fail_msg = "first"},
     .want = "failed record"},
    {TT_SAGA, GS_SUBMITTED, "pp", "pp", "action0", BR_ONGOING, .want = "record"},
    {TT_SAGA, GS_SUBMITTED, "pp", "pp", "action0", BR_ERROR, .want = "record"},
    /* retry_limit: count the retry and call again, until it runs out */
    {TT_SAGA, GS_SUBMITTED, "pp", "pp", "action0", BR_ERROR, .retry_limit = 2, .retry_count = 0,
     .want = "record retry"},
    {TT_SAGA, GS_SUBMITTED, "pp", "pp", "action0", BR_ONGOING, .retry_limit = 2, .retry_count = 1,
     .want = "record retry"},
    {TT_SAGA, GS_SUBMITTED, "pp", "pp", "action0", BR_ERROR, .retry_limit = 2, .retry_count = 2,
     .want = "record exhausted"},
    {TT_SAGA, GS_SUBMITTED, "pp", "pp", "action0", BR_FAILURE, "no FAILURE", .retry_limit = 2,
     .want = "failed record fail", .text = "url:http://action/0 return failed: no FAILURE"},
    /* a compensate cannot fail: anything but success is retried later */
    {TT_SAGA, GS_ABORTING, "fp", "pp", "compensate0", BR_SUCCESS, .want = "succeed record"},
    {TT_SAGA, GS_ABORTING, "fp", "pp", "compensate0", BR_FAILURE, "no", .want = "record"},
    {TT_SAGA, GS_ABORTING, "fp", "pp", "compensate0", BR_ONGOING, .want = "record"},
    {TT_SAGA, GS_ABORTING, "fp", "pp", "compensate0", BR_ERROR, .retry_limit = 2, .want = "record"},
    /* an action's late answer after the saga turned to aborting: the same */
    {TT_SAGA, GS_ABORTING, "fp", "pp", "action1", BR_SUCCESS, .want = "succeed record"},
};

static const rrow msg_result_rows[] = {
    /* query_prepared's answers */
    {TT_MSG, GS_PREPARED, "p", "", NULL, BR_SUCCESS, .want = "-> submitted"},
    {TT_MSG, GS_PREPARED, "p", "", NULL, BR_FAILURE, "no", .want = "-> failed",
     .text = "query_prepared http://q returned FAILURE: no"},
    {TT_MSG, GS_PREPARED, "p", "", NULL, BR_ONGOING, .want = "record base"},
    {TT_MSG, GS_PREPARED, "p", "", NULL, BR_ERROR, "boom", .want = "record halt",
     .text = "url:http://q returned ERROR: boom"},
    /* deliveries: FAILURE is retried like an error */
    {TT_MSG, GS_SUBMITTED, "pp", "", "action0", BR_SUCCESS, .want = "succeed record"},
    {TT_MSG, GS_SUBMITTED, "pp", "", "action1", BR_FAILURE, "no", .want = "record halt",
     .text = "url:http://action/1 returned FAILURE: no"},
    {TT_MSG, GS_SUBMITTED, "pp", "", "action0", BR_ONGOING, .want = "record"},
    {TT_MSG, GS_SUBMITTED, "pp", "", "action0", BR_ERROR, "x", .want = "record halt",
     .text = "url:http://action/0 returned ERROR: x"},
    {TT_MSG, GS_SUBMITTED, "pp", "", "action0", BR_ERROR, .retry_limit = 1, .retry_count = 1,
     .want = "record halt", .text = "url:http://action/0 returned ERROR: "},
};

static const rrow phase2_result_rows[] = {
    {TT_TCC, GS_SUBMITTED, "pp", "pp", "confirm1", BR_SUCCESS, .want = "succeed record"},
    {TT_TCC, GS_SUBMITTED, "pp", "pp", "confirm1", BR_FAILURE, "no", .want = "record halt",
     .text = "url:http://confirm/1 returned FAILURE: no"},
    {TT_TCC, GS_SUBMITTED, "pp", "pp", "confirm1", BR_ONGOING, "later", .want = "record halt",
     .text = "url:http://confirm/1 returned ONGOING: later"},
    {TT_TCC, GS_SUBMITTED, "pp", "pp", "confirm1", BR_ERROR, .want = "record halt",
     .text = "url:http://confirm/1 returned ERROR: "},
    {TT_TCC, GS_ABORTING, "pp", "pp", "cancel0", BR_SUCCESS, .want = "succeed record"},
    {TT_TCC, GS_ABORTING, "pp", "pp", "cancel0", BR_FAILURE, .want = "record halt",
     .text = "url:http://cancel/0 returned FAILURE: "},
    {TT_XA, GS_SUBMITTED, "pp", "pp", "commit0", BR_SUCCESS, .want = "succeed record"},
    {TT_XA, GS_SUBMITTED, "pp", "pp", "commit0", BR_ERROR, "x", .want = "record halt",
     .text = "url:http://commit/0 returned ERROR: x"},
    {TT_XA, GS_ABORTING, "pp", "pp", "rollback1", BR_ONGOING, .want = "record halt",
     .text = "url:http://rollback/1 returned ONGOING: "},
};

static const rrow workflow_result_rows[] = {
    {TT_WORKFLOW, GS_PREPARED, "", "", NULL, BR_SUCCESS, .want = "record"},
    {TT_WORKFLOW, GS_PREPARED, "", "", NULL, BR_FAILURE, "no", .want = "record halt",
     .text = "url:http://q returned FAILURE: no"},
    {TT_WORKFLOW, GS_SUBMITTED, "", "", NULL, BR_ONGOING, .want = "record halt",
     .text = "url:http://q returned ONGOING: "},
    {TT_WORKFLOW, GS_PREPARED, "", "", NULL, BR_ERROR, "x", .want = "record halt",
     .text = "url:http://q returned ERROR: x"},
};

void test_modes_results(void) {
    cfg_once();
    run_result("saga", ROWS(saga_result_rows));
    run_result("msg", ROWS(msg_result_rows));
    run_result("tcc/xa", ROWS(phase2_result_rows));
    run_result("workflow", ROWS(workflow_result_rows));
}

/* ---- a result stored with the final status (mode_final_now) ----------- */

typedef struct frow {
    int type, status;
    const char *b1, *b2, *custom;
    const char *branch; /* who answered (NULL: the special call) */
    branch_outcome o;
    pass_facts f; /* before the answer; the answering branch counts as started */
    int want;     /* final status stored with the result, or -1 */
} frow;

static const frow final_rows[] = {
    /* saga: the last action's success ends it */
    {TT_SAGA, GS_SUBMITTED, "sp", "pp", NULL, "action1", BR_SUCCESS, .want = GS_SUCCEED},
    {TT_SAGA, GS_SUBMITTED, "pp", "pp", NULL, "action0", BR_SUCCESS, .want = -1},
    {TT_SAGA, GS_SUBMITTED, "sp", "pp", NULL, "action1", BR_ERROR, .want = -1},
    {TT_SAGA, GS_SUBMITTED, "sp", "pp", NULL, "action1", BR_FAILURE, .want = -1}, /* aborting */
    {TT_SAGA,
     GS_SUBMITTED,
     "sp",
     "pp",
     CONC,
     "action1",
     BR_SUCCESS,
     {.started = "action0", .calls = 1},
     -1},
    {TT_SAGA, GS_SUBMITTED, "sp", "pp", NULL, "action1", BR_SUCCESS, {.age = 10}, -1},
    {TT_SAGA, GS_SUBMITTED, "sp", "pp", NULL, "action1", BR_SUCCESS, {.flags = EXHAUSTED}, -1},
    {TT_SAGA, GS_SUBMITTED, "fp", "pp", CONC, "action1", BR_SUCCESS, .want = -1},
    /* saga: the last compensate's success */
    {TT_SAGA, GS_ABORTING, "sf", "ps", NULL, "compensate0", BR_SUCCESS, .want = GS_FAILED},
    {TT_SAGA, GS_ABORTING, "sf", "pp", NULL, "compensate1", BR_SUCCESS, .want = -1},
    {TT_SAGA, GS_ABORTING, "fp", "pp", NULL, "compensate0", BR_SUCCESS, .want = GS_FAILED},
    {TT_SAGA, GS_ABORTING, "sf", "ps", NULL, "compensate0", BR_ERROR, .want = -1},
    /* msg: the last delivery */
    {TT_MSG, GS_SUBMITTED, "sp", "", NULL, "action1", BR_SUCCESS, .want = GS_SUCCEED},
    {TT_MSG, GS_SUBMITTED, "pp", "", NULL, "action0", BR_SUCCESS, .want = -1},
    {TT_MSG,
     GS_SUBMITTED,
     "pp",
     "",
     NULL,
     "action0",
     BR_SUCCESS,
     {.started = "action1", .calls = 1},
     -1},
    {TT_MSG, GS_SUBMITTED, "sp", "", NULL, "action1", BR_ONGOING, .want = -1},
    {TT_MSG, GS_PREPARED, "p", "", NULL, NULL, BR_ONGOING, {.age = 10}, -1},
    /* TCC / XA: the last confirm / cancel / commit / rollback */
    {TT_TCC, GS_SUBMITTED, "pss", "ppp", NULL, "confirm0", BR_SUCCESS, .want = GS_SUCCEED},
    {TT_TCC, GS_SUBMITTED, "pps", "ppp", NULL, "confirm1", BR_SUCCESS, .want = -1},
    {TT_TCC, GS_SUBMITTED, "pss", "ppp", NULL, "confirm0", BR_SUCCESS, {.halted = BR_ERROR}, -1},
    {TT_TCC, GS_SUBMITTED, "pss", "ppp", NULL, "confirm0", BR_ERROR, .want = -1},
    {TT_TCC, GS_ABORTING, "ppp", "pss", NULL, "cancel0", BR_SUCCESS, .want = GS_FAILED},
    {TT_XA, GS_SUBMITTED, "ssp", "ppp", NULL, "commit2", BR_SUCCESS, .want = GS_SUCCEED},
    {TT_XA, GS_SUBMITTED, "psp", "ppp", NULL, "commit2", BR_SUCCESS, .want = -1},
    {TT_XA, GS_ABORTING, "ppp", "ssp", NULL, "rollback2", BR_SUCCESS, .want = GS_FAILED},
    /* workflow: its answers never end it */
    {TT_WORKFLOW, GS_PREPARED, "", "", WF, NULL, BR_SUCCESS, {.flags = SPECIAL}, -1},
};

void test_modes_final_now(void) {
    cfg_once();
    for (size_t i = 0; i < sizeof final_rows / sizeof final_rows[0]; i++) {
        const frow *r = &final_rows[i];
        world w;
        trans *t = build(r->type, r->status, r->b1, r->b2, r->custom, 0);
        world_init(&w, t, &r->f);
        int bi = r->branch ? find_branch(t, r->branch) : -1;
        if (bi >= 0) w.started[bi] = 1;
        /* The answer applied in memory, as the engine does. */
        mode_effect e;
        mode_effect_init(&e);
        sbuf text;
        sb_init(&text);
        w.m->result(t, &w.v, bi, r->o, "", 0, &e, &text);
        sb_free(&text);
        if (bi >= 0 && e.branch_status >= 0) t->branches[bi].status = e.branch_status;
        if (e.halt && w.v.halted == BR_SUCCESS) w.v.halted = r->o;
        if (e.retry_exhausted) w.v.retry_exhausted = 1;
        mode_decision d;
        mode_decision_init(&d, w.calls);
        int got = mode_final_now(w.m, t, &w.v, &d);
        if (got != r->want) {
            fprintf(stderr, "  final row %zu (%s %s, %s answers %s): got %s, want %s\n", i + 1,
                    trans_type_name(r->type), global_status_name(r->status),
                    r->branch ? r->branch : "special", branch_outcome_name(r->o),
                    got >= 0 ? global_status_name(got) : "none",
                    r->want >= 0 ? global_status_name(r->want) : "none");
            unit_failures++;
        }
        world_free(&w);
    }
}

/* ---- finished at creation (mode_settle) -------------------------------- */

typedef struct srow {
    int type, status;
    const char *b1, *b2, *custom;
    int concurrent, age;
    int want;          /* the final status it is stored with, or -1: not settled */
    const char *after; /* branch states after (upper case: times set to now) */
} srow;

static const srow settle_rows[] = {
    /* saga: every action empty -> succeed; compensates are not called */
    {TT_SAGA, GS_SUBMITTED, "PP", "pp", .want = GS_SUCCEED, .after = "pSpS"},
    {TT_SAGA, GS_SUBMITTED, "PPP", "PPP", CONC, .want = GS_SUCCEED, .after = "pSpSpS"},
    {TT_SAGA, GS_SUBMITTED, "PPP", "ppp", ORDERS, .want = GS_SUCCEED, .after = "pSpSpS"},
    {TT_SAGA, GS_SUBMITTED, "", "", .want = GS_SUCCEED, .after = ""},
    /* one real call needed: stored as it was, a pass runs */
    {TT_SAGA, GS_SUBMITTED, "pP", "PP", .want = -1, .after = "pppp"},
    {TT_SAGA, GS_SUBMITTED, "Pp", "PP", .want = -1, .after = "pppp"},
    {TT_SAGA, GS_SUBMITTED, "PPp", "ppp", ORDERS, .want = -1, .after = "pppppp"},
    /* timed out at once: aborting is not final */
    {TT_SAGA, GS_SUBMITTED, "PP", "PP", .age = 10, .want = -1, .after = "pppp"},
    /* msg: every delivery empty, no delay */
    {TT_MSG, GS_SUBMITTED, "PPP", .want = GS_SUCCEED, .after = "SSS"},
    {TT_MSG, GS_SUBMITTED, "PPP", .concurrent = 1, .want = GS_SUCCEED, .after = "SSS"},
    {TT_MSG, GS_SUBMITTED, "PPp", .want = -1, .after = "ppp"},
    {TT_MSG, GS_SUBMITTED, "pP", .concurrent = 1, .want = -1, .after = "pp"},
    {TT_MSG, GS_SUBMITTED, "PP", "", "{\"delay\":5}", .want = -1, .after = "pp"},
    {TT_MSG, GS_PREPARED, "PP", .age = 10, .want = -1, .after = "pp"},
    /* the other modes' branches are not in their submit: never */
    {TT_TCC, GS_SUBMITTED, "PP", "PP", .want = -1, .after = "pppp"},
    {TT_XA, GS_SUBMITTED, "", "", .want = -1, .after = ""},
    {TT_WORKFLOW, GS_SUBMITTED, "", "", WF, .want = -1, .after = ""},
};

void test_modes_settle(void) {
    cfg_once();
    for (size_t i = 0; i < sizeof settle_rows / sizeof settle_rows[0]; i++) {
        const srow *r = &settle_rows[i];
        trans *t = build(r->type, r->status, r->b1, r->b2, r->custom, r->concurrent);
        int64_t at = T0 + (int64_t)r->age * 1000 + 1;
        int got = mode_settle(t, &mcfg, at);
        char after[MAXB + 1];
        int k;
        for (k = 0; k < t->nbranches && k < MAXB; k++) {
            const branch *b = &t->branches[k];
            char c = b->status == BS_SUCCEED ? 's' : b->status == BS_FAILED ? 'f' : 'p';
            after[k] = b->finish_ms == at && b->update_ms == at ? (char)toupper(c) : c;
        }
        after[k] = '\0';
        int want_status = r->want >= 0 ? r->want : r->status;
        int bad = got != (r->want >= 0) || t->status != want_status || strcmp(after, r->after) != 0;
        if (r->want >= 0 && (t->update_ms != at || (r->want == GS_SUCCEED && t->finish_ms != at)))
            bad = 1;
        if (r->want < 0 && t->update_ms != T0) bad = 1;
        if (bad) {
            fprintf(stderr, "  settle row %zu (%s %s/%s): got %d %s \"%s\", want %s \"%s\"\n",
                    i + 1, trans_type_name(r->type), r->b1, r->b2 ? r->b2 : "", got,
                    global_status_name(t->status), after,
                    r->want >= 0 ? global_status_name(r->want) : "unsettled", r->after);
            unit_failures++;
        }
        trans_free(t);
    }
}

/* More branches than mode_settle keeps on its stack. */
void test_modes_settle_large(void) {
    cfg_once();
    char acts[201];
    memset(acts, 'P', 200);
    acts[200] = '\0';
    trans *t = build(TT_MSG, GS_SUBMITTED, acts, "", NULL, 0);
    CHECK_INT(mode_settle(t, &mcfg, T0), 1);
    CHECK_INT(t->status, GS_SUCCEED);
    CHECK_INT(t->branches[199].status, BS_SUCCEED);
    trans_free(t);
    acts[150] = 'p';
    t = build(TT_MSG, GS_SUBMITTED, acts, "", NULL, 0);
    CHECK_INT(mode_settle(t, &mcfg, T0), 0);
    CHECK_INT(t->status, GS_SUBMITTED);
    CHECK_INT(t->branches[0].status, BS_PREPARED);
    trans_free(t);
}

/* ---- whole passes in memory --------------------------------------------
 *
 * decide and result together, as the engine drives them: the calls a
 * decision makes are all started, then answered one by one in that order,
 * the mode deciding again after each answer; a pass ends when the decision
 * is "wait" with nothing in flight. The answers come from a script per
 * branch ("action0=SE": SUCCESS, then ERROR in the next call; "special=O"
 * for the special call); a branch with no answer left answers SUCCESS. The
 * trace lists "name:answer" per answer, "->status" per status change and
 * "postpone" per delay, with "|" between passes. */

typedef struct sim_row {
    int type, status;
    const char *b1, *b2, *custom;
    int concurrent;
    int64_t retry_limit;
    const char *answers; /* "action0=SE special=O" */
    int ages[3];         /* each pass's age in seconds; the count is npasses */
    int npasses;
    const char *want;
} sim_row;

static branch_outcome next_answer(const char *answers, const char *name, int *used) {
    char key[64];
    snprintf(key, sizeof key, "%s=", name);
    const char *at = answers ? strstr(answers, key) : NULL;
    /* a match must start a word */
    while (at && at != answers && at[-1] != ' ') at = strstr(at + 1, key);
    if (!at) return BR_SUCCESS;
    const char *s = at + strlen(key);
    size_t n = strcspn(s, " ");
    if ((size_t)*used >= n) return BR_SUCCESS;
    switch (s[(*used)++]) {
        case 'F':
            return BR_FAILURE;
        case 'O':
            return BR_ONGOING;
        case 'E':
            return BR_ERROR;
        default:
            return BR_SUCCESS;
    }
}

static void trace(char *out, size_t n, const char *fmt, const char *a, const char *b) {
    size_t at = strlen(out);
    if (at < n) snprintf(out + at, n - at, fmt, a, b);
}

static void run_sim(const sim_row *r, char *out, size_t n) {
    trans *t = build(r->type, r->status, r->b1, r->b2, r->custom, r->concurrent);
    t->retry_limit = r->retry_limit;
    const mode_ops *m = mode_for(t->type);
    int used[MAXB + 1] = {0}; /* answers used per branch; [MAXB]: the special call */
    out[0] = '\0';
    for (int pass = 0; pass < r->npasses; pass++) {
        if (pass) trace(out, n, "%s%s", "| ", "");
        mode_plan pl;
        memset(&pl, 0, sizeof pl);
        if (m->plan) m->plan(&pl, t);
        unsigned char started[MAXB] = {0};
        int calls[MAXB], queue[MAXB + 1], nq = 0;
        char *fail_msg = NULL;
        mode_pass v = {.cfg = &mcfg,
                       .plan = &pl,
                       .now = T0 + (int64_t)r->ages[pass] * 1000,
                       .started = started,
                       .halted = BR_SUCCESS};
        for (int steps = 0; steps < 100; steps++) {
            mode_decision d;
            mode_decision_init(&d, calls);
            v.calls = nq;
            v.fail_msg = fail_msg;
            m->decide(t, &v, &d);
            if (d.status >= 0) {
                t->status = d.status;
                trace(out, n, "->%s%s ", global_status_name(d.status), "");
                continue;
            }
            if (d.postpone_until > 0) {
                v.postponed = 1;
                trace(out, n, "%s%s ", "postpone", "");
                continue;
            }
            if (d.special) {
                v.special_called = 1;
                queue[nq++] = -1;
            }
            for (int k = 0; k < d.ncalls; k++) {
                started[d.calls[k]] = 1;
                queue[nq++] = d.calls[k];
            }
            if (nq == 0) break; /* the pass ends */
            int bi = queue[0];
            memmove(queue, queue + 1, sizeof(int) * (size_t)--nq);
            char name[64] = "special";
            if (bi >= 0) branch_name(t, bi, name, sizeof name);
            branch_outcome o = next_answer(r->answers, name, &used[bi >= 0 ? bi : MAXB]);
            static const char letter[][2] = {"S", "F", "O", "E"};
            trace(out, n, "%s:%s ", name, letter[o]);
            v.calls = nq;
            mode_effect e;
            mode_effect_init(&e);
            sbuf text;
            sb_init(&text);
            m->result(t, &v, bi, o, "", 0, &e, &text);
            if (bi >= 0 && e.branch_status >= 0) t->branches[bi].status = e.branch_status;
            if (e.retry) {
                t->retry_count++;
                started[bi] = 0;
            }
            if (e.retry_exhausted) v.retry_exhausted = 1;
            if (e.halt && v.halted == BR_SUCCESS) v.halted = o;
            if (e.fail && !fail_msg) fail_msg = xstrdup(text.ptr ? text.ptr : "");
            if (e.status >= 0) {
                t->status = e.status;
                trace(out, n, "->%s%s ", global_status_name(e.status), "");
            }
            sb_free(&text);
        }
        free(fail_msg);
        mode_plan_free(&pl);
    }
    size_t len = strlen(out);
    while (len > 0 && out[len - 1] == ' ') out[--len] = '\0';
    trans_free(t);
}

static const sim_row sim_rows[] = {
    /* saga */
    {TT_SAGA, GS_SUBMITTED, "pp", "pp", .ages = {0}, .npasses = 1,
     .want = "action0:S action1:S ->succeed"},
    {TT_SAGA, GS_SUBMITTED, "ppp", "ppp", .answers = "action1=F", .ages = {0}, .npasses = 1,
     .want = "action0:S action1:F ->aborting compensate1:S compensate0:S ->failed"},
    {TT_SAGA, GS_SUBMITTED, "pp", "pp", .answers = "action1=E", .ages = {0, 1}, .npasses = 2,
     .want = "action0:S action1:E | action1:S ->succeed"},
    {TT_SAGA, GS_SUBMITTED, "pp", "pp", .answers = "action1=EEE", .retry_limit = 2, .ages = {0},
     .npasses = 1,
     .want = "action0:S action1:E action1:E action1:E ->aborting compensate1:S compensate0:S "
             "->failed"},
    {TT_SAGA, GS_SUBMITTED, "pp", "pp", .answers = "action1=E", .ages = {0, 10}, .npasses = 2,
     .want = "action0:S action1:E | ->aborting compensate1:S compensate0:S ->failed"},
    {TT_SAGA, GS_SUBMITTED, "ppp", "ppp", ORDERS, .ages = {0}, .npasses = 1,
     .want = "action0:S action1:S action2:S ->succeed"},
    {TT_SAGA, GS_SUBMITTED, "ppp", "ppp", ORDERS, .answers = "action1=F", .ages = {0}, .npasses = 1,
     .want = "action0:S action1:F ->aborting compensate1:S compensate0:S ->failed"},
    {TT_SAGA, GS_SUBMITTED, "pp", "pp", .answers = "action1=F compensate0=E", .ages = {0, 1},
     .npasses = 2,
     .want = "action0:S action1:F ->aborting compensate1:S compensate0:E | compensate0:S ->failed"},
    /* msg */
    {TT_MSG, GS_SUBMITTED, "pp", .ages = {0}, .npasses = 1,
     .want = "action0:S action1:S ->succeed"},
    {TT_MSG, GS_SUBMITTED, "pp", .answers = "action0=FE", .ages = {0, 1, 2}, .npasses = 3,
     .want = "action0:F | action0:E | action0:S action1:S ->succeed"},
    {TT_MSG, GS_SUBMITTED, "pp", .concurrent = 1, .answers = "action0=O", .ages = {0, 1},
     .npasses = 2, .want = "action0:O action1:S | action0:S ->succeed"},
    {TT_MSG, GS_PREPARED, "p", .ages = {5, 10}, .npasses = 2,
     .want = "| special:S ->submitted action0:S ->succeed"},
    {TT_MSG, GS_PREPARED, "p", .answers = "special=OF", .ages = {10, 11}, .npasses = 2,
     .want = "special:O | special:F ->failed"},
    {TT_MSG, GS_SUBMITTED, "p", "", "{\"delay\":5}", .ages = {1, 5}, .npasses = 2,
     .want = "postpone | action0:S ->succeed"},
    /* TCC / XA */
    {TT_TCC, GS_SUBMITTED, "ppp", "ppp", .ages = {0}, .npasses = 1,
     .want = "confirm2:S confirm1:S confirm0:S ->succeed"},
    {TT_TCC, GS_SUBMITTED, "ppp", "ppp", .answers = "confirm1=O", .ages = {0, 1}, .npasses = 2,
     .want = "confirm2:S confirm1:O | confirm1:S confirm0:S ->succeed"},
    {TT_TCC, GS_PREPARED, "pp", "pp", .ages = {9, 10}, .npasses = 2,
     .want = "| ->aborting cancel1:S cancel0:S ->failed"},
    {TT_XA, GS_SUBMITTED, "ppp", "ppp", .answers = "commit1=F", .ages = {0, 1}, .npasses = 2,
     .want = "commit0:S commit1:F | commit1:S commit2:S ->succeed"},
    {TT_XA, GS_ABORTING, "pp", "pp", .ages = {0}, .npasses = 1,
     .want = "rollback0:S rollback1:S ->failed"},
    /* workflow */
    {TT_WORKFLOW, GS_PREPARED, "", "", WF, .answers = "special=E", .ages = {0, 1}, .npasses = 2,
     .want = "special:E | special:S"},
};

void test_modes_passes(void) {
    cfg_once();
    for (size_t i = 0; i < sizeof sim_rows / sizeof sim_rows[0]; i++) {
        char got[512];
        run_sim(&sim_rows[i], got, sizeof got);
        if (strcmp(got, sim_rows[i].want) != 0) {
            fprintf(stderr, "  pass row %zu (%s): got \"%s\", want \"%s\"\n", i + 1,
                    trans_type_name(sim_rows[i].type), got, sim_rows[i].want);
            unit_failures++;
        }
    }
}
