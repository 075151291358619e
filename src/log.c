/* log.c - levelled logging, text or JSON lines, to stderr and/or files
 * (see log.h). Everything runs on the event loop thread; a line is one
 * write(2) per output, so lines from several processes appending to one
 * file (O_APPEND) do not interleave. */
#include "log.h"

#include <errno.h>
#include <event2/http.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

log_level_t log_min_level = LOG_INFO;
int log_access_enabled = 0;

static const char *level_names[] = {"debug", "info", "warn", "error"};

#define MAX_OUTPUTS 8
typedef struct output {
    char *path; /* NULL for stderr/stdout */
    int fd;
} output;

static output outs[MAX_OUTPUTS] = {{NULL, 2}};
static int nouts = 1;
static int json_format = 0;

void log_set_level(log_level_t level) {
    log_min_level = level;
}

void log_set_json(int json) {
    json_format = json;
}

int log_parse_level(const char *name, log_level_t *out) {
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(name, level_names[i]) == 0) {
            *out = (log_level_t)i;
            return 0;
        }
    }
    if (strcasecmp(name, "warning") == 0) {
        *out = LOG_WARN;
        return 0;
    }
    return -1;
}

static int open_file(const char *path) {
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

static void close_outputs(output *o, int n) {
    for (int i = 0; i < n; i++) {
        if (o[i].path) {
            close(o[i].fd);
            free(o[i].path);
        }
    }
}

int log_set_outputs(const char *spec, char **err) {
    output next[MAX_OUTPUTS];
    int n = 0;
    if (err) *err = NULL;
    if (!spec || !*spec) spec = "stderr";
    const char *p = spec;
    for (;;) {
        const char *end = strchr(p, ',');
        if (!end) end = p + strlen(p);
        const char *a = p, *b = end;
        while (a < b && (*a == ' ' || *a == '\t')) a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t')) b--;
        if (b > a) {
            if (n == MAX_OUTPUTS) {
                close_outputs(next, n);
                if (err && asprintf(err, "Log.Outputs: at most %d outputs", MAX_OUTPUTS) < 0)
                    *err = NULL;
                return -1;
            }
            size_t len = (size_t)(b - a);
            if (len == 6 && strncmp(a, "stderr", 6) == 0) {
                next[n++] = (output){NULL, 2};
            } else if (len == 6 && strncmp(a, "stdout", 6) == 0) {
                next[n++] = (output){NULL, 1};
            } else {
                char *path = strndup(a, len);
                if (!path) abort();
                int fd = open_file(path);
                if (fd < 0) {
                    if (err &&
                        asprintf(err, "Log.Outputs: cannot open %s: %s", path, strerror(errno)) < 0)
                        *err = NULL;
                    free(path);
                    close_outputs(next, n);
                    return -1;
                }
                next[n++] = (output){path, fd};
            }
        }
        if (!*end) break;
        p = end + 1;
    }
    if (n == 0) next[n++] = (output){NULL, 2};
    close_outputs(outs, nouts);
    memcpy(outs, next, sizeof(output) * (size_t)n);
    nouts = n;
    return 0;
}

int log_reopen(void) {
    int rc = 0;
    for (int i = 0; i < nouts; i++) {
        if (!outs[i].path) continue;
        int fd = open_file(outs[i].path);
        if (fd < 0) {
            rc = -1;
            log_error("log: cannot reopen %s: %s", outs[i].path, strerror(errno));
            continue;
        }
        close(outs[i].fd);
        outs[i].fd = fd;
    }
    return rc;
}

void log_close(void) {
    close_outputs(outs, nouts);
    outs[0] = (output){NULL, 2};
    nouts = 1;
}

static void emit(const char *line, size_t len) {
    for (int i = 0; i < nouts; i++) {
        const char *p = line;
        size_t left = len;
        while (left) {
            ssize_t w = write(outs[i].fd, p, left);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) break;
            p += w;
            left -= (size_t)w;
        }
    }
}

/* ---- formatting ---- */

typedef struct lbuf {
    char *p;
    size_t n, len; /* capacity, used (always < n, NUL kept) */
} lbuf;

static void put(lbuf *b, const char *s, size_t len) {
    if (b->len + 1 >= b->n) return;
    size_t room = b->n - 1 - b->len;
    if (len > room) len = room;
    memcpy(b->p + b->len, s, len);
    b->len += len;
    b->p[b->len] = '\0';
}

static void puts_(lbuf *b, const char *s) {
    put(b, s, strlen(s));
}

/* s as a JSON string body (no quotes); never splits an escape at the end. */
static void put_json(lbuf *b, const char *s, size_t len) {
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\', esc[1] = (char)c;
            if (b->len + 3 >= b->n) return;
            put(b, esc, 2);
        } else if (c < 0x20) {
            if (b->len + 7 >= b->n) return;
            snprintf(esc, sizeof esc, "\\u%04x", c);
            put(b, esc, 6);
        } else {
            put(b, (const char *)&s[i], 1);
        }
    }
}

/* s with control characters escaped (\n, \r, \t, \xNN), so a logged value
 * never starts a line of its own or drives a terminal; never splits an
 * escape at the end. */
static void put_text(lbuf *b, const char *s, size_t len) {
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != 0x7f) {
            put(b, (const char *)&s[i], 1);
            continue;
        }
        char esc[8];
        size_t n = 2;
        esc[0] = '\\';
        if (c == '\n')
            esc[1] = 'n';
        else if (c == '\r')
            esc[1] = 'r';
        else if (c == '\t')
            esc[1] = 't';
        else
            n = (size_t)snprintf(esc, sizeof esc, "\\x%02x", c);
        if (b->len + n >= b->n) return;
        put(b, esc, n);
    }
}

static void timestamp(lbuf *b, int json) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    char ts[48];
    if (json) {
        gmtime_r(&tv.tv_sec, &tm);
        size_t n = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(ts + n, sizeof ts - n, ".%03ldZ", (long)(tv.tv_usec / 1000));
    } else {
        localtime_r(&tv.tv_sec, &tm);
        size_t n = strftime(ts, sizeof ts, "%Y-%m-%d %H:%M:%S", &tm);
        snprintf(ts + n, sizeof ts - n, ".%03ld", (long)(tv.tv_usec / 1000));
    }
    puts_(b, ts);
}

/* The gid a message is about: dtmd writes "gid <gid>: ..." (possibly after a
 * "module: " prefix). Sets *start and *len, returns 1 when found. */
static int find_gid(const char *msg, const char **start, size_t *len) {
    for (const char *p = msg; (p = strstr(p, "gid ")) != NULL; p += 4) {
        if (p != msg && p[-1] != ' ') continue;
        const char *g = p + 4, *e = g;
        while (*e && *e != ':' && *e != ' ' && *e != ',') e++;
        if (e > g && *e == ':') {
            *start = g;
            *len = (size_t)(e - g);
            return 1;
        }
    }
    return 0;
}

size_t log_format_line(char *buf, size_t n, int json, log_level_t level, const char *msg) {
    lbuf b = {buf, n, 0};
    if (!n) return 0;
    buf[0] = '\0';
    if (!json) {
        timestamp(&b, 0);
        char lv[8];
        snprintf(lv, sizeof lv, " %-5s ", level_names[level]);
        puts_(&b, lv);
        put_text(&b, msg, strlen(msg));
        return b.len;
    }
    puts_(&b, "{\"ts\":\"");
    timestamp(&b, 1);
    puts_(&b, "\",\"level\":\"");
    puts_(&b, level_names[level]);
    const char *g;
    size_t glen;
    if (find_gid(msg, &g, &glen)) {
        puts_(&b, "\",\"gid\":\"");
        put_json(&b, g, glen);
    }
    puts_(&b, "\",\"msg\":\"");
    /* leave room for the closing "} */
    b.n = n > 3 ? n - 2 : n;
    put_json(&b, msg, strlen(msg));
    b.n = n;
    puts_(&b, "\"}");
    return b.len;
}

void log_write(log_level_t level, const char *fmt, ...) {
    if (level < log_min_level) return;
    char msg[4096], line[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    size_t n = log_format_line(line, sizeof line - 1, json_format, level, msg);
    line[n++] = '\n';
    emit(line, n);
}

void log_access(struct evhttp_request *req, int status, double seconds) {
    if (!log_access_enabled || !req) return;
    const char *method;
    switch (evhttp_request_get_command(req)) {
        case EVHTTP_REQ_GET:
            method = "GET";
            break;
        case EVHTTP_REQ_POST:
            method = "POST";
            break;
        case EVHTTP_REQ_HEAD:
            method = "HEAD";
            break;
        case EVHTTP_REQ_PUT:
            method = "PUT";
            break;
        case EVHTTP_REQ_DELETE:
            method = "DELETE";
            break;
        case EVHTTP_REQ_OPTIONS:
            method = "OPTIONS";
            break;
        default:
            method = "OTHER";
            break;
    }
    const char *uri = evhttp_request_get_uri(req);
    if (!uri) uri = "";
    char *peer = NULL;
    ev_uint16_t port = 0;
    struct evhttp_connection *conn = evhttp_request_get_connection(req);
    if (conn) evhttp_connection_get_peer(conn, &peer, &port);
    char line[4096];
    lbuf b = {line, sizeof line - 1, 0};
    line[0] = '\0';
    char num[64];
    if (json_format) {
        puts_(&b, "{\"ts\":\"");
        timestamp(&b, 1);
        puts_(&b, "\",\"level\":\"info\",\"msg\":\"access\",\"method\":\"");
        puts_(&b, method);
        puts_(&b, "\",\"path\":\"");
        b.n = sizeof line - 200;
        put_json(&b, uri, strlen(uri));
        b.n = sizeof line - 1;
        snprintf(num, sizeof num, "\",\"status\":%d,\"ms\":%.3f,\"remote\":\"", status,
                 seconds * 1000.0);
        puts_(&b, num);
        put_json(&b, peer ? peer : "", peer ? strlen(peer) : 0);
        puts_(&b, "\"}");
    } else {
        timestamp(&b, 0);
        puts_(&b, " info  access ");
        puts_(&b, method);
        puts_(&b, " ");
        b.n = sizeof line - 200;
        put_text(&b, uri, strlen(uri));
        b.n = sizeof line - 1;
        snprintf(num, sizeof num, " %d %.3fms ", status, seconds * 1000.0);
        puts_(&b, num);
        puts_(&b, peer ? peer : "-");
    }
    line[b.len++] = '\n';
    emit(line, b.len);
}
