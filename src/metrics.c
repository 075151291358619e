/* metrics.c - counters and histograms behind /api/metrics (see metrics.h).
 *
 * A metric family holds series keyed by their rendered label text
 * ({model="saga",status="ok"}). Series are few (label values come from
 * fixed sets: route names, trans types, ops, branch ids), so a linear
 * search over a small array is cheaper than a hash table and obviously
 * correct. */
#include "metrics.h"

#include "version.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Prometheus' default buckets, seconds. */
static const double bucket_le[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
/* Finer ones for what should take well under a millisecond (Redis, loop lag). */
static const double fine_le[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                 0.01,   0.025,   0.05,   0.1,   0.5,    1};
#define NBUCKETS 12 /* the longest bucket list */

typedef struct series {
    char *labels; /* rendered, without braces: model="saga",status="ok" */
    uint64_t count;
    double sum;
    uint64_t buckets[NBUCKETS]; /* histograms only; cumulative at render time */
} series;

typedef struct family {
    const char *name, *help, *type; /* type: counter or histogram */
    series *s;
    int n, cap;
    const double *le; /* histogram buckets; NULL = bucket_le */
    int nle;
} family;

static family f_process = {
    "dtm_server_process_total", "All request received by dtm", "counter", NULL, 0, 0, NULL, 0};
static family f_response = {"dtm_server_response_duration",
                            "The request durations of a dtm server api",
                            "histogram",
                            NULL,
                            0,
                            0,
                            NULL,
                            0};
static family f_trans = {"dtm_transaction_process_total",
                         "All transactions processed by dtm",
                         "counter",
                         NULL,
                         0,
                         0,
                         NULL,
                         0};
static family f_handled = {"dtm_transaction_handled_duration",
                           "Histogram of handling latency of the transaction that handled by "
                           "the server.",
                           "histogram",
                           NULL,
                           0,
                           0,
                           NULL,
                           0};
static family f_branch = {
    "dtm_branch_process_total", "All branches processed by dtm", "counter", NULL, 0, 0, NULL, 0};

/* dtmd's own (docs/operations.md#metrics). */
static family f_branch_dur = {"dtmd_branch_call_duration_seconds",
                              "Branch call latency by op and outcome "
                              "(success, failure, ongoing, error).",
                              "histogram",
                              NULL,
                              0,
                              0,
                              NULL,
                              0};
static family f_redis = {"dtmd_redis_command_duration_seconds",
                         "Redis command latency, sent to reply.",
                         "histogram",
                         NULL,
                         0,
                         0,
                         fine_le,
                         sizeof fine_le / sizeof fine_le[0]};
static family f_cron_lag = {"dtmd_retry_scanner_lag_seconds",
                            "How late the retry scanner picked up a due transaction.",
                            "histogram",
                            NULL,
                            0,
                            0,
                            NULL,
                            0};
static family f_loop_lag = {"dtmd_event_loop_lag_seconds",
                            "Delay of a periodic timer on the event loop (time the loop was busy).",
                            "histogram",
                            NULL,
                            0,
                            0,
                            fine_le,
                            sizeof fine_le / sizeof fine_le[0]};

double metrics_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Label text is built on the stack: looking a series up allocates nothing;
 * only a series seen for the first time is copied to the heap. A value is
 * cut after LABEL_VALUE_MAX bytes (label values here are short: names, ids,
 * ops; a branch id comes from the client, though), so the at most four
 * labels of a series always fit, closing quotes included: a cut inside an
 * escape or before a quote would break the whole exposition. Only len needs
 * setting up (LABELS_INIT): the buffer is never cleared first (three
 * lookups per branch call). */
#define LABEL_VALUE_MAX 64
#define LABELS_MAX 4 /* per series */
typedef struct labels {
    /* per label: ',' name (< 16) '="' value (escaped: 2 bytes a byte) '"' */
    char buf[LABELS_MAX * (1 + 16 + 2 + 2 * LABEL_VALUE_MAX + 1) + 1];
    size_t len;
} labels;

#define LABELS_INIT(l) ((l)->len = 0, (l)->buf[0] = '\0')

static void lputs(labels *l, const char *s, size_t n) {
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

/* Append name="value" with the value escaped as the exposition format
 * wants. Whole runs are copied: a saga looks up about 16 labels. */
static void put_label(labels *l, const char *name, const char *value) {
    size_t nl = strlen(name);
    if (nl >= 16 || sizeof l->buf - l->len < 1 + nl + 2 + 2 * LABEL_VALUE_MAX + 2) return;
    if (l->len) lputs(l, ",", 1);
    lputs(l, name, nl);
    lputs(l, "=\"", 2);
    const char *p = value ? value : "";
    size_t left = strnlen(p, LABEL_VALUE_MAX);
    while (left) {
        size_t run = strcspn(p, "\\\"\n");
        if (run > left) run = left;
        lputs(l, p, run);
        p += run, left -= run;
        if (!left) break;
        lputs(l, "\\", 1);
        lputs(l, *p == '\n' ? "n" : p, 1);
        p++, left--;
    }
    lputs(l, "\"", 1);
    l->buf[l->len] = '\0';
}

/* ---- bounded label values ----
 * A label whose values a client chooses (branchid: a TCC branch id) would
 * otherwise add a series for every value ever seen, for the life of the
 * process: memory, /api/metrics size and the linear series lookup would
 * grow without bound. The first Metrics.MaxLabelValues distinct values
 * (as rendered: cut after LABEL_VALUE_MAX bytes) are kept; later ones are
 * counted under OTHER_VALUE. A hash set of the values kept. */
#define OTHER_VALUE "other"
static int max_label_values = 100;

typedef struct value_set {
    char **slot; /* open addressing, NULL = empty */
    size_t cap, n;
} value_set;

static value_set branch_ids;

void metrics_set_max_label_values(int n) {
    max_label_values = n > 0 ? n : 1;
}

static uint64_t hash_value(const char *s, size_t len) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h;
}

/* The slot holding s (its first len bytes), or the empty slot where it would go. */
static char **value_slot(value_set *vs, const char *s, size_t len) {
    size_t i = (size_t)hash_value(s, len) & (vs->cap - 1);
    while (vs->slot[i] && !(strlen(vs->slot[i]) == len && memcmp(vs->slot[i], s, len) == 0))
        i = (i + 1) & (vs->cap - 1);
    return &vs->slot[i];
}

static void value_set_grow(value_set *vs) {
    value_set next = {xcalloc(vs->cap ? vs->cap * 2 : 64, sizeof(char *)),
                      vs->cap ? vs->cap * 2 : 64, vs->n};
    for (size_t i = 0; i < vs->cap; i++)
        if (vs->slot[i]) *value_slot(&next, vs->slot[i], strlen(vs->slot[i])) = vs->slot[i];
    free(vs->slot);
    *vs = next;
}

/* value itself when it is (or may become) one of the kept values, else OTHER_VALUE. */
static const char *bounded_value(value_set *vs, const char *value) {
    if (!value) value = "";
    size_t len = strnlen(value, LABEL_VALUE_MAX);
    if (vs->cap && *value_slot(vs, value, len)) return value;
    if ((int)vs->n >= max_label_values) return OTHER_VALUE;
    if (2 * (vs->n + 1) > vs->cap) value_set_grow(vs);
    *value_slot(vs, value, len) = xstrndup(value, len);
    vs->n++;
    return value;
}

static void value_set_free(value_set *vs) {
    for (size_t i = 0; i < vs->cap; i++) free(vs->slot[i]);
    free(vs->slot);
    memset(vs, 0, sizeof *vs);
}

/* The series of f with these labels, created on first use. */
static series *series_of(family *f, const labels *l) {
    const char *text = l->len ? l->buf : "";
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->s[i].labels, text) == 0) return &f->s[i];
    if (f->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 16;
        f->s = xrealloc(f->s, (size_t)f->cap * sizeof(series));
    }
    series *s = &f->s[f->n++];
    memset(s, 0, sizeof *s);
    s->labels = xstrdup(text);
    return s;
}

static void observe_in(const family *f, series *s, double v) {
    const double *le = f->le ? f->le : bucket_le;
    int n = f->le ? f->nle : (int)(sizeof bucket_le / sizeof bucket_le[0]);
    s->count++;
    s->sum += v;
    for (int i = 0; i < n; i++)
        if (v <= le[i]) s->buckets[i]++;
}

static void observe(family *f, const labels *l, double v) {
    observe_in(f, series_of(f, l), v);
}

void metrics_http(const char *api, int code, double seconds) {
    labels l;
    LABELS_INIT(&l);
    put_label(&l, "type", "http");
    put_label(&l, "api", api);
    observe(&f_response, &l, seconds);
    put_label(&l, "status", code >= 400 ? "fail" : "ok");
    series_of(&f_process, &l)->count++;
}

void metrics_trans(const char *model, int ok, double age_seconds) {
    labels l;
    LABELS_INIT(&l);
    put_label(&l, "model", model);
    observe(&f_handled, &l, age_seconds);
    put_label(&l, "status", ok ? "ok" : "fail");
    series_of(&f_trans, &l)->count++;
}

void metrics_branch(const char *model, const char *branch_id, const char *op, int outcome,
                    double seconds) {
    static const char *const outcomes[] = {"success", "failure", "ongoing", "error"};
    labels l;
    LABELS_INIT(&l);
    put_label(&l, "model", model);
    put_label(&l, "branchid", bounded_value(&branch_ids, branch_id));
    put_label(&l, "branchtype", op);
    put_label(&l, "status", outcome == 0 ? "ok" : "fail");
    series_of(&f_branch, &l)->count++;
    labels d;
    LABELS_INIT(&d);
    put_label(&d, "op", op);
    put_label(&d, "outcome", outcome >= 0 && outcome < 4 ? outcomes[outcome] : "error");
    observe(&f_branch_dur, &d, seconds < 0 ? 0 : seconds);
}

void metrics_redis(double seconds) {
    static const labels none = {.len = 0};
    observe(&f_redis, &none, seconds < 0 ? 0 : seconds);
}

void metrics_cron_lag(double seconds) {
    static const labels none = {.len = 0};
    observe(&f_cron_lag, &none, seconds < 0 ? 0 : seconds);
}

/* ---- event-loop lag: a timer that measures how late it fires ---- */

#define LOOP_TICK 0.25 /* seconds */
static struct event *loop_timer;
static double loop_due;
static double loop_lag_last;

static void loop_tick(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what, (void)arg;
    double now = metrics_now();
    loop_lag_last = now - loop_due;
    if (loop_lag_last < 0) loop_lag_last = 0;
    static const labels none = {.len = 0};
    observe(&f_loop_lag, &none, loop_lag_last);
    loop_due = now + LOOP_TICK;
    struct timeval tv = {0, (suseconds_t)(LOOP_TICK * 1e6)};
    evtimer_add(loop_timer, &tv);
}

int metrics_start(struct event_base *base) {
    loop_timer = evtimer_new(base, loop_tick, NULL);
    if (!loop_timer) return -1;
    loop_due = metrics_now() + LOOP_TICK;
    struct timeval tv = {0, (suseconds_t)(LOOP_TICK * 1e6)};
    return evtimer_add(loop_timer, &tv);
}

static void render_family(sbuf *out, const family *f) {
    sb_printf(out, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name, f->type);
    int hist = strcmp(f->type, "histogram") == 0;
    const double *le = f->le ? f->le : bucket_le;
    int nle = f->le ? f->nle : (int)(sizeof bucket_le / sizeof bucket_le[0]);
    for (int i = 0; i < f->n; i++) {
        const series *s = &f->s[i];
        /* a series without labels renders as name, not name{} */
        const char *lb = s->labels[0] ? "{" : "";
        const char *rb = s->labels[0] ? "}" : "";
        if (!hist) {
            sb_printf(out, "%s%s%s%s %llu\n", f->name, lb, s->labels, rb,
                      (unsigned long long)s->count);
            continue;
        }
        for (int b = 0; b < nle; b++)
            sb_printf(out, "%s_bucket{%s%sle=\"%g\"} %llu\n", f->name, s->labels,
                      s->labels[0] ? "," : "", le[b], (unsigned long long)s->buckets[b]);
        sb_printf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", f->name, s->labels,
                  s->labels[0] ? "," : "", (unsigned long long)s->count);
        sb_printf(out, "%s_sum%s%s%s %.9g\n%s_count%s%s%s %llu\n", f->name, lb, s->labels, rb,
                  s->sum, f->name, lb, s->labels, rb, (unsigned long long)s->count);
    }
}

/* Values other modules own, read at render time (metrics_add_gauge). */
#define MAX_GAUGES 16
static struct {
    const char *name, *help, *type;
    metrics_read_fn *read;
} gauges[MAX_GAUGES];
static int ngauges;

void metrics_add_gauge(const char *name, const char *help, const char *type,
                       metrics_read_fn *read) {
    if (ngauges == MAX_GAUGES) abort(); /* a fixed set wired at start */
    gauges[ngauges].name = name;
    gauges[ngauges].help = help;
    gauges[ngauges].type = type;
    gauges[ngauges].read = read;
    ngauges++;
}

void metrics_render(sbuf *out) {
    sb_puts(out, "# HELP dtm_server_info The information of this dtm server.\n"
                 "# TYPE dtm_server_info gauge\n"
                 "dtm_server_info{dtmd_version=\"" DTMD_VERSION "\"} 1\n");
    render_family(out, &f_process);
    render_family(out, &f_response);
    render_family(out, &f_trans);
    render_family(out, &f_handled);
    render_family(out, &f_branch);
    render_family(out, &f_branch_dur);
    render_family(out, &f_redis);
    render_family(out, &f_cron_lag);
    render_family(out, &f_loop_lag);
    for (int i = 0; i < ngauges; i++)
        sb_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", gauges[i].name, gauges[i].help,
                  gauges[i].name, gauges[i].type, gauges[i].name, gauges[i].read());
    sb_printf(out,
              "# HELP dtmd_event_loop_lag_last_seconds Delay of the latest event-loop probe.\n"
              "# TYPE dtmd_event_loop_lag_last_seconds gauge\n"
              "dtmd_event_loop_lag_last_seconds %.6f\n",
              loop_lag_last);
}

static void family_reset(family *f) {
    for (int i = 0; i < f->n; i++) free(f->s[i].labels);
    free(f->s);
    f->s = NULL;
    f->n = f->cap = 0;
}

void metrics_reset(void) {
    family_reset(&f_process);
    family_reset(&f_response);
    family_reset(&f_trans);
    family_reset(&f_handled);
    family_reset(&f_branch);
    family_reset(&f_branch_dur);
    family_reset(&f_redis);
    family_reset(&f_cron_lag);
    family_reset(&f_loop_lag);
    value_set_free(&branch_ids);
    ngauges = 0;
    if (loop_timer) event_free(loop_timer);
    loop_timer = NULL;
}
