/* test_backoff.c - tests for backoff.c: the base retry interval rules and
 * the doubling with a cap. All values in milliseconds. */
#include "unit.h"

#include "backoff.h"

#include <stdint.h>

void test_backoff_base(void) {
    /* nothing set on the transaction: the configured RetryInterval */
    CHECK_INT(backoff_base(0, 0, 10000, 3600000), 10000);
    /* the transaction's retry_interval wins over everything below the cap */
    CHECK_INT(backoff_base(5000, 0, 10000, 3600000), 5000);
    CHECK_INT(backoff_base(20000, 0, 10000, 3600000), 20000);
    CHECK_INT(backoff_base(5000, 2000, 10000, 3600000), 5000);
    CHECK_INT(backoff_base(20000, 2000, 10000, 3600000), 20000);
    CHECK_INT(backoff_base(1, 0, 10000, 3600000), 1);
    /* timeout_to_fail when 0 < it < RetryInterval */
    CHECK_INT(backoff_base(0, 2000, 10000, 3600000), 2000);
    CHECK_INT(backoff_base(0, 9999, 10000, 3600000), 9999);
    CHECK_INT(backoff_base(0, 1, 10000, 3600000), 1);
    /* ... and not when it is >= RetryInterval */
    CHECK_INT(backoff_base(0, 10000, 10000, 3600000), 10000);
    CHECK_INT(backoff_base(0, 10001, 10000, 3600000), 10000);
    CHECK_INT(backoff_base(0, 35000, 10000, 3600000), 10000);
    /* negative values count as unset */
    CHECK_INT(backoff_base(-5, 0, 10000, 3600000), 10000);
    CHECK_INT(backoff_base(-5, -3, 10000, 3600000), 10000);
    CHECK_INT(backoff_base(-5, 3000, 10000, 3600000), 3000);
    /* the cap (RetryMaxInterval) wins even over the transaction's value */
    CHECK_INT(backoff_base(0, 0, 10000, 4000), 4000);
    CHECK_INT(backoff_base(7000, 0, 10000, 4000), 4000);
    CHECK_INT(backoff_base(0, 6000, 10000, 4000), 4000);
    CHECK_INT(backoff_base(0, 3000, 10000, 4000), 3000);
    CHECK_INT(backoff_base(4000, 0, 10000, 4000), 4000);
    /* max_ms <= 0: no cap */
    CHECK_INT(backoff_base(7200000, 0, 10000, 0), 7200000);
    CHECK_INT(backoff_base(0, 0, 10000, -1), 10000);
    /* never 0 or negative: at least 1 ms */
    CHECK_INT(backoff_base(0, 0, 0, 0), 1);
    CHECK_INT(backoff_base(0, 0, -10, 3600000), 1);
    /* a fractional configured interval (0.5 s) */
    CHECK_INT(backoff_base(0, 0, 500, 3600000), 500);
    CHECK_INT(backoff_base(0, 200, 500, 3600000), 200);
    /* dtm defaults: RetryInterval 10 s, TimeoutToFail 35 s, RetryMaxInterval 1 h */
    CHECK_INT(backoff_base(0, 35000, 10000, 3600000), 10000);
}

void test_backoff_next(void) {
    CHECK_INT(backoff_next(1000, 3600000), 2000);
    CHECK_INT(backoff_next(2000, 3600000), 4000);
    CHECK_INT(backoff_next(1, 3600000), 2);
    /* capped at max */
    CHECK_INT(backoff_next(3000000, 3600000), 3600000);
    CHECK_INT(backoff_next(1800000, 3600000), 3600000);
    CHECK_INT(backoff_next(1800001, 3600000), 3600000);
    CHECK_INT(backoff_next(3600000, 3600000), 3600000);
    /* a current value above the cap comes back down to it */
    CHECK_INT(backoff_next(9000000, 3600000), 3600000);
    /* no cap */
    CHECK_INT(backoff_next(3600000, 0), 7200000);
    CHECK_INT(backoff_next(5, -1), 10);
    /* 0 or negative current: treated as 1 ms */
    CHECK_INT(backoff_next(0, 3600000), 2);
    CHECK_INT(backoff_next(-100, 3600000), 2);
    CHECK_INT(backoff_next(0, 1), 1);
    /* no overflow */
    CHECK_INT(backoff_next(INT64_MAX / 2, 0), (INT64_MAX / 2) * 2);
    CHECK_INT(backoff_next(INT64_MAX / 2 + 1, 0), INT64_MAX);
    CHECK_INT(backoff_next(INT64_MAX, 0), INT64_MAX);
    CHECK_INT(backoff_next(INT64_MAX, 3600000), 3600000);

    /* The sequence from a 1 s base: 1, 2, 4, ... capped at 60 s, then flat. */
    int64_t want[] = {2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000};
    int64_t cur = 1000;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        cur = backoff_next(cur, 60000);
        CHECK_INT(cur, want[i]);
    }
    /* Doubling forever never exceeds the cap nor goes non-positive. */
    cur = 1;
    for (int i = 0; i < 200; i++) {
        cur = backoff_next(cur, 3600000);
        CHECK(cur > 0 && cur <= 3600000);
    }
    CHECK_INT(cur, 3600000);
    /* Without a cap it saturates at INT64_MAX instead of wrapping. */
    cur = 1;
    for (int i = 0; i < 200; i++) {
        int64_t next = backoff_next(cur, 0);
        CHECK(next >= cur);
        cur = next;
    }
    CHECK_INT(cur, INT64_MAX);
}
