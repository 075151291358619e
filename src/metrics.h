/* metrics.h - Prometheus metrics at GET /api/metrics, named as dtm names them.
 *
 * dtm's dashboards and alerts keep working: dtm_server_process_total and
 * dtm_server_response_duration per API, dtm_transaction_process_total and
 * dtm_transaction_handled_duration per pass, dtm_branch_process_total per
 * branch call; plus dtmd's own: passes running, branch calls in flight,
 * store connected, branch call / Redis command latency, retry-scanner and
 * event-loop lag. Counters live in memory, per process, and are
 * only touched from the event loop thread, so they need no locking. Unlike
 * dtm the api label never carries the query string (bounded cardinality). */
#ifndef DTMD_METRICS_H
#define DTMD_METRICS_H

#include "util.h"

#include <stdint.h>

/* Monotonic seconds, for durations. */
double metrics_now(void);

/* One HTTP API request answered with code after `seconds`. */
void metrics_http(const char *api, int code, double seconds);
/* A pass over a transaction ended; ok = without error; age = s since create. */
void metrics_trans(const char *model, int ok, double age_seconds);
/* One branch call finished with outcome (a branch_outcome; 0 = success)
 * `seconds` after the engine asked for it: counted in dtm's
 * dtm_branch_process_total and timed in dtmd_branch_call_duration_seconds. */
void metrics_branch(const char *model, const char *branch_id, const char *op, int outcome,
                    double seconds);

/* Metrics.MaxLabelValues: distinct values a client-chosen label (branchid)
 * may take; later values are counted under "other". Default 100. */
void metrics_set_max_label_values(int n);

/* dtmd's own. None of these allocates once its series exists. */
/* store: one Redis command answered after `seconds` (sent to reply). */
void metrics_redis(double seconds);
/* cron: a leased transaction was due `seconds` ago when it was loaded. */
void metrics_cron_lag(double seconds);
/* Start the event-loop lag probe (a 250 ms timer measuring its own delay);
 * metrics_reset() stops it. */
struct event_base;
int metrics_start(struct event_base *base);

/* Append the exposition text (format 0.0.4). */
void metrics_render(sbuf *out);

/* A value owned by a module above this one (the passes, the branch calls,
 * the store), read when metrics are rendered; registered once at start
 * (main.c) so metrics depends on nothing it reports on. type is
 * "gauge" or "counter"; name and help are static strings. */
typedef double metrics_read_fn(void);
void metrics_add_gauge(const char *name, const char *help, const char *type, metrics_read_fn *read);

void metrics_reset(void); /* frees everything (shutdown, tests) */

#endif
