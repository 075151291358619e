/* metrics.c - counters and histograms behind /api/metrics (see metrics.h).
 *
 * A metric family holds series keyed by their rendered label text
 * ({model="saga",status="ok"}). Series are few (label values come from
 * fixed sets: route names, trans types, ops, branch ids), so a linear
 * search over a small array is cheaper than a hash table and obviously
 * correct. */
#include "metrics.h"

#include "branch_call.h"
#include "engine.h"
#include "store.h"
#include "version.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Prometheus' default buckets, seconds. */
static const double bucket_le[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define NBUCKETS (sizeof bucket_le / sizeof bucket_le[0])

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
} family;

static family f_process = {
    "dtm_server_process_total", "All request received by dtm", "counter", NULL, 0, 0};
static family f_response = {"dtm_server_response_duration",
                            "The request durations of a dtm server api",
                            "histogram",
                            NULL,
                            0,
                            0};
static family f_trans = {
    "dtm_transaction_process_total", "All transactions processed by dtm", "counter", NULL, 0, 0};
static family f_handled = {"dtm_transaction_handled_duration",
                           "Histogram of handling latency of the transaction that handled by "
                           "the server.",
                           "histogram",
                           NULL,
                           0,
                           0};
static family f_branch = {
    "dtm_branch_process_total", "All branches processed by dtm", "counter", NULL, 0, 0};

double metrics_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Append name="value" with the value escaped as the exposition format wants. */
static void put_label(sbuf *b, const char *name, const char *value) {
    if (b->len) sb_putc(b, ',');
    sb_puts(b, name);
    sb_puts(b, "=\"");
    for (const char *p = value ? value : ""; *p; p++) {
        if (*p == '\\' || *p == '"')
            sb_putc(b, '\\'), sb_putc(b, *p);
        else if (*p == '\n')
            sb_puts(b, "\\n");
        else
            sb_putc(b, *p);
    }
    sb_putc(b, '"');
}

/* The series of f with these labels (takes the text), created on first use. */
static series *series_of(family *f, sbuf *labels) {
    for (int i = 0; i < f->n; i++) {
        if (strcmp(f->s[i].labels, labels->ptr) == 0) {
            sb_free(labels);
            return &f->s[i];
        }
    }
    if (f->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 16;
        f->s = xrealloc(f->s, (size_t)f->cap * sizeof(series));
    }
    series *s = &f->s[f->n++];
    memset(s, 0, sizeof *s);
    s->labels = sb_detach(labels);
    return s;
}

static void observe(series *s, double v) {
    s->count++;
    s->sum += v;
    for (size_t i = 0; i < NBUCKETS; i++)
        if (v <= bucket_le[i]) s->buckets[i]++;
}

void metrics_http(const char *api, int code, double seconds) {
    sbuf l;
    sb_init(&l);
    put_label(&l, "type", "http");
    put_label(&l, "api", api);
    observe(series_of(&f_response, &l), seconds);
    sb_init(&l);
    put_label(&l, "type", "http");
    put_label(&l, "api", api);
    put_label(&l, "status", code >= 400 ? "fail" : "ok");
    series_of(&f_process, &l)->count++;
}

void metrics_trans(const char *model, int ok, double age_seconds) {
    sbuf l;
    sb_init(&l);
    put_label(&l, "model", model);
    put_label(&l, "status", ok ? "ok" : "fail");
    series_of(&f_trans, &l)->count++;
    sb_init(&l);
    put_label(&l, "model", model);
    observe(series_of(&f_handled, &l), age_seconds);
}

void metrics_branch(const char *model, const char *branch_id, const char *op, int ok) {
    sbuf l;
    sb_init(&l);
    put_label(&l, "model", model);
    put_label(&l, "branchid", branch_id);
    put_label(&l, "branchtype", op);
    put_label(&l, "status", ok ? "ok" : "fail");
    series_of(&f_branch, &l)->count++;
}

static void render_family(sbuf *out, const family *f) {
    sb_printf(out, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name, f->type);
    int hist = strcmp(f->type, "histogram") == 0;
    for (int i = 0; i < f->n; i++) {
        const series *s = &f->s[i];
        if (!hist) {
            sb_printf(out, "%s{%s} %llu\n", f->name, s->labels, (unsigned long long)s->count);
            continue;
        }
        for (size_t b = 0; b < NBUCKETS; b++)
            sb_printf(out, "%s_bucket{%s,le=\"%g\"} %llu\n", f->name, s->labels, bucket_le[b],
                      (unsigned long long)s->buckets[b]);
        sb_printf(out, "%s_bucket{%s,le=\"+Inf\"} %llu\n", f->name, s->labels,
                  (unsigned long long)s->count);
        sb_printf(out, "%s_sum{%s} %.9g\n%s_count{%s} %llu\n", f->name, s->labels, s->sum, f->name,
                  s->labels, (unsigned long long)s->count);
    }
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
    sb_printf(out,
              "# HELP dtmd_active_passes Transactions being driven by this process.\n"
              "# TYPE dtmd_active_passes gauge\ndtmd_active_passes %d\n"
              "# HELP dtmd_branch_calls_in_flight Branch calls waiting for an answer.\n"
              "# TYPE dtmd_branch_calls_in_flight gauge\ndtmd_branch_calls_in_flight %d\n"
              "# HELP dtmd_store_up 1 when the Redis store is connected.\n"
              "# TYPE dtmd_store_up gauge\ndtmd_store_up %d\n",
              engine_active_count(), branch_call_pending(), store_is_up() ? 1 : 0);
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
}
