/* backoff.h - retry interval arithmetic (docs/protocol.md#retries-and-back-off).
 *
 * Pure functions so the numbers that decide when a failing branch is called
 * again are unit tested on their own. All values in milliseconds. */
#ifndef DTMD_BACKOFF_H
#define DTMD_BACKOFF_H

#include <stdint.h>

/* Base interval: the transaction's retry_interval if set; else its
 * timeout_to_fail if 0 < it < the configured RetryInterval; else RetryInterval.
 * Capped by max_ms (RetryMaxInterval), which wins even over the base. */
int64_t backoff_base(int64_t trans_retry_ms, int64_t trans_timeout_ms, int64_t cfg_retry_ms,
                     int64_t max_ms);

/* Next interval after an ERROR: double, capped at max_ms. */
int64_t backoff_next(int64_t current_ms, int64_t max_ms);

#endif
