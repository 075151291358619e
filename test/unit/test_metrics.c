/* test_metrics.c - metrics.c's label text: escaping of label values as the
 * Prometheus exposition format wants, one series per distinct label set,
 * and values past the label buffer cut rather than overrun. */
#include "unit.h"

#include "metrics.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

void test_metrics_labels(void) {
    metrics_reset();
    /* quote, backslash and newline escaped; the rest as is */
    metrics_branch("saga", "0\"1\\x\ny", "action", 0, 0.01);
    metrics_branch("saga", "0\"1\\x\ny", "action", 0, 0.02);
    metrics_branch("saga", "02", "compensate", 1, 0.01);
    char longid[600];
    memset(longid, 'z', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    metrics_branch("tcc", longid, "try", 0, 0.5);
    sbuf b;
    sb_init(&b);
    metrics_render(&b);
    CHECK(strstr(b.ptr, "dtm_branch_process_total{model=\"saga\",branchid=\"0\\\"1\\\\x\\ny\","
                        "branchtype=\"action\",status=\"ok\"} 2\n") != NULL);
    CHECK(strstr(b.ptr, "dtm_branch_process_total{model=\"saga\",branchid=\"02\","
                        "branchtype=\"compensate\",status=\"fail\"} 1\n") != NULL);
    /* the long value is cut inside the 384-byte label buffer */
    const char *lng = strstr(b.ptr, "dtm_branch_process_total{model=\"tcc\",branchid=\"zzz");
    CHECK(lng != NULL);
    if (lng) {
        const char *end = strchr(lng, '\n');
        CHECK(end != NULL);
        CHECK(end && end - lng < 384 + 40);
        CHECK(end && strncmp(end - 2, " 1", 2) == 0);
    }
    /* the duration histogram: escaped labels of its own (op, outcome) */
    CHECK(strstr(b.ptr, "op=\"action\",outcome=\"success\"") != NULL);
    sb_free(&b);
    metrics_reset();
}
