/* log.h - levelled logging to stderr and/or files, as text or JSON lines.
 *
 * One line per event. Text: "time level message". JSON (Log.Format: json):
 * {"ts":"2026-11-24T16:53:32.123Z","level":"info","msg":"...","gid":"..."},
 * gid present when the message is about a transaction (dtmd writes those as
 * "gid <gid>: ..."). The level comes from LogLevel / Log.Level; messages
 * below it cost one comparison. Log.Outputs lists where lines go ("stderr"
 * and/or file paths, comma separated); log_reopen() (SIGHUP) reopens the
 * files, so logrotate can simply move them. The access log (Log.Access)
 * writes one line per HTTP request: method, path, status, milliseconds. */
#ifndef DTMD_LOG_H
#define DTMD_LOG_H

#include <stddef.h>

struct evhttp_request;

typedef enum { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR } log_level_t;

extern log_level_t log_min_level;
extern int log_access_enabled;

void log_set_level(log_level_t level);
int log_parse_level(const char *name, log_level_t *out); /* 0 ok, -1 unknown */
void log_set_json(int json);                             /* 0 text (default), 1 JSON lines */

/* Send lines to outputs ("stderr", "stdout" or file paths, comma separated;
 * files are opened for appending, created 0640). NULL or "" = stderr. Returns
 * 0, or -1 with a malloc'd message in *err (the previous outputs stay). */
int log_set_outputs(const char *outputs, char **err);
/* Reopen every file output (after logrotate moved it). 0 ok, -1 some failed
 * (that output then keeps writing to the old file). */
int log_reopen(void);
void log_close(void); /* back to stderr only, files closed */

void log_write(log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* One access-log line for an answered request (no-op unless Log.Access). */
void log_access(struct evhttp_request *req, int status, double seconds);

/* Format one line into buf (no newline); for tests. Returns its length. */
size_t log_format_line(char *buf, size_t n, int json, log_level_t level, const char *msg);

#define log_debug(...)                                                                             \
    do {                                                                                           \
        if (log_min_level <= LOG_DEBUG) log_write(LOG_DEBUG, __VA_ARGS__);                         \
    } while (0)
#define log_info(...)                                                                              \
    do {                                                                                           \
        if (log_min_level <= LOG_INFO) log_write(LOG_INFO, __VA_ARGS__);                           \
    } while (0)
#define log_warn(...) log_write(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_write(LOG_ERROR, __VA_ARGS__)

#endif
