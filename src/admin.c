/* admin.c - serve the embedded admin UI (see admin.h). */
#include "admin.h"

#include "http_reply.h"

#include "log.h"
#include "metrics.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <string.h>

int admin_path(const char *path) {
    if (strcmp(path, "/") == 0) return 1; /* a browser pointed at dtmd lands on the UI */
    return strncmp(path, "/admin", 6) == 0 && (path[6] == '\0' || path[6] == '/');
}

const admin_file *admin_find(const char *path) {
    if (strcmp(path, "/admin/") == 0 || strcmp(path, "/admin/index.html") == 0)
        path = "/admin/index.html";
    for (const admin_file *f = admin_files; f->path; f++)
        if (strcmp(f->path, path) == 0) return f;
    return NULL;
}

/* The headers every admin answer carries: the UI loads nothing from other
 * origins and must not be framed (the actions are one click away). */
static void common_headers(struct evkeyvalq *h) {
    evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    evhttp_add_header(h, "X-Frame-Options", "DENY");
    evhttp_add_header(h, "Referrer-Policy", "no-referrer");
    evhttp_add_header(h, "Content-Security-Policy",
                      "default-src 'self'; connect-src 'self'; img-src 'self' data:; "
                      "frame-ancestors 'none'; base-uri 'none'; form-action 'self'");
}

static void send_text(struct evhttp_request *req, int code, const char *reason, const char *text) {
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    common_headers(h);
    evhttp_add_header(h, "Content-Type", "text/plain; charset=utf-8");
    evhttp_add_header(h, "Cache-Control", "no-store");
    struct evbuffer *out = evbuffer_new();
    if (out) evbuffer_add(out, text, strlen(text));
    http_send_reply(req, code, reason, out);
    if (out) evbuffer_free(out);
}

void admin_serve(struct evhttp_request *req, const char *path) {
    double start = metrics_now();
    enum evhttp_cmd_type m = evhttp_request_get_command(req);
    int code;
    if (m != EVHTTP_REQ_GET && m != EVHTTP_REQ_HEAD) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
        send_text(req, code = 405, "Method Not Allowed", "method not allowed\n");
    } else if (strcmp(path, "/admin") == 0) {
        struct evkeyvalq *h = evhttp_request_get_output_headers(req);
        evhttp_add_header(h, "Location", "/admin/");
        send_text(req, code = 301, "Moved Permanently", "see /admin/\n");
    } else if (strcmp(path, "/") == 0) {
        /* Temporary: "/" may serve something else one day. */
        evhttp_add_header(evhttp_request_get_output_headers(req), "Location", "/admin/");
        send_text(req, code = 302, "Found", "see /admin/\n");
    } else {
        const admin_file *f = admin_find(path);
        if (!f) {
            send_text(req, code = 404, "Not Found", "not found\n");
        } else {
            struct evkeyvalq *h = evhttp_request_get_output_headers(req);
            common_headers(h);
            /* Revalidate every time: a new dtmd binary serves new files at
             * the same URLs, and a 304 costs one round trip. */
            evhttp_add_header(h, "Cache-Control", "no-cache");
            evhttp_add_header(h, "ETag", f->etag);
            const char *inm =
                evhttp_find_header(evhttp_request_get_input_headers(req), "If-None-Match");
            if (inm && strstr(inm, f->etag)) {
                evhttp_send_reply(req, code = 304, "Not Modified", NULL);
            } else {
                evhttp_add_header(h, "Content-Type", f->content_type);
                struct evbuffer *out = evbuffer_new();
                if (out) evbuffer_add_reference(out, f->data, f->len, NULL, NULL);
                http_send_reply(req, code = 200, "OK", out);
                if (out) evbuffer_free(out);
            }
        }
    }
    log_access(req, code, metrics_now() - start);
}
