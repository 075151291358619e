/* main.c - runs every unit test listed in UNIT_TESTS (test/unit/tests.def). */
#include "unit.h"

#include <stdlib.h>

int unit_failures;

#define UNIT_TEST(name) void name(void);
#include "tests.def"
#undef UNIT_TEST

static const struct {
    const char *name;
    unit_test_fn *fn;
} tests[] = {
#define UNIT_TEST(name) {#name, name},
#include "tests.def"
#undef UNIT_TEST
};

int main(void) {
    int passed = 0, failed = 0;
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        int before = unit_failures;
        tests[i].fn();
        if (unit_failures == before) {
            passed++;
        } else {
            failed++;
            fprintf(stderr, "FAIL %s\n", tests[i].name);
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
