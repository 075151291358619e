/* alert.h - tell operators about transactions that keep failing.
 *
 * After a branch call failed and its retry interval was doubled, the retry
 * count is log2(interval / base interval) (docs/protocol.md#alerts); once it reaches
 * AlertRetryLimit, dtmd logs a warning and, if AlertWebHook is set, POSTs
 * {"gid","status","branch","error","retry_count"} to it. The hook's answer
 * is ignored and a failing hook is never retried: alerts must not load the
 * loop or delay the transaction. */
#ifndef DTMD_ALERT_H
#define DTMD_ALERT_H

#include "config.h"
#include "trans.h"

#include <stddef.h>

/* Retry count implied by an interval that doubled from base (0 if not above base). */
int alert_retry_count(int64_t interval_ms, int64_t base_ms);

/* Called after a failed call of branch_url was recorded for t. */
void alert_maybe(const dtmd_config *cfg, const trans *t, const char *branch_url, const char *error,
                 size_t error_len);

#endif
