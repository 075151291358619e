/* unit.h - a minimal unit-test harness for dtmd's pure modules.
 *
 * Each test file defines functions registered in test/unit/main.c. CHECK
 * records a failure and continues; the runner prints "N passed, N failed"
 * and exits non-zero when anything failed. */
#ifndef DTMD_UNIT_H
#define DTMD_UNIT_H

#include <stdio.h>
#include <string.h>

extern int unit_failures;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "  %s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);             \
            unit_failures++;                                                                       \
        }                                                                                          \
    } while (0)

#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *a_ = (a), *b_ = (b);                                                           \
        if (!a_ || !b_ || strcmp(a_, b_) != 0) {                                                   \
            fprintf(stderr, "  %s:%d: CHECK_STR failed: \"%s\" != \"%s\"\n", __FILE__, __LINE__,   \
                    a_ ? a_ : "(null)", b_ ? b_ : "(null)");                                       \
            unit_failures++;                                                                       \
        }                                                                                          \
    } while (0)

#define CHECK_INT(a, b)                                                                            \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (a_ != b_) {                                                                            \
            fprintf(stderr, "  %s:%d: CHECK_INT failed: %lld != %lld (%s)\n", __FILE__, __LINE__,  \
                    a_, b_, #a);                                                                   \
            unit_failures++;                                                                       \
        }                                                                                          \
    } while (0)

typedef void unit_test_fn(void);

#endif
