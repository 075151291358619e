/* http_conn.h - the API's client connections: Limits.MaxConnections (the
 * listener pauses at the limit), Limits.CloseIdleAtLimit, and accept()
 * running out of file descriptors. */
#ifndef DTMD_HTTP_CONN_H
#define DTMD_HTTP_CONN_H

#include "config.h"

struct event_base;
struct evconnlistener;
struct evhttp;
struct evhttp_request;

/* Before the event base is created: with Limits.MaxConnections, installs the
 * libevent lock callbacks that count connections (see http_conn.c). */
void http_conn_prepare(const dtmd_config *cfg);
/* Raise the soft RLIMIT_NOFILE toward the hard one so Limits.MaxConnections,
 * Limits.MaxInflightCalls and dtmd's own descriptors fit; when they cannot,
 * lower cfg->max_connections to what fits (logged). */
void http_conn_fit_fd_limit(dtmd_config *cfg);
/* Once http listens on listener: count and limit its connections, and back
 * off when accept() fails. */
void http_conn_start(struct event_base *base, struct evhttp *http, struct evconnlistener *listener,
                     const dtmd_config *cfg);
/* Before evhttp is freed. */
void http_conn_stop(void);

/* A request started or was answered on req's connection: it is not idle
 * (Limits.CloseIdleAtLimit closes the longest idle one). */
void http_conn_touch(struct evhttp_request *req);

#endif
