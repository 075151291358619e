/* api_jsonrpc.c - POST /api/json-rpc: dtm's JSON-RPC 2.0 entry point
 * (jsonrpc.h has the protocol).
 *
 * The envelope is checked here; the method's params are then handed, as a
 * JSON body, to the very handler that serves the HTTP endpoint of that name,
 * with the call marked (api_call.rpc_id) so that its answer goes out as a
 * JSON-RPC answer (api_call.c, api_reply_json). Nothing else differs. */
#include "api_handlers.h"
#include "json.h"
#include "jsonrpc.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    api_handler *fn;
} methods[] = {
    {"newGid", api_new_gid},
    {"prepare", api_prepare},
    {"submit", api_submit},
    {"abort", api_abort},
    {"registerBranch", api_register_branch},
};

/* A string member, "" when absent or null; -1 when of another type (Go's
 * decoding into the request struct fails on those). */
static int member_str(yajl_val root, const char *key, const char **out) {
    yajl_val v = json_field(root, key);
    *out = "";
    if (!v) return 0;
    if (!YAJL_IS_STRING(v)) return -1;
    *out = v->u.string;
    return 0;
}

static void answer_error(api_call *c, const char *id, int code, const char *msg) {
    char *env = jsonrpc_error(id, code, msg);
    api_reply_json(c, 200, env); /* c->rpc_id is not set yet: sent as is */
    free(env);
}

void api_json_rpc(api_call *c, struct evkeyvalq *q, const char *body, size_t len) {
    char err[256], msg[512];
    yajl_val root = json_parse(body, len, err, sizeof err);
    const char *id = "", *version = "", *method = "";
    if (!root || !YAJL_IS_OBJECT(root) || member_str(root, "id", &id) ||
        member_str(root, "jsonrpc", &version) || member_str(root, "method", &method)) {
        snprintf(msg, sizeof msg, "Parse json error: %s",
                 !root ? err : "the request must be an object with string id, jsonrpc, method");
        json_free(root);
        answer_error(c, "", JSONRPC_PARSE_ERROR, msg);
        return;
    }
    if (!id[0] || strcmp(version, "2.0") != 0) {
        sbuf b;
        sb_init(&b);
        sb_puts(&b, "Bad json request: ");
        json_write(&b, root);
        answer_error(c, id, JSONRPC_INVALID_REQUEST, b.ptr);
        sb_free(&b);
        json_free(root);
        return;
    }
    api_handler *fn = NULL;
    for (size_t i = 0; i < sizeof methods / sizeof methods[0] && !fn; i++)
        if (strcmp(methods[i].name, method) == 0) fn = methods[i].fn;
    if (!fn) {
        snprintf(msg, sizeof msg, "Method not found: %.200s", method);
        answer_error(c, id, JSONRPC_NO_METHOD, msg);
        json_free(root);
        return;
    }
    /* The params are the HTTP endpoint's body, re-serialised from the tree,
     * which cuts strings at "\u0000": refused rather than stored cut short. */
    if (memmem(body, len, "\\u0000", 6)) {
        answer_error(c, id, JSONRPC_INTERNAL,
                     "NUL characters (\\u0000) are not supported in JSON-RPC params");
        json_free(root);
        return;
    }
    sbuf params;
    sb_init(&params);
    json_write(&params, json_field(root, "params"));
    c->rpc_id = xstrdup(id);
    json_free(root);
    fn(c, q, params.ptr, params.len);
    sb_free(&params);
}
