/* test_auth.c - unit tests for auth.c (bearer tokens, branch URL allow-list)
 * and the configuration keys of docs/security.md.
 *
 * The allow-list is an SSRF defence, so the tests are mostly the tricks a
 * prefix match falls for: userinfo ("http://good@evil/"), host suffixes,
 * path prefixes off a segment boundary, dot segments, other ports and
 * schemes. */
#include "auth.h"
#include "url_allow.h"
#include "config.h"
#include "config_load.h"
#include "unit.h"

#include <stdlib.h>
#include <string.h>

void test_auth_token_equal(void) {
    CHECK(auth_token_equal("abc", 3, "abc"));
    CHECK(!auth_token_equal("abd", 3, "abc"));
    CHECK(!auth_token_equal("ab", 2, "abc"));
    CHECK(!auth_token_equal("abcd", 4, "abc"));
    CHECK(!auth_token_equal("abc", 3, "abcd"));
    CHECK(!auth_token_equal("", 0, "x"));
    CHECK(auth_token_equal("", 0, ""));
    CHECK(!auth_token_equal("abc\0x", 5, "abc"));
}

void test_auth_route_scope(void) {
    CHECK_INT(auth_route_scope("/api/ping", 0), AUTH_OPEN);
    CHECK_INT(auth_route_scope("/api/dtmsvr/ping", 0), AUTH_OPEN);
    CHECK_INT(auth_route_scope("/api/dtmsvr/submit", 0), AUTH_API);
    CHECK_INT(auth_route_scope("/api/dtmsvr/query", 0), AUTH_API);
    CHECK_INT(auth_route_scope("/api/metrics", 0), AUTH_API);
    CHECK_INT(auth_route_scope("/", 0), AUTH_API);
    CHECK_INT(auth_route_scope("/api/pingx", 0), AUTH_API);
    const char *admin[] = {"/api/dtmsvr/forceStop",
                           "/api/dtms/resetCronTime",
                           "/api/resetNextCronTime",
                           "/api/dtmsvr/subscribe",
                           "/api/dtmsvr/unsubscribe",
                           "/api/dtmsvr/topic/x",
                           "/admin",
                           "/admin/index.html"};
    for (size_t i = 0; i < sizeof admin / sizeof admin[0]; i++)
        CHECK_INT(auth_route_scope(admin[i], 0), AUTH_ADMIN);
    CHECK_INT(auth_route_scope("/api/dtmsvr/query", 1), AUTH_ADMIN); /* any DELETE */
    CHECK_INT(auth_route_scope("/api/dtmsvr/forceStopx", 0), AUTH_API);
    CHECK_INT(auth_route_scope("/administrator", 0), AUTH_API);
}

void test_auth_check(void) {
    dtmd_config c;
    config_defaults(&c);
    const char *why = NULL;
    /* nothing configured: open */
    CHECK_INT(auth_check(&c, AUTH_API, NULL, &why), 0);
    CHECK_INT(auth_check(&c, AUTH_ADMIN, NULL, &why), 0);
    free(c.auth_token);
    c.auth_token = strdup("tok");
    CHECK_INT(auth_check(&c, AUTH_OPEN, NULL, &why), 0);
    CHECK_INT(auth_check(&c, AUTH_API, NULL, &why), -1);
    CHECK(why && strstr(why, "Bearer"));
    CHECK_INT(auth_check(&c, AUTH_API, "Bearer tok", &why), 0);
    CHECK_INT(auth_check(&c, AUTH_API, "bearer   tok  ", &why), 0);
    CHECK_INT(auth_check(&c, AUTH_API, "Bearer tok2", &why), -1);
    CHECK_INT(auth_check(&c, AUTH_API, "Bearertok", &why), -1);
    CHECK_INT(auth_check(&c, AUTH_API, "tok", &why), -1);
    CHECK_INT(auth_check(&c, AUTH_API, "Basic tok", &why), -1);
    CHECK_INT(auth_check(&c, AUTH_API, "Bearer ", &why), -1);
    /* no admin token: the API token opens management routes too */
    CHECK_INT(auth_check(&c, AUTH_ADMIN, "Bearer tok", &why), 0);
    free(c.auth_admin_token);
    c.auth_admin_token = strdup("adm");
    CHECK_INT(auth_check(&c, AUTH_ADMIN, "Bearer tok", &why), -1);
    CHECK_INT(auth_check(&c, AUTH_ADMIN, "Bearer adm", &why), 0);
    CHECK_INT(auth_check(&c, AUTH_API, "Bearer adm", &why), 0);
    CHECK_INT(auth_check(&c, AUTH_API, "Bearer tok", &why), 0);
    /* only an admin token: the API is open, management is not */
    free(c.auth_token);
    c.auth_token = strdup("");
    CHECK_INT(auth_check(&c, AUTH_API, NULL, &why), 0);
    CHECK_INT(auth_check(&c, AUTH_ADMIN, NULL, &why), -1);
    CHECK_INT(auth_check(&c, AUTH_ADMIN, "Bearer adm", &why), 0);
    config_free(&c);
}

void test_branch_allow_entries(void) {
    char err[256];
    const char *good[] = {
        "http://svc/", "https://svc:8443/api/", "svc",          "svc:8080", "10.0.0.1", "[::1]",
        "[::1]:80",    "http://[::1]:1/x",      "HTTP://SVC/A/"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        int rc = url_allow_entry_check(good[i], err, sizeof err);
        if (rc) fprintf(stderr, "  %s: %s\n", good[i], err);
        CHECK_INT(rc, 0);
    }
    const char *bad[] = {"",        "ftp://x/",   "grpc://svc:1", "svc/api",
                         "http://", "user@svc",   "svc:99999",    "a b",
                         "svc?x",   "http:// x/", "svc:port"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_INT(url_allow_entry_check(bad[i], err, sizeof err), -1);
        CHECK(strstr(err, "not a URL prefix") != NULL);
    }
}

static int allowed(const dtmd_config *c, const char *url) {
    char err[512];
    int rc = branch_url_check(c, url, "steps[0].action", err, sizeof err);
    if (rc) {
        CHECK(strstr(err, "steps[0].action") != NULL);
        CHECK(strstr(err, "BranchAllow") != NULL || strstr(err, "not an http(s) URL") != NULL);
    }
    return rc == 0;
}

void test_branch_url_check(void) {
    dtmd_config c;
    char *err = NULL;
    /* no list: everything passes */
    config_defaults(&c);
    CHECK(allowed(&c, "http://anything/"));
    config_free(&c);
    int rc = config_load_from(
        &c,
        "BranchAllow:\n  - http://good.com/api\n  - https://pay.internal:8443/v1/\n  - svc\n  - "
        "db:5000\n  - '[::1]:9000'\n",
        NULL, NULL, &err);
    CHECK_INT(rc, 0);
    if (rc) {
        free(err);
        return;
    }
    CHECK_INT(c.nbranch_allow, 5);
    /* URL prefix http://good.com/api */
    CHECK(allowed(&c, ""));
    CHECK(allowed(&c, "http://good.com/api"));
    CHECK(allowed(&c, "http://good.com/api/TransOut?x=1"));
    CHECK(allowed(&c, "http://GOOD.com:80/api/x"));
    CHECK(!allowed(&c, "http://good.com/apix"));
    CHECK(!allowed(&c, "http://good.com/"));
    CHECK(!allowed(&c, "http://good.com/api/../admin"));
    CHECK(!allowed(&c, "http://good.com@evil.com/api/x"));
    CHECK(!allowed(&c, "http://good.com:80@evil.com/api/x"));
    CHECK(!allowed(&c, "http://good.com.evil.com/api/x"));
    CHECK(!allowed(&c, "http://evil.com/http://good.com/api"));
    CHECK(!allowed(&c, "http://good.com:8080/api/x"));
    CHECK(!allowed(&c, "https://good.com/api/x"));
    CHECK(!allowed(&c, "http://good.com\\@evil.com/api"));
    CHECK(!allowed(&c, "http://evil.com#@good.com/api"));
    CHECK(!allowed(&c, "http://evil.com?@good.com/api"));
    /* percent-encoded dot segments and separators: a decoding server could
     * resolve them out of the allowed prefix */
    CHECK(!allowed(&c, "http://good.com/api/%2e%2e/admin"));
    CHECK(!allowed(&c, "http://good.com/api/%2E%2E/admin"));
    CHECK(!allowed(&c, "http://good.com/api/..%2fadmin"));
    CHECK(!allowed(&c, "http://good.com/api/.%2e/admin"));
    CHECK(!allowed(&c, "http://good.com/api/..%5cadmin"));
    CHECK(!allowed(&c, "http://good.com/api/..;/admin"));
    CHECK(!allowed(&c, "http://good.com/api%2f..%2fadmin"));
    CHECK(!allowed(&c, "http://good.com/api%2fx"));
    CHECK(!allowed(&c, "http://good.com/%61pi/x")); /* /api decoded, but not as sent */
    CHECK(allowed(&c, "http://good.com/api/%2e/x"));
    CHECK(allowed(&c, "http://good.com/api/a%20b/..x/x..y"));
    /* https://pay.internal:8443/v1/ */
    CHECK(allowed(&c, "https://pay.internal:8443/v1/charge"));
    CHECK(!allowed(&c, "https://pay.internal/v1/charge"));
    CHECK(!allowed(&c, "http://pay.internal:8443/v1/charge"));
    CHECK(!allowed(&c, "https://pay.internal:8443/v1"));
    /* host entries: any scheme, any path; the port when given */
    CHECK(allowed(&c, "http://svc/a"));
    CHECK(allowed(&c, "https://svc:1234/b"));
    CHECK(!allowed(&c, "http://svc.evil/a"));
    CHECK(!allowed(&c, "http://xsvc/a"));
    CHECK(allowed(&c, "http://db:5000/x"));
    CHECK(!allowed(&c, "http://db:5001/x"));
    CHECK(!allowed(&c, "http://db/x"));
    CHECK(allowed(&c, "http://[::1]:9000/x"));
    CHECK(!allowed(&c, "http://[::1]:9001/x"));
    CHECK(!allowed(&c, "http://169.254.169.254/latest/meta-data"));
    CHECK(!allowed(&c, "not a url"));
    config_free(&c);
}

void test_config_security_keys(void) {
    dtmd_config c;
    char *err = NULL;
    config_defaults(&c);
    CHECK_STR(c.auth_token, "");
    CHECK_STR(c.auth_admin_token, "");
    CHECK_INT(c.nbranch_allow, 0);
    CHECK_INT(c.max_inflight_calls, 1024);
    CHECK_INT(c.max_header_bytes, 65536);
    CHECK(c.idle_timeout == 120);
    CHECK_INT(c.max_connections, 10000);
    CHECK_INT(c.max_active_passes, 512);
    config_free(&c);
    int rc =
        config_load_from(&c,
                         "Auth:\n  Token: t1\n  AdminToken: a1\nBranchAllow: 'svc, http://x/y'\n"
                         "Limits:\n  MaxInflightCalls: 7\n  MaxHeaderBytes: 2048\n"
                         "  IdleTimeout: 0.5\n  MaxConnections: 0\n  MaxActivePasses: 0\n",
                         NULL, NULL, &err);
    CHECK_INT(rc, 0);
    if (rc == 0) {
        CHECK_STR(c.auth_token, "t1");
        CHECK_STR(c.auth_admin_token, "a1");
        CHECK_INT(c.nbranch_allow, 2);
        if (c.nbranch_allow == 2) {
            CHECK_STR(c.branch_allow[0], "svc");
            CHECK_STR(c.branch_allow[1], "http://x/y");
        }
        CHECK_INT(c.max_inflight_calls, 7);
        CHECK_INT(c.max_header_bytes, 2048);
        CHECK(c.idle_timeout == 0.5);
        CHECK_INT(c.max_connections, 0); /* 0 = no limit */
        CHECK_INT(c.max_active_passes, 0);
        config_free(&c);
    }
    free(err);
    err = NULL;
    /* the environment wins, also for the list */
    char *env[] = {"AUTH_TOKEN=envtok",
                   "AUTH_ADMIN_TOKEN=envadm",
                   "BRANCH_ALLOW=a,,b:1, ",
                   "LIMITS_MAX_INFLIGHT_CALLS=3",
                   "LIMITS_MAX_CONNECTIONS=64",
                   "LIMITS_MAX_ACTIVE_PASSES=5",
                   NULL};
    rc = config_load_from(&c, "Auth:\n  Token: t1\nBranchAllow: [x]\n", env, NULL, &err);
    CHECK_INT(rc, 0);
    if (rc == 0) {
        CHECK_STR(c.auth_token, "envtok");
        CHECK_STR(c.auth_admin_token, "envadm");
        CHECK_INT(c.nbranch_allow, 2);
        CHECK_INT(c.max_inflight_calls, 3);
        CHECK_INT(c.max_connections, 64);
        CHECK_INT(c.max_active_passes, 5);
        config_free(&c);
    }
    free(err);
    /* refusals name the key */
    const char *bad[][2] = {
        {"BranchAllow: [http://ok/, 'ftp://x/']\n", "BranchAllow"},
        {"BranchAllow: [[a]]\n", "BranchAllow"},
        {"BranchAllow: ['a,b']\n", "BranchAllow"},
        {"BranchAllow: {a: 1}\n", "BranchAllow"},
        {"Limits:\n  MaxInflightCalls: 0\n", "Limits.MaxInflightCalls"},
        {"Limits:\n  MaxHeaderBytes: 100\n", "Limits.MaxHeaderBytes"},
        {"Limits:\n  IdleTimeout: 0\n", "Limits.IdleTimeout"},
        {"Limits:\n  MaxConnections: -1\n", "Limits.MaxConnections"},
        {"Limits:\n  MaxConnections: many\n", "Limits.MaxConnections"},
        {"Limits:\n  MaxActivePasses: -2\n", "Limits.MaxActivePasses"},
        {"Auth: 1\n", "Auth"},
        {"Auth:\n  Token: [a]\n", "Auth.Token"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err = NULL;
        rc = config_load_from(&c, bad[i][0], NULL, NULL, &err);
        CHECK_INT(rc, -1);
        CHECK(err && strstr(err, bad[i][1]));
        if (err && !strstr(err, bad[i][1])) fprintf(stderr, "  %s -> %s\n", bad[i][0], err);
        free(err);
    }
}
