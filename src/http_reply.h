/* http_reply.h - sending an evhttp answer, shared by the API (http_api.c)
 * and the admin UI (admin.c), which sit above it. */
#ifndef DTMD_HTTP_REPLY_H
#define DTMD_HTTP_REPLY_H

struct evbuffer;
struct evhttp_request;

/* evhttp_send_reply, except that a HEAD request gets the headers only (with
 * the Content-Length a GET would have): evhttp would send the body too, and
 * the client would read it as the start of the next answer. */
void http_send_reply(struct evhttp_request *req, int code, const char *reason,
                     struct evbuffer *body);

/* The Date header value of the current second. evhttp formats one for
 * every answer that has none; the text only changes once a second. */
const char *http_date_header(void);

#endif
