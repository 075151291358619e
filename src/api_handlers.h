/* api_handlers.h - endpoint handlers, by area. http_api.c routes to them.
 *
 * A handler receives the api_call (which it must complete exactly once),
 * the parsed query string (GET parameters) and the raw body. */
#ifndef DTMD_API_HANDLERS_H
#define DTMD_API_HANDLERS_H

#include "api_call.h"
#include "store.h"

#include <stddef.h>

struct evkeyvalq;

typedef void api_handler(api_call *c, struct evkeyvalq *query, const char *body, size_t len);

/* api_trans.c: endpoints that create or change transactions */
api_handler api_submit, api_prepare, api_abort, api_force_stop, api_reset_next_cron_time;
/* api_workflow.c */
api_handler api_prepare_workflow;
/* A workflow's submit (api_submit of trans_type workflow): c->t parsed. */
void api_workflow_submit(api_call *c);
/* api_register.c */
api_handler api_register_branch;

/* api_query.c: read-only and admin endpoints */
api_handler api_query, api_all, api_reset_cron_time;

/* http_api.c */
api_handler api_new_gid;

/* api_jsonrpc.c: POST /api/json-rpc, dtm's JSON-RPC 2.0 entry point */
api_handler api_json_rpc;

/* api_kv.c: topics and KV */
api_handler api_subscribe, api_unsubscribe, api_query_kv, api_scan_kv;
void api_delete_topic(api_call *c, const char *topic);
/* HMGET of the KV records of n topics (names), for a msg's topic steps; the
 * reply (an array in the names' order) goes to cb. */
void api_load_topics(const dtmd_config *cfg, char *const *names, size_t n, store_cb *cb, void *arg);

#endif
