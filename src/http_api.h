/* http_api.h - dtm's HTTP API (/api/dtmsvr/...) on libevent's evhttp.
 *
 * Handlers never block: each request that needs the store or a whole
 * transaction (wait_result) becomes an api_call answered from a callback.
 * Every answer uses dtm's envelope (docs/protocol.md#answers): 200 SUCCESS, 409
 * FAILURE, 425 ONGOING, plus dtmd's 400 for bad input and 503 when the
 * store is unreachable (12.6). */
#ifndef DTMD_HTTP_API_H
#define DTMD_HTTP_API_H

#include "config.h"

struct event_base;
struct evbuffer;
struct evhttp_request;

int http_api_init(struct event_base *base, const dtmd_config *cfg);
struct event_base *http_api_base(void); /* for timers of requests that wait */
void http_api_shutdown(void);

#endif
