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

/* Metrics.MaxLabelValues: the first N distinct branch ids get series of
 * their own, later ones count under "other"; ids equal in their first 64
 * bytes are one value. */
void test_metrics_label_values_bounded(void) {
    metrics_reset();
    metrics_set_max_label_values(3);
    char id[100];
    for (int i = 0; i < 50; i++) {
        snprintf(id, sizeof id, "id-%d", i);
        metrics_branch("tcc", id, "confirm", 0, 0.01);
    }
    char long1[80], long2[80];
    memset(long1, 'a', 70);
    strcpy(long1 + 70, "1");
    memset(long2, 'a', 70);
    strcpy(long2 + 70, "2");
    metrics_branch("tcc", "id-1", "confirm", 0, 0.01); /* a kept value stays itself */
    sbuf b;
    sb_init(&b);
    metrics_render(&b);
    CHECK(strstr(b.ptr, "branchid=\"id-0\",branchtype=\"confirm\",status=\"ok\"} 1\n") != NULL);
    CHECK(strstr(b.ptr, "branchid=\"id-1\",branchtype=\"confirm\",status=\"ok\"} 2\n") != NULL);
    CHECK(strstr(b.ptr, "branchid=\"id-2\",") != NULL);
    CHECK(strstr(b.ptr, "branchid=\"id-3\",") == NULL);
    CHECK(strstr(b.ptr, "branchid=\"other\",branchtype=\"confirm\",status=\"ok\"} 47\n") != NULL);
    sb_free(&b);
    metrics_reset();
    metrics_set_max_label_values(1);
    metrics_branch("tcc", long1, "confirm", 0, 0.01);
    metrics_branch("tcc", long2, "confirm", 0, 0.01);
    sb_init(&b);
    metrics_render(&b);
    CHECK(strstr(b.ptr, "branchid=\"other\"") == NULL);
    sb_free(&b);
    metrics_reset();
    metrics_set_max_label_values(100);
}
