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
    char quote63[80], quote64[80];
    memset(quote63, 'y', 63);
    strcpy(quote63 + 63, "\"rest");
    memset(quote64, 'x', 64);
    strcpy(quote64 + 64, "\"rest");
    metrics_branch("tcc", quote63, "try", 0, 0.5);
    metrics_branch("tcc", quote64, "try", 0, 0.5);
    sbuf b;
    sb_init(&b);
    metrics_render(&b);
    CHECK(strstr(b.ptr, "dtm_branch_process_total{model=\"saga\",branchid=\"0\\\"1\\\\x\\ny\","
                        "branchtype=\"action\",status=\"ok\"} 2\n") != NULL);
    CHECK(strstr(b.ptr, "dtm_branch_process_total{model=\"saga\",branchid=\"02\","
                        "branchtype=\"compensate\",status=\"fail\"} 1\n") != NULL);
    /* a long value is cut after 64 bytes, its quote and the next labels kept */
    char want[256];
    snprintf(want, sizeof want,
             "dtm_branch_process_total{model=\"tcc\",branchid=\"%.64s\",branchtype=\"try\","
             "status=\"ok\"} 1\n",
             longid);
    CHECK(strstr(b.ptr, want) != NULL);
    /* a cut never splits an escape: 63 bytes and a quote (escaped whole), or
     * 64 bytes and then a quote (cut before it) */
    CHECK(strstr(b.ptr, "branchid=\"yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy"
                        "\\\"\",branchtype=\"try\"") != NULL);
    CHECK(strstr(b.ptr,
                 "branchid=\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                 "\",branchtype=\"try\"") != NULL);
    /* the duration histogram: escaped labels of its own (op, outcome) */
    CHECK(strstr(b.ptr, "op=\"action\",outcome=\"success\"") != NULL);
    sb_free(&b);
    metrics_reset();
}
