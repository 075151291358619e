/* http_reply.c - the lowest layer of an HTTP answer (see http_reply.h). */
#include "http_reply.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <time.h>

const char *http_date_header(void) {
    static time_t last = -1;
    static char text[64];
    time_t now = time(NULL);
    if (now != last) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        last = now;
    }
    return text;
}

void http_send_reply(struct evhttp_request *req, int code, const char *reason,
                     struct evbuffer *body) {
    if (evhttp_request_get_command(req) != EVHTTP_REQ_HEAD) {
        evhttp_send_reply(req, code, reason, body);
        return;
    }
    char len[32];
    snprintf(len, sizeof len, "%zu", body ? evbuffer_get_length(body) : (size_t)0);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_remove_header(h, "Content-Length");
    evhttp_add_header(h, "Content-Length", len);
    evhttp_send_reply(req, code, reason, NULL);
}
