/* test_alert.c - the retry count behind AlertRetryLimit (alert.h). */
#include <stdint.h>
#include "alert.h"
#include "unit.h"

void test_alert_retry_count(void) {
    CHECK_INT(alert_retry_count(10000, 10000), 0);  /* base: no failure yet */
    CHECK_INT(alert_retry_count(19999, 10000), 0);  /* not doubled yet */
    CHECK_INT(alert_retry_count(20000, 10000), 1);  /* one doubling */
    CHECK_INT(alert_retry_count(80000, 10000), 3);  /* 10 -> 20 -> 40 -> 80 */
    CHECK_INT(alert_retry_count(5000, 10000), 0);   /* capped below base */
    CHECK_INT(alert_retry_count(3600000, 300), 13); /* 300 * 2^13 = 2457600 <= 3.6e6 < 2^14 */
    CHECK_INT(alert_retry_count(1000, 0), 0);       /* no base: no count */
    CHECK_INT(alert_retry_count(INT64_MAX, 1), 62); /* bounded */
}
