/* fuzz_request.c - libFuzzer target: a request body through dtmd's request
 * validation, as /submit and /prepare see it.
 *
 * Arbitrary bytes go to trans_from_body; whatever it accepts goes on to
 * trans_make_branches (every msg topic named by the steps gets one or two
 * subscribers), to the hash mapping and to the query JSON. Everything runs
 * twice: with the default configuration and with a BranchAllow list, so the
 * allow-list's URL parsing sees the fuzzed URLs too. Build and run with
 * `make fuzz`. */
#include "auth.h"
#include "config.h"
#include "config_load.h"
#include "trans.h"
#include "trans_json.h"
#include "trans_request.h"
#include "trans_hash.h"
#include "util.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void run(const char *data, size_t size, const dtmd_config *cfg) {
    trans *t = NULL;
    char err[512];
    if (trans_from_body(data, size, cfg, &t, err, sizeof err) != 0) {
        trans_free(t);
        return;
    }
    char **names = NULL;
    size_t n = trans_step_topics(t, &names);
    topic_set ts = {0};
    if (n) {
        ts.n = n;
        ts.names = names;
        ts.urls = xcalloc(n, sizeof *ts.urls);
        for (size_t i = 0; i < n; i++) {
            size_t k = 1 + (i & 1);
            ts.urls[i].n = k;
            ts.urls[i].s = xcalloc(k, sizeof(char *));
            ts.urls[i].len = xcalloc(k, sizeof(size_t));
            for (size_t j = 0; j < k; j++) {
                ts.urls[i].s[j] = xstrdup(j ? "http://svc:8080/api/b" : "http://127.0.0.1/a");
                ts.urls[i].len[j] = strlen(ts.urls[i].s[j]);
            }
        }
    }
    if (trans_make_branches(t, cfg, n ? &ts : NULL, err, sizeof err) == 0) {
        rargs a;
        ra_init(&a);
        trans_hash_fields(t, &a);
        ra_free(&a);
        sbuf o;
        sb_init(&o);
        trans_to_json(t, &o);
        for (int i = 0; i < t->nbranches; i++) branch_to_json(t, i, &o);
        sb_free(&o);
    }
    if (n) topic_set_free(&ts);
    trans_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static dtmd_config plain, allow;
    static int ready;
    if (!ready) {
        char *err = NULL;
        config_defaults(&plain);
        if (config_load_from(&allow,
                             "BranchAllow: [\"http://127.0.0.1/\", \"svc:8080\", "
                             "\"https://pay.example.com/api/\"]\n",
                             NULL, NULL, &err) != 0) {
            fprintf(stderr, "fuzz_request: config: %s\n", err);
            abort();
        }
        ready = 1;
    }
    run((const char *)data, size, &plain);
    run((const char *)data, size, &allow);
    return 0;
}
