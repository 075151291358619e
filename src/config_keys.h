/* config_keys.h - the configuration key table and its value parsing: the
 * interface config_load.c and config_print.c share. Not for the rest of
 * dtmd, which sees only dtmd_config (config.h). */
#ifndef DTMD_CONFIG_KEYS_H
#define DTMD_CONFIG_KEYS_H

#include "config.h"

#include <stddef.h>

typedef enum {
    K_STR,      /* any string */
    K_NONEMPTY, /* string that must not be empty */
    K_DRIVER,   /* Store.Driver: "redis" only */
    K_INT,      /* int within [min, max] */
    K_I64,      /* int64_t within [min, max] */
    K_SIZE,     /* size_t within [min, max] */
    K_DUR,      /* double seconds, > 0 */
    K_MS,       /* seconds (fractional allowed) stored as int ms within [min, max] ms */
    K_LEVEL,    /* log level name */
    K_LOGFMT,   /* Log.Format: text or json (stored as 0/1) */
    K_BOOL,     /* true/false, yes/no, on/off, 1/0 (stored as int 0/1) */
    K_LIST,     /* string list: a YAML sequence or a comma-separated string */
} key_kind;

typedef struct key_def {
    const char *path; /* YAML path, "Store.Host" */
    key_kind kind;
    size_t off;         /* offset of the field in dtmd_config */
    long long min, max; /* integer range */
    const char *expect; /* what a valid value looks like, for messages */
} key_def;

/* Every dtmd key, in the order --check-config prints them. */
extern const key_def config_keys[];
extern const size_t config_nkeys;

/* The key with this YAML path ("Store.Host"), or NULL. */
const key_def *config_find_key(const char *path);

/* Store text into the field described by k, validating it. label names the
 * key in messages ("Store.Port", "HTTPPort", "Store.Port (env STORE_PORT)").
 * 0, or -1 with a message in *err. */
int config_set_value(dtmd_config *cfg, const key_def *k, const char *text, const char *label,
                     char **err);

/* RedisAddr: "host:port" or "[v6addr]:port" -> Store.Host and Store.Port. */
int config_set_redis_addr(dtmd_config *cfg, const char *text, const char *label, char **err);

/* Once every source is loaded: derive the Redis Cluster seeds and the
 * sentinels, split BranchAllow, and check what depends on several keys.
 * 0, or -1 with a message in *err. */
int config_resolve(dtmd_config *cfg, char **err);

/* strdup that aborts on failure. */
char *config_dupstr(const char *s);
/* Set *err (if err is not NULL) to a malloc'd formatted message. */
void config_set_err(char **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
