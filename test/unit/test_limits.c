/* test_limits.c - input limits of docs/security.md#limits: JSON nesting
 * depth, control characters in gids, per-transaction durations capped so the
 * millisecond arithmetic cannot overflow. */
#include "config.h"
#include "json.h"
#include "trans.h"
#include "trans_request.h"
#include "unit.h"

#include <stdlib.h>
#include <string.h>

static char *nested(int depth, const char *inner) {
    size_t n = (size_t)depth * 2 + strlen(inner) + 1;
    char *s = malloc(n);
    memset(s, '[', (size_t)depth);
    strcpy(s + depth, inner);
    memset(s + depth + strlen(inner), ']', (size_t)depth);
    s[n - 1] = '\0';
    return s;
}

void test_json_depth_limit(void) {
    char err[128];
    char *ok = nested(256, "1");
    yajl_val v = json_parse(ok, strlen(ok), err, sizeof err);
    CHECK(v != NULL);
    if (v) json_free(v);
    free(ok);
    char *deep = nested(257, "1");
    CHECK(json_parse(deep, strlen(deep), err, sizeof err) == NULL);
    CHECK(strstr(err, "nested deeper than 256") != NULL);
    free(deep);
    char *huge = nested(500000, "");
    CHECK(json_parse(huge, strlen(huge), err, sizeof err) == NULL);
    free(huge);
    /* brackets inside strings (escaped quotes included) do not count */
    char str[2000];
    strcpy(str, "[\"\\\"");
    for (int i = 0; i < 600; i++) strcat(str, "[");
    strcat(str, "\"]");
    v = json_parse(str, strlen(str), err, sizeof err);
    CHECK(v != NULL);
    if (v) json_free(v);
}

static int from_text(const char *json, const dtmd_config *cfg, char *err, size_t n) {
    trans *t = NULL;
    int rc = trans_from_body(json, strlen(json), cfg, &t, err, n);
    trans_free(t);
    return rc;
}

void test_trans_input_limits(void) {
    dtmd_config c;
    config_defaults(&c);
    char err[256];
    CHECK_INT(from_text("{\"gid\":\"a\\u0001b\",\"trans_type\":\"saga\"}", &c, err, sizeof err),
              -1);
    CHECK_STR(err, "gid must not contain control characters");
    CHECK_INT(from_text("{\"gid\":\"a\\u007f\",\"trans_type\":\"saga\"}", &c, err, sizeof err), -1);
    /* \n, \r and ; are still removed as dtm does */
    CHECK_INT(from_text("{\"gid\":\"a\\n;b\",\"trans_type\":\"saga\"}", &c, err, sizeof err), 0);
    /* the hard cap (10^9 s) holds whatever the configured caps say */
    c.max_timeout_to_fail = c.max_request_timeout = c.max_retry_interval = 1000000000;
    CHECK_INT(from_text("{\"gid\":\"g\",\"trans_type\":\"saga\",\"timeout_to_fail\":1000000000}",
                        &c, err, sizeof err),
              0);
    const char *over[] = {"timeout_to_fail", "request_timeout", "retry_interval"};
    for (int i = 0; i < 3; i++) {
        char body[128];
        snprintf(body, sizeof body, "{\"gid\":\"g\",\"trans_type\":\"saga\",\"%s\":1000000001}",
                 over[i]);
        CHECK_INT(from_text(body, &c, err, sizeof err), -1);
        CHECK(strstr(err, over[i]) != NULL);
    }
    config_free(&c);
}

/* Limits.MaxRequestTimeout / MaxTimeoutToFail / MaxRetryInterval: at the cap
 * accepted, above it 400 naming the key. */
void test_trans_configured_caps(void) {
    dtmd_config c;
    config_defaults(&c);
    char err[256], body[160];
    CHECK(c.max_request_timeout == 3600 && c.max_timeout_to_fail == 604800 &&
          c.max_retry_interval == 86400);
    const struct {
        const char *field, *key;
        int64_t cap;
    } caps[] = {{"request_timeout", "Limits.MaxRequestTimeout", 3600},
                {"timeout_to_fail", "Limits.MaxTimeoutToFail", 604800},
                {"retry_interval", "Limits.MaxRetryInterval", 86400}};
    for (int i = 0; i < 3; i++) {
        snprintf(body, sizeof body, "{\"gid\":\"g\",\"trans_type\":\"saga\",\"%s\":%lld}",
                 caps[i].field, (long long)caps[i].cap);
        CHECK_INT(from_text(body, &c, err, sizeof err), 0);
        snprintf(body, sizeof body, "{\"gid\":\"g\",\"trans_type\":\"saga\",\"%s\":%lld}",
                 caps[i].field, (long long)caps[i].cap + 1);
        CHECK_INT(from_text(body, &c, err, sizeof err), -1);
        CHECK(strstr(err, caps[i].key) != NULL);
    }
    config_free(&c);
}
