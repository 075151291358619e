/* test_hold.c - engine_new_hold: holds on one gid never look alike, and
 * holds on many gids do not run ahead of the clock. */
#include "engine.h"
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
