/* test_hold.c - engine_new_hold: holds on one gid never look alike, and
 * holds on many gids do not run ahead of the clock; a process's view of its
 * own liveness (liveness.h): which holds it may still act on. */
#include "engine.h"
#include "liveness.h"
#include "unit.h"

#include <stdio.h>

void test_engine_new_hold(void) {
    const int64_t until = 1700000000000LL;
    /* one gid, same millisecond: distinct and increasing */
    int64_t a = engine_new_hold("hold-same", until);
    int64_t b = engine_new_hold("hold-same", until);
    int64_t c = engine_new_hold("hold-same", until - 5);
    CHECK(a >= until);
    CHECK(b > a);
    CHECK(c > b);
    /* 10,000 gids in the same millisecond (a busy second has more): every
     * hold stays within a few ms of what was asked. A process-wide counter
     * ran 10,000 ms ahead here. */
    int64_t worst = 0;
    for (int i = 0; i < 10000; i++) {
        char gid[32];
        snprintf(gid, sizeof gid, "hold-many-%d", i);
        int64_t h = engine_new_hold(gid, until + 1000);
        CHECK(h >= until + 1000);
        if (h - (until + 1000) > worst) worst = h - (until + 1000);
    }
    CHECK(worst < 64);
}

void test_liveness_view(void) {
    const int64_t s = 1000000; /* microseconds */
    const int64_t live = (LIVENESS_TTL_MS - LIVENESS_MARGIN_MS) * 1000LL;
    live_view v = {0, 0};
    CHECK(!liveness_view_holds(&v, 5, 10)); /* never live: nothing */
    /* first refresh sent at 10 s, answered at 10.2 s */
    liveness_view_refreshed(&v, 10 * s, 10 * s + 200000, 0);
    CHECK(v.since_us == 10 * s + 200000);
    CHECK(v.until_us == 10 * s + live);
    CHECK(!liveness_view_holds(&v, 10 * s + 100000, 10 * s + 300000)); /* asked before the answer */
    CHECK(liveness_view_holds(&v, 10 * s + 300000, 10 * s + 300000));
    CHECK(liveness_view_holds(&v, 10 * s + 300000, 10 * s + live - 1));
    CHECK(!liveness_view_holds(&v, 10 * s + 300000, 10 * s + live)); /* TTL - margin passed */
    /* refreshed in time, field still valid: the same run, extended */
    liveness_view_refreshed(&v, 11 * s, 11 * s + 1000, 1);
    CHECK(v.since_us == 10 * s + 200000);
    CHECK(v.until_us == 11 * s + live);
    CHECK(liveness_view_holds(&v, 10 * s + 300000, 11 * s + live - 1));
    /* an older refresh answered late never shortens the view */
    liveness_view_refreshed(&v, 10 * s + 500000, 11 * s + 2000, 1);
    CHECK(v.until_us == 11 * s + live);
    /* Redis says the field had expired (stalled, swept): earlier holds lost */
    liveness_view_refreshed(&v, 12 * s, 12 * s + 1000, 0);
    CHECK(v.since_us == 12 * s + 1000);
    CHECK(!liveness_view_holds(&v, 10 * s + 300000, 12 * s + 2000));
    CHECK(liveness_view_holds(&v, 12 * s + 2000, 12 * s + 2000));
    /* the view lapsed by the process's own clock (a refresh sent too late):
     * lost as well, even if Redis still had the field */
    liveness_view_refreshed(&v, 12 * s + live + 1, 12 * s + live + 2, 1);
    CHECK(v.since_us == 12 * s + live + 2);
    CHECK(!liveness_view_holds(&v, 12 * s + 2000, 12 * s + live + 3));
}
