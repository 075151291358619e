/* backoff.c - see backoff.h. */
#include "backoff.h"

int64_t backoff_base(int64_t trans_retry_ms, int64_t trans_timeout_ms, int64_t cfg_retry_ms,
                     int64_t max_ms) {
    int64_t base = cfg_retry_ms;
    if (trans_retry_ms > 0)
        base = trans_retry_ms;
    else if (trans_timeout_ms > 0 && trans_timeout_ms < cfg_retry_ms)
        base = trans_timeout_ms;
    if (max_ms > 0 && base > max_ms) base = max_ms;
    return base > 0 ? base : 1;
}

int64_t backoff_next(int64_t current_ms, int64_t max_ms) {
    if (current_ms <= 0) current_ms = 1;
    int64_t next = current_ms > INT64_MAX / 2 ? INT64_MAX : current_ms * 2;
    if (max_ms > 0 && next > max_ms) next = max_ms;
    return next;
}
