/* test_jsonrpc.c - dtm's JSON-RPC envelopes and branch-call helpers
 * (jsonrpc.c). */
#include "unit.h"

#include "jsonrpc.h"

#include <stdlib.h>

static void check_answer(int code, const char *body, const char *want) {
    char *got = jsonrpc_answer("7", code, body);
    CHECK_STR(got, want);
    free(got);
}

void test_jsonrpc_answer(void) {
    check_answer(200, "{\"dtm_result\":\"SUCCESS\"}",
                 "{\"error\":null,\"id\":\"7\",\"jsonrpc\":\"2.0\",\"result\":null}");
    check_answer(200, "{\"gid\":\"g1\",\"dtm_result\":\"SUCCESS\"}",
                 "{\"error\":null,\"id\":\"7\",\"jsonrpc\":\"2.0\",\"result\":{\"gid\":\"g1\"}}");
    check_answer(409, "{\"dtm_result\":\"FAILURE\",\"message\":\"x FAILURE\"}",
                 "{\"error\":{\"code\":-32901,\"message\":\"x FAILURE\"},\"id\":\"7\","
                 "\"jsonrpc\":\"2.0\",\"result\":{}}");
    check_answer(425, "{\"dtm_result\":\"ONGOING\",\"message\":\"later\"}",
                 "{\"error\":{\"code\":-32603,\"message\":\"later\"},\"id\":\"7\","
                 "\"jsonrpc\":\"2.0\",\"result\":{}}");
    check_answer(400, "{\"message\":\"gid is required\"}",
                 "{\"error\":{\"code\":-32603,\"message\":\"gid is required\"},\"id\":\"7\","
                 "\"jsonrpc\":\"2.0\",\"result\":{}}");
    char *e = jsonrpc_error("", -32700, "Parse json error: \"x\"");
    CHECK_STR(e, "{\"error\":{\"code\":-32700,\"message\":\"Parse json error: \\\"x\\\"\"},"
                 "\"id\":\"\",\"jsonrpc\":\"2.0\",\"result\":null}");
    free(e);
}

void test_jsonrpc_classify(void) {
    CHECK_INT(jsonrpc_classify("{\"result\":{}}", 13), BR_SUCCESS);
    CHECK_INT(jsonrpc_classify("{\"error\":null}", 14), BR_SUCCESS);
    CHECK_INT(jsonrpc_classify("null", 4), BR_SUCCESS);
    const char *f = "{\"error\":{\"code\":-32901,\"message\":\"no\"}}";
    CHECK_INT(jsonrpc_classify(f, strlen(f)), BR_FAILURE);
    const char *o = "{\"error\":{\"code\":-32902}}";
    CHECK_INT(jsonrpc_classify(o, strlen(o)), BR_ONGOING);
    const char *x = "{\"error\":{\"code\":-32000}}";
    CHECK_INT(jsonrpc_classify(x, strlen(x)), BR_ERROR);
    CHECK_INT(jsonrpc_classify("[]", 2), BR_ERROR);
    CHECK_INT(jsonrpc_classify("oops", 4), BR_ERROR);
}

void test_jsonrpc_branch(void) {
    CHECK(jsonrpc_branch_url("json-rpc", "http://a/rpc?method=Pay"));
    CHECK(!jsonrpc_branch_url("json-rpc", "http://a/rpc"));
    CHECK(!jsonrpc_branch_url("http", "http://a/rpc?method=Pay"));
    CHECK(!jsonrpc_branch_url(NULL, "http://a/rpc?method=Pay"));
    char err[200];
    size_t n = 0;
    const char *p = "{\"z\":{\"b\":1,\"a\":2},\"op\":\"spoof\",\"amount\":30}";
    char *body = jsonrpc_branch_body("http://a/rpc?x=1&method=Pay%20Now", p, strlen(p), "g1",
                                     "saga", "01", "action", &n, err, sizeof err);
    CHECK(body != NULL);
    if (body) {
        CHECK_INT(n, strlen(body));
        /* "{\"id\":\"" + 22 characters */
        CHECK(strncmp(body, "{\"id\":\"", 7) == 0 && body[29] == '"');
        CHECK_STR(body + 30,
                  ",\"jsonrpc\":\"2.0\",\"method\":\"Pay Now\",\"params\":{\"amount\":30,"
                  "\"branch_id\":\"01\",\"gid\":\"g1\",\"op\":\"action\",\"trans_type\":"
                  "\"saga\",\"z\":{\"a\":2,\"b\":1}}}");
        free(body);
    }
    CHECK(jsonrpc_branch_body("http://a/?method=M", "[1]", 3, "g", "saga", "01", "action", &n, err,
                              sizeof err) == NULL);
    CHECK(strstr(err, "JSON object") != NULL);
    CHECK(jsonrpc_branch_body("http://a/?method=M", "", 0, "g", "saga", "01", "action", &n, err,
                              sizeof err) == NULL);
}
