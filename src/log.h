/* log.h - levelled logging to stderr.
 *
 * One line per event: time, level, message. The level comes from LogLevel in
 * the configuration; messages below it cost one comparison. */
#ifndef DTMD_LOG_H
#define DTMD_LOG_H

#include "config.h"

extern log_level_t log_min_level;

void log_set_level(log_level_t level);
int log_parse_level(const char *name, log_level_t *out); /* 0 ok, -1 unknown */
void log_write(log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

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
