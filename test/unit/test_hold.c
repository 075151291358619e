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
    CHECK(!liveness_view_holds(&v, 0, 10)); /* never live: nothing */
    CHECK(!liveness_view_holds(&v, 1, 10));
    /* a refresh sent at 10 s answered: live in epoch 3 */
    liveness_view_note(&v, 10 * s, 3);
    CHECK(v.epoch == 3 && v.until_us == 10 * s + live);
    CHECK(liveness_view_holds(&v, 3, 10 * s));
    CHECK(liveness_view_holds(&v, 3, 10 * s + live - 1));
    CHECK(!liveness_view_holds(&v, 3, 10 * s + live)); /* TTL - margin passed */
    CHECK(!liveness_view_holds(&v, 2, 10 * s));        /* a hold of another epoch */
    /* refreshed in time, same epoch: extended */
    liveness_view_note(&v, 11 * s, 3);
    CHECK(v.epoch == 3 && v.until_us == 11 * s + live);
    /* an older script answered late never shortens the view */
    liveness_view_note(&v, 10 * s + 500000, 3);
    CHECK(v.until_us == 11 * s + live);
    /* an older epoch's answer (overtaken) changes nothing */
    liveness_view_note(&v, 12 * s, 2);
    CHECK(v.epoch == 3 && v.until_us == 11 * s + live);
    /* no epoch (the script did not refresh): nothing */
    liveness_view_note(&v, 12 * s, 0);
    CHECK(v.epoch == 3);
    /* a lapse (Redis started epoch 4): the old holds are lost at once,
     * even before the old view ran out */
    liveness_view_note(&v, 11 * s + 100000, 4);
    CHECK(v.epoch == 4 && v.until_us == 11 * s + 100000 + live);
    CHECK(!liveness_view_holds(&v, 3, 11 * s + 200000));
    CHECK(liveness_view_holds(&v, 4, 11 * s + 200000));
}
