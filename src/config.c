/* config.c - dtmd configuration: defaults, conf.yml (libyaml), environment.
 *
 * Why this shape: dtmd must start unchanged from a dtm conf.yml, so it reads
 * dtm's nested keys (Store.Host, HttpPort, ...) and warns about, but accepts,
 * the dtm keys it has no use for (gRPC, microservices, SQL pools, logging).
 * Every dtmd key is described once in the table `keys` below: its YAML path,
 * its type and range, and where it lives in dtmd_config. The same table drives
 * YAML loading, environment overrides (name derived by dtm's rule, see
 * config_env_name) and validation, so the three cannot drift apart.
 *
 * Order: defaults, then the YAML file, then the environment (the environment
 * wins: docs/configuration.md#environment-variables). A bad value is refused
 * with a message naming the key; dtm would silently keep a zero, which is how
 * misconfigured servers retry in a tight loop. Allocation failure aborts, as everywhere in dtmd. */
#include "config.h"
#include "url_allow.h"
#include "log.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <yaml.h>

/* Longest accepted duration, seconds (about 31 years): keeps ms arithmetic
 * far from overflow. */
#define MAX_DURATION_S 1e9

/* ---- small allocation helpers (abort on failure) ---- */

static char *dupstr(const char *s) {
    char *p = strdup(s);
    if (!p) abort();
    return p;
}

/* Replace a heap string field with a copy of s. */
static void set_str(char **field, const char *s) {
    char *old = *field;
    *field = dupstr(s);
    free(old);
}

/* Set *err (if err is not NULL) to a malloc'd formatted message. */
static void set_err(char **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(char **err, const char *fmt, ...) {
    if (!err) return;
    va_list ap;
    va_start(ap, fmt);
    char *msg = NULL;
    if (vasprintf(&msg, fmt, ap) < 0) abort();
    va_end(ap);
    free(*err);
    *err = msg;
}

/* Call the warning callback with a formatted message. */
static void warn(config_warn_fn *cb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn(config_warn_fn *cb, const char *fmt, ...) {
    if (!cb) return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cb(msg);
}

/* ---- key table ---- */

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

#define OFF(f) offsetof(dtmd_config, f)
#define PORT_EXPECT "expected a port number 1..65535"

static const key_def keys[] = {
    {"Store.Driver", K_DRIVER, OFF(store_driver), 0, 0, NULL},
    {"Store.Host", K_NONEMPTY, OFF(store_host), 0, 0, "expected a host name"},
    {"Store.Port", K_INT, OFF(store_port), 1, 65535, PORT_EXPECT},
    {"Store.User", K_STR, OFF(store_user), 0, 0, NULL},
    {"Store.Password", K_STR, OFF(store_password), 0, 0, NULL},
    {"Store.RedisPrefix", K_STR, OFF(redis_prefix), 0, 0, NULL},
    {"Store.DataExpire", K_I64, OFF(data_expire), 1, INT64_MAX / 1000,
     "expected a positive integer number of seconds"},
    {"Store.FinishedDataExpire", K_I64, OFF(finished_data_expire), 1, INT64_MAX / 1000,
     "expected a positive integer number of seconds"},
    {"Store.Shards", K_INT, OFF(store_shards), 1, 1024, "expected an integer 1..1024"},
    {"Store.MaxQueued", K_INT, OFF(store_max_queued), 1, INT_MAX, "expected a positive integer"},
    {"Store.Cluster", K_BOOL, OFF(store_cluster), 0, 0, NULL},
    {"Store.CommandTimeout", K_MS, OFF(store_command_timeout_ms), 10, 600000,
     "expected a number of seconds 0.01..600"},
    {"Store.WaitReplicas", K_INT, OFF(store_wait_replicas), 0, 1000, "expected an integer 0..1000"},
    /* WAIT's timeout is in ms and 0 means forever: 1 ms at least */
    {"Store.WaitTimeout", K_MS, OFF(store_wait_timeout_ms), 1, 600000,
     "expected a number of seconds 0.001..600"},
    {"Store.SentinelAddrs", K_STR, OFF(sentinel_addrs_text), 0, 0, NULL},
    {"Store.SentinelMaster", K_STR, OFF(sentinel_master), 0, 0, NULL},
    {"Store.SentinelPassword", K_STR, OFF(sentinel_password), 0, 0, NULL},
    {"HttpHost", K_NONEMPTY, OFF(http_host), 0, 0, "expected a listen address"},
    {"HttpPort", K_INT, OFF(http_port), 1, 65535, PORT_EXPECT},
    {"TransCronInterval", K_DUR, OFF(trans_cron_interval), 0, 0, NULL},
    {"TimeoutToFail", K_DUR, OFF(timeout_to_fail), 0, 0, NULL},
    {"RetryInterval", K_DUR, OFF(retry_interval), 0, 0, NULL},
    {"RequestTimeout", K_DUR, OFF(request_timeout), 0, 0, NULL},
    {"RetryMaxInterval", K_DUR, OFF(retry_max_interval), 0, 0, NULL},
    {"LogLevel", K_LEVEL, OFF(log_level), 0, 0, NULL},
    /* ---- logging (docs/configuration.md#logs); Log.Level is LogLevel's dtm spelling ---- */
    {"Log.Level", K_LEVEL, OFF(log_level), 0, 0, NULL},
    {"Log.Format", K_LOGFMT, OFF(log_json), 0, 0, NULL},
    {"Log.Outputs", K_LIST, OFF(log_outputs), 0, 0, NULL},
    {"Log.Access", K_BOOL, OFF(log_access), 0, 0, NULL},
    {"AlertRetryLimit", K_INT, OFF(alert_retry_limit), 0, INT_MAX,
     "expected a non-negative integer"},
    {"AlertWebHook", K_STR, OFF(alert_web_hook), 0, 0, NULL},
    {"Limits.MaxBodyBytes", K_SIZE, OFF(max_body_bytes), 1,
     (long long)(SIZE_MAX < (size_t)INT64_MAX ? SIZE_MAX : (size_t)INT64_MAX),
     "expected a positive integer"},
    {"Limits.MaxBranches", K_INT, OFF(max_branches), 1, INT_MAX, "expected a positive integer"},
    {"Limits.MaxGidLength", K_INT, OFF(max_gid_length), 1, INT_MAX, "expected a positive integer"},
    /* ---- security and limits (docs/configuration.md#security) ---- */
    {"Auth.Token", K_STR, OFF(auth_token), 0, 0, NULL},
    {"Auth.AdminToken", K_STR, OFF(auth_admin_token), 0, 0, NULL},
    {"BranchAllow", K_LIST, OFF(branch_allow_text), 0, 0, NULL},
    {"Limits.MaxInflightCalls", K_INT, OFF(max_inflight_calls), 1, INT_MAX,
     "expected a positive integer"},
    {"Limits.MaxHeaderBytes", K_SIZE, OFF(max_header_bytes), 1024, INT_MAX,
     "expected an integer of at least 1024"},
    {"Limits.IdleTimeout", K_DUR, OFF(idle_timeout), 0, 0, NULL},
    {"Limits.MaxConnections", K_INT, OFF(max_connections), 0, INT_MAX,
     "expected a non-negative integer (0 = no limit)"},
    {"Limits.MaxActivePasses", K_INT, OFF(max_active_passes), 0, INT_MAX,
     "expected a non-negative integer (0 = no limit)"},
    {"Limits.CloseIdleAtLimit", K_BOOL, OFF(close_idle_at_limit), 0, 0, NULL},
    /* caps on what one transaction may ask for (per-transaction fields) */
    {"Limits.MaxRequestTimeout", K_I64, OFF(max_request_timeout), 1, 1000000000,
     "expected a positive integer number of seconds"},
    {"Limits.MaxTimeoutToFail", K_I64, OFF(max_timeout_to_fail), 1, 1000000000,
     "expected a positive integer number of seconds"},
    {"Limits.MaxRetryInterval", K_I64, OFF(max_retry_interval), 1, 1000000000,
     "expected a positive integer number of seconds"},
    {"Limits.MaxAllBytes", K_SIZE, OFF(max_all_bytes), 1024, INT_MAX,
     "expected an integer of at least 1024"},
    {"Metrics.MaxLabelValues", K_INT, OFF(metrics_max_label_values), 1, 1000000,
     "expected an integer 1..1000000"},
};
#define NKEYS (sizeof keys / sizeof keys[0])

/* Flat short forms accepted at the top level of the file. RedisAddr is
 * handled separately (it sets two keys). */
static const struct {
    const char *alias, *path;
} aliases[] = {
    {"HTTPPort", "HttpPort"},
    {"StoreType", "Store.Driver"},
};

/* dtm keys dtmd accepts and ignores. A mapping listed here is skipped whole. */
static const char *const unused_keys[] = {
    "GrpcPort",
    "JsonRpcPort",
    "MicroService",
    "HttpMicroService",
    "GrpcServiceConfig",
    "UpdateBranchSync",
    "UpdateBranchAsyncGoroutineNum",
    "Log.RotationEnable",
    "Log.RotationConfigJSON",
    "TimeZoneOffset",
    "AdminBasePath",
    "Store.Db",
    "Store.Schema",
    "Store.MaxOpenConns",
    "Store.MaxIdleConns",
    "Store.ConnMaxLifeTime",
    /* dtm's topic cache period: dtmd reads a topic from Redis on every delivery. */
    "ConfigUpdateInterval",
};

/* Top-level keys whose value is a mapping of dtmd keys. */
static const char *const sections[] = {"Store", "Limits", "Auth", "Log", "Metrics"};

static const key_def *find_key(const char *path) {
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(keys[i].path, path) == 0) return &keys[i];
    return NULL;
}

/* ---- value parsing ---- */

/* Parse a whole-string decimal integer (optional sign). 0 ok, -1 not one. */
static int parse_ll(const char *s, long long *out) {
    const char *p = s;
    if (*p == '+' || *p == '-') p++;
    if (!isdigit((unsigned char)*p)) return -1;
    for (const char *q = p; *q; q++)
        if (!isdigit((unsigned char)*q)) return -1;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || *end) return -1;
    *out = v;
    return 0;
}

/* Parse a decimal number of seconds ("3", "0.2", "1e3"). 0 ok, -1 not one.
 * Hex, inf and nan, which strtod would take, are refused. */
static int parse_seconds(const char *s, double *out) {
    if (!*s) return -1;
    for (const char *q = s; *q; q++)
        if (!isdigit((unsigned char)*q) && !strchr("+-.eE", *q)) return -1;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (errno || *end || end == s || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

/* Store text into the field described by k, validating it. label names the
 * key in messages ("Store.Port", "HTTPPort", "Store.Port (env STORE_PORT)"). */
static int set_value(dtmd_config *cfg, const key_def *k, const char *text, const char *label,
                     char **err) {
    char *base = (char *)cfg + k->off;
    long long v;
    switch (k->kind) {
        case K_STR:
        case K_LIST:
            set_str((char **)base, text);
            return 0;
        case K_NONEMPTY:
            if (!*text) {
                set_err(err, "%s: %s, got an empty value", label, k->expect);
                return -1;
            }
            set_str((char **)base, text);
            return 0;
        case K_DRIVER:
            if (strcmp(text, "redis") != 0) {
                set_err(err, "%s: only redis is supported, got '%.64s'", label, text);
                return -1;
            }
            set_str((char **)base, text);
            return 0;
        case K_INT:
        case K_I64:
        case K_SIZE:
            if (parse_ll(text, &v) != 0 || v < k->min || v > k->max) {
                set_err(err, "%s: %s, got '%.64s'", label, k->expect, text);
                return -1;
            }
            if (k->kind == K_INT)
                *(int *)base = (int)v;
            else if (k->kind == K_I64)
                *(int64_t *)base = (int64_t)v;
            else
                *(size_t *)base = (size_t)v;
            return 0;
        case K_DUR: {
            double d;
            if (parse_seconds(text, &d) != 0 || !(d > 0)) {
                set_err(err, "%s: expected a positive number of seconds, got '%.64s'", label, text);
                return -1;
            }
            if (d > MAX_DURATION_S) {
                set_err(err, "%s: expected a positive number of seconds up to %.0f, got '%.64s'",
                        label, MAX_DURATION_S, text);
                return -1;
            }
            *(double *)base = d;
            return 0;
        }
        case K_MS: {
            double d;
            if (parse_seconds(text, &d) != 0 || d > MAX_DURATION_S ||
                (v = llround(d * 1000)) < k->min || v > k->max) {
                set_err(err, "%s: %s, got '%.64s'", label, k->expect, text);
                return -1;
            }
            *(int *)base = (int)v;
            return 0;
        }
        case K_LOGFMT:
            if (strcasecmp(text, "text") != 0 && strcasecmp(text, "json") != 0) {
                set_err(err, "%s: expected text or json, got '%.64s'", label, text);
                return -1;
            }
            *(int *)base = strcasecmp(text, "json") == 0;
            return 0;
        case K_BOOL:
            if (!strcasecmp(text, "true") || !strcasecmp(text, "yes") || !strcasecmp(text, "on") ||
                !strcmp(text, "1")) {
                *(int *)base = 1;
            } else if (!strcasecmp(text, "false") || !strcasecmp(text, "no") ||
                       !strcasecmp(text, "off") || !strcmp(text, "0")) {
                *(int *)base = 0;
            } else {
                set_err(err, "%s: expected true or false, got '%.64s'", label, text);
                return -1;
            }
            return 0;
        case K_LEVEL: {
            log_level_t lv;
            if (log_parse_level(text, &lv) != 0) {
                set_err(err, "%s: expected debug, info, warn or error, got '%.64s'", label, text);
                return -1;
            }
            *(log_level_t *)base = lv;
            return 0;
        }
    }
    return -1;
}

/* RedisAddr: "host:port" or "[v6addr]:port" -> Store.Host and Store.Port. */
static int set_redis_addr(dtmd_config *cfg, const char *text, const char *label, char **err) {
    const char *colon = strrchr(text, ':');
    const char *host = text;
    size_t hlen = colon ? (size_t)(colon - text) : 0;
    if (colon && hlen >= 2 && text[0] == '[' && text[hlen - 1] == ']') {
        host = text + 1;
        hlen -= 2;
    }
    long long port;
    if (!colon || hlen == 0 || parse_ll(colon + 1, &port) != 0 || port < 1 || port > 65535) {
        set_err(err, "%s: expected host:port, got '%.64s'", label, text);
        return -1;
    }
    char *h = strndup(host, hlen);
    if (!h) abort();
    free(cfg->store_host);
    cfg->store_host = h;
    cfg->store_port = (int)port;
    return 0;
}

/* ---- Redis Cluster seeds ---- */

/* One entry of a Store.Host cluster list, already trimmed: "host",
 * "host:port", "[v6addr]" or "[v6addr]:port"; a bare IPv6 address (two
 * colons or more) takes def_port. 0 ok, -1 malformed. */
static int parse_seed(const char *s, size_t n, int def_port, dtmd_addr *out) {
    const char *host = s, *port = NULL;
    size_t hlen = n, plen = 0;
    if (s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (!close) return -1;
        host = s + 1;
        hlen = (size_t)(close - s) - 1;
        size_t rest = n - (size_t)(close - s) - 1;
        if (rest) {
            if (close[1] != ':') return -1;
            port = close + 2;
            plen = rest - 1;
        }
    } else {
        const char *colon = memchr(s, ':', n);
        if (colon && !memchr(colon + 1, ':', n - (size_t)(colon - s) - 1)) {
            hlen = (size_t)(colon - s);
            port = colon + 1;
            plen = n - hlen - 1;
        }
    }
    long long p = def_port;
    if (port) {
        char num[8];
        if (plen == 0 || plen >= sizeof num) return -1;
        memcpy(num, port, plen);
        num[plen] = '\0';
        if (parse_ll(num, &p) != 0 || p < 1 || p > 65535) return -1;
    }
    if (hlen == 0) return -1;
    out->host = strndup(host, hlen);
    if (!out->host) abort();
    out->port = (int)p;
    return 0;
}

#define SEEDS_EXPECT "expected Redis Cluster nodes as host[:port] separated by commas"

/* Walk a comma list: each call yields the next entry, trimmed of white space
 * and possibly empty, as [*a, *b); 0 once the list is exhausted. *p starts at
 * the list and is advanced (NULL after the last entry). */
static int next_list_item(const char **p, const char **a, const char **b) {
    if (!*p) return 0;
    const char *end = strchr(*p, ',');
    if (!end) end = *p + strlen(*p);
    *a = *p;
    *b = end;
    while (*a < *b && isspace((unsigned char)**a)) (*a)++;
    while (*b > *a && isspace((unsigned char)(*b)[-1])) (*b)--;
    *p = *end ? end + 1 : NULL;
    return 1;
}

/* Store.Host with a comma is a Redis Cluster seed list (as in dtm): split it
 * once everything is loaded, so Store.Port is final. Empty entries are
 * skipped, which lets "host:7000," name a single seed. */
static int resolve_store_seeds(dtmd_config *cfg, char **err) {
    const char *h = cfg->store_host;
    /* A comma list (dtm's form) or Store.Cluster: true (one address of a
     * cluster, e.g. a managed service's endpoint) selects cluster mode. */
    if (!strchr(h, ',') && !cfg->store_cluster) return 0;
    size_t max = 1;
    for (const char *p = h; *p; p++) max += *p == ',';
    cfg->store_seeds = calloc(max, sizeof *cfg->store_seeds);
    if (!cfg->store_seeds) abort();
    const char *p = h, *a, *b;
    while (next_list_item(&p, &a, &b)) {
        if (b > a) {
            if (parse_seed(a, (size_t)(b - a), cfg->store_port,
                           &cfg->store_seeds[cfg->store_nseeds]) != 0) {
                set_err(err, "Store.Host: %s, got '%.*s'", SEEDS_EXPECT,
                        (int)(b - a > 64 ? 64 : b - a), a);
                return -1;
            }
            cfg->store_nseeds++;
        }
    }
    if (cfg->store_nseeds == 0) {
        set_err(err, "Store.Host: %s, got '%.64s'", SEEDS_EXPECT, h);
        return -1;
    }
    return 0;
}

#define SENTINELS_EXPECT "expected Redis Sentinel addresses as host:port separated by commas"

/* Store.SentinelAddrs: the sentinels that name the master (Redis Sentinel).
 * Sentinel and Cluster are two ways of finding the master of a key: a
 * configuration naming both is a mistake, not a choice. A sentinel entry
 * without a port takes Sentinel's usual 26379. */
static int resolve_sentinels(dtmd_config *cfg, char **err) {
    const char *s = cfg->sentinel_addrs_text;
    if (!s || !*s) return 0;
    if (cfg->store_nseeds > 0) {
        set_err(err, "Store.SentinelAddrs: Redis Sentinel and Redis Cluster (Store.Host list or "
                     "Store.Cluster) exclude each other");
        return -1;
    }
    if (!cfg->sentinel_master || !cfg->sentinel_master[0]) {
        set_err(err, "Store.SentinelMaster: expected the master's name, got an empty value");
        return -1;
    }
    size_t max = 1;
    for (const char *p = s; *p; p++) max += *p == ',';
    cfg->sentinels = calloc(max, sizeof *cfg->sentinels);
    if (!cfg->sentinels) abort();
    const char *p = s, *a, *b;
    while (next_list_item(&p, &a, &b)) {
        if (b > a) {
            if (parse_seed(a, (size_t)(b - a), 26379, &cfg->sentinels[cfg->nsentinels]) != 0) {
                set_err(err, "Store.SentinelAddrs: %s, got '%.*s'", SENTINELS_EXPECT,
                        (int)(b - a > 64 ? 64 : b - a), a);
                return -1;
            }
            cfg->nsentinels++;
        }
    }
    if (cfg->nsentinels == 0) {
        set_err(err, "Store.SentinelAddrs: %s, got '%.64s'", SENTINELS_EXPECT, s);
        return -1;
    }
    return 0;
}

/* A WAIT holds up the commands behind it on its connection for up to
 * Store.WaitTimeout: it must end well before they time out. */
static int check_store_wait(const dtmd_config *cfg, char **err) {
    if (cfg->store_wait_replicas > 0 &&
        cfg->store_wait_timeout_ms >= cfg->store_command_timeout_ms) {
        set_err(err,
                "Store.WaitTimeout (%g s) must be shorter than Store.CommandTimeout (%g s): a "
                "WAIT holds up the commands behind it",
                cfg->store_wait_timeout_ms / 1000.0, cfg->store_command_timeout_ms / 1000.0);
        return -1;
    }
    return 0;
}

/* ---- BranchAllow ---- */

/* Split BranchAllow into its entries (trimmed, empty ones skipped) and check
 * each, once everything is loaded. */
static int resolve_branch_allow(dtmd_config *cfg, char **err) {
    const char *s = cfg->branch_allow_text ? cfg->branch_allow_text : "";
    size_t max = 1;
    for (const char *p = s; *p; p++) max += *p == ',';
    cfg->branch_allow = calloc(max, sizeof *cfg->branch_allow);
    if (!cfg->branch_allow) abort();
    const char *p = s, *a, *b;
    while (next_list_item(&p, &a, &b)) {
        if (b > a) {
            char *e = strndup(a, (size_t)(b - a));
            if (!e) abort();
            cfg->branch_allow[cfg->nbranch_allow++] = e;
            char msg[200];
            if (url_allow_entry_check(e, msg, sizeof msg) != 0) {
                set_err(err, "BranchAllow: %s", msg);
                return -1;
            }
        }
    }
    return 0;
}

/* ---- YAML walk ---- */

typedef struct load_ctx {
    dtmd_config *cfg;
    yaml_document_t *doc;
    config_warn_fn *warn_cb;
    char **err;
} load_ctx;

/* A scalar that YAML reads as null ("", "~", "null"): the key keeps its value. */
static int is_null(const yaml_node_t *n) {
    if (n->type != YAML_SCALAR_NODE) return 0;
    if (n->tag && strcmp((const char *)n->tag, YAML_NULL_TAG) == 0) return 1;
    if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return 0;
    const char *v = (const char *)n->data.scalar.value;
    return !*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") || !strcmp(v, "NULL");
}

static const char *node_kind(const yaml_node_t *n) {
    return n->type == YAML_MAPPING_NODE ? "a mapping" : "a list";
}

static int in_list(const char *const *list, size_t n, const char *s) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], s) == 0) return 1;
    return 0;
}

static int walk_mapping(load_ctx *c, yaml_node_t *map, const char *prefix);

/* A K_LIST key given as a YAML sequence of scalars: kept comma-joined. */
static int load_list(load_ctx *c, const key_def *k, const char *path, yaml_node_t *seq) {
    size_t cap = 1;
    for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top;
         it++) {
        yaml_node_t *n = yaml_document_get_node(c->doc, *it);
        if (!n || n->type != YAML_SCALAR_NODE || strchr((const char *)n->data.scalar.value, ',')) {
            set_err(c->err, "%s: expected a list of strings without commas", path);
            return -1;
        }
        cap += strlen((const char *)n->data.scalar.value) + 1;
    }
    char *joined = malloc(cap);
    if (!joined) abort();
    joined[0] = '\0';
    for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top;
         it++) {
        yaml_node_t *n = yaml_document_get_node(c->doc, *it);
        if (joined[0]) strcat(joined, ",");
        strcat(joined, (const char *)n->data.scalar.value);
    }
    int rc = set_value(c->cfg, k, joined, path, c->err);
    free(joined);
    return rc;
}

/* Handle one "key: value" pair; path is the full dotted key. */
static int load_pair(load_ctx *c, const char *path, const char *name, yaml_node_t *val, int top) {
    const key_def *k = find_key(path);
    if (top && !k) {
        for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
            if (strcmp(aliases[i].alias, name) == 0) k = find_key(aliases[i].path);
    }
    int redis_addr = top && strcmp(name, "RedisAddr") == 0;
    if (k || redis_addr) {
        if (is_null(val)) return 0;
        if (k && k->kind == K_LIST && val->type == YAML_SEQUENCE_NODE)
            return load_list(c, k, path, val);
        if (val->type != YAML_SCALAR_NODE) {
            set_err(c->err, "%s: expected a single value, got %s", path, node_kind(val));
            return -1;
        }
        const char *text = (const char *)val->data.scalar.value;
        if (redis_addr) return set_redis_addr(c->cfg, text, path, c->err);
        return set_value(c->cfg, k, text, path, c->err);
    }
    if (top && in_list(sections, sizeof sections / sizeof sections[0], name)) {
        if (is_null(val)) return 0;
        if (val->type != YAML_MAPPING_NODE) {
            set_err(c->err, "%s: expected a mapping of keys", path);
            return -1;
        }
        return walk_mapping(c, val, path);
    }
    if (in_list(unused_keys, sizeof unused_keys / sizeof unused_keys[0], path))
        warn(c->warn_cb, "%s is not used by dtmd", path);
    else
        warn(c->warn_cb, "unknown key %s ignored", path);
    return 0;
}

/* Load every pair of map; prefix is "" at the top level, else "Store" etc. */
static int walk_mapping(load_ctx *c, yaml_node_t *map, const char *prefix) {
    int top = !*prefix;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *kn = yaml_document_get_node(c->doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(c->doc, p->value);
        if (!kn || !vn) continue;
        if (kn->type != YAML_SCALAR_NODE) {
            warn(c->warn_cb, "unknown non-scalar key at line %lu ignored",
                 (unsigned long)kn->start_mark.line + 1);
            continue;
        }
        const char *name = (const char *)kn->data.scalar.value;
        char path[256];
        snprintf(path, sizeof path, "%s%s%s", prefix, top ? "" : ".", name);
        if (load_pair(c, path, name, vn, top) != 0) return -1;
    }
    return 0;
}

/* Parse the YAML from an initialised parser into cfg. what names the source
 * in messages (the file path, or "config"). */
static int load_yaml(dtmd_config *cfg, yaml_parser_t *parser, const char *what,
                     config_warn_fn *warn_cb, char **err) {
    yaml_document_t doc;
    if (!yaml_parser_load(parser, &doc)) {
        const char *problem = parser->problem ? parser->problem : "syntax error";
        if (parser->error == YAML_READER_ERROR)
            set_err(err, "%s: YAML error at byte %lu: %s", what,
                    (unsigned long)parser->problem_offset, problem);
        else if (parser->context)
            set_err(err, "%s: YAML error at line %lu, column %lu: %s %s started at line %lu", what,
                    (unsigned long)parser->problem_mark.line + 1,
                    (unsigned long)parser->problem_mark.column + 1, problem, parser->context,
                    (unsigned long)parser->context_mark.line + 1);
        else
            set_err(err, "%s: YAML error at line %lu, column %lu: %s", what,
                    (unsigned long)parser->problem_mark.line + 1,
                    (unsigned long)parser->problem_mark.column + 1, problem);
        return -1;
    }
    int rc = 0;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root && !is_null(root)) {
        if (root->type != YAML_MAPPING_NODE) {
            set_err(err, "%s: expected a mapping of keys at the top level", what);
            rc = -1;
        } else {
            load_ctx c = {cfg, &doc, warn_cb, err};
            rc = walk_mapping(&c, root, "");
        }
    }
    yaml_document_delete(&doc);
    return rc;
}

/* ---- environment ---- */

static const char *env_get(char *const *envp, const char *name) {
    if (!envp) return NULL;
    size_t n = strlen(name);
    for (char *const *e = envp; *e; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=') return *e + n + 1;
    return NULL;
}

/* Apply every key's environment variable; unset or empty means no override
 * (as in dtm). */
static int apply_env(dtmd_config *cfg, char *const *envp, char **err) {
    for (size_t i = 0; i < NKEYS; i++) {
        char name[128], label[256];
        config_env_name(keys[i].path, name, sizeof name);
        const char *v = env_get(envp, name);
        if (!v || !*v) continue;
        snprintf(label, sizeof label, "%s (env %s)", keys[i].path, name);
        if (set_value(cfg, &keys[i], v, label, err) != 0) return -1;
    }
    return 0;
}

/* ---- public interface ---- */

int64_t config_lease_ms(const dtmd_config *cfg) {
    double secs = cfg->retry_interval < cfg->retry_max_interval ? cfg->retry_interval
                                                                : cfg->retry_max_interval;
    return (int64_t)(secs * 1000);
}

void config_defaults(dtmd_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->store_driver = dupstr("redis");
    cfg->store_host = dupstr("127.0.0.1");
    cfg->store_port = 6379;
    cfg->store_user = dupstr("");
    cfg->store_password = dupstr("");
    cfg->redis_prefix = dupstr("dtmd");
    cfg->data_expire = 604800;
    cfg->finished_data_expire = 86400;
    cfg->store_shards = 16;
    cfg->store_max_queued = 10000;
    cfg->store_command_timeout_ms = 2000;
    cfg->store_wait_replicas = 0;
    cfg->store_wait_timeout_ms = 1000;
    cfg->sentinel_addrs_text = dupstr("");
    cfg->sentinel_master = dupstr("mymaster");
    cfg->sentinel_password = dupstr("");
    cfg->http_host = dupstr("0.0.0.0");
    cfg->http_port = 36789;
    cfg->trans_cron_interval = 3;
    cfg->timeout_to_fail = 35;
    cfg->retry_interval = 10;
    cfg->request_timeout = 3;
    cfg->retry_max_interval = 3600;
    cfg->log_level = LOG_INFO;
    cfg->log_outputs = dupstr("stderr");
    cfg->alert_retry_limit = 3;
    cfg->alert_web_hook = dupstr("");
    cfg->max_body_bytes = 1048576;
    cfg->max_branches = 2000;
    cfg->max_gid_length = 128;
    cfg->auth_token = dupstr("");
    cfg->auth_admin_token = dupstr("");
    cfg->branch_allow_text = dupstr("");
    cfg->max_inflight_calls = 1024;
    cfg->max_header_bytes = 65536;
    cfg->idle_timeout = 120;
    cfg->max_connections = 10000;
    cfg->close_idle_at_limit = 1;
    cfg->max_active_passes = 2048;
    cfg->max_request_timeout = 3600;
    cfg->max_timeout_to_fail = 604800;
    cfg->max_retry_interval = 86400;
    cfg->max_all_bytes = 4194304;
    cfg->metrics_max_label_values = 100;
}

/* Shared tail of both loaders: parser already set up (or NULL = no YAML). */
static int load_common(dtmd_config *cfg, yaml_parser_t *parser, const char *what, char *const *envp,
                       config_warn_fn *warn_cb, char **err) {
    if (err) *err = NULL;
    config_defaults(cfg);
    if ((parser && load_yaml(cfg, parser, what, warn_cb, err) != 0) ||
        apply_env(cfg, envp, err) != 0 || resolve_store_seeds(cfg, err) != 0 ||
        resolve_sentinels(cfg, err) != 0 || check_store_wait(cfg, err) != 0 ||
        resolve_branch_allow(cfg, err) != 0) {
        config_free(cfg);
        return -1;
    }
    return 0;
}

int config_load(dtmd_config *cfg, const char *path, config_warn_fn *warn_cb, char **err) {
    extern char **environ;
    if (!path) return load_common(cfg, NULL, NULL, environ, warn_cb, err);
    FILE *f = fopen(path, "rb");
    if (!f) {
        memset(cfg, 0, sizeof *cfg);
        if (err) *err = NULL;
        set_err(err, "cannot open config file %s: %s", path, strerror(errno));
        return -1;
    }
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) abort();
    yaml_parser_set_input_file(&parser, f);
    int rc = load_common(cfg, &parser, path, environ, warn_cb, err);
    yaml_parser_delete(&parser);
    fclose(f);
    return rc;
}

int config_load_from(dtmd_config *cfg, const char *yaml_text, char *const *envp,
                     config_warn_fn *warn_cb, char **err) {
    if (!yaml_text) return load_common(cfg, NULL, NULL, envp, warn_cb, err);
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) abort();
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml_text, strlen(yaml_text));
    int rc = load_common(cfg, &parser, "config", envp, warn_cb, err);
    yaml_parser_delete(&parser);
    return rc;
}

/* dtm's rule: '.' becomes '_'; '_' goes between a lowercase letter or digit
 * and a capital, and before a capital that starts a word after an acronym
 * ("HTTPPort" -> "HTTP_PORT"); everything is upper-cased. Truncates to n. */
void config_env_name(const char *key, char *out, size_t n) {
    if (!n) return;
    size_t o = 0;
#define PUT(ch)                                                                                    \
    do {                                                                                           \
        if (o + 1 < n) out[o++] = (char)(ch);                                                      \
    } while (0)
    for (size_t i = 0; key[i]; i++) {
        unsigned char c = (unsigned char)key[i];
        if (c == '.') {
            PUT('_');
            continue;
        }
        if (i > 0 && isupper(c)) {
            unsigned char prev = (unsigned char)key[i - 1];
            unsigned char next = (unsigned char)key[i + 1];
            if (islower(prev) || isdigit(prev) || (isupper(prev) && islower(next))) PUT('_');
        }
        PUT(toupper(c));
    }
#undef PUT
    out[o] = '\0';
}

void config_free(dtmd_config *cfg) {
    free(cfg->store_driver);
    free(cfg->store_host);
    free(cfg->store_user);
    free(cfg->store_password);
    free(cfg->redis_prefix);
    free(cfg->http_host);
    free(cfg->alert_web_hook);
    free(cfg->log_outputs);
    cfg->log_outputs = NULL;
    free(cfg->auth_token);
    free(cfg->auth_admin_token);
    free(cfg->branch_allow_text);
    for (int i = 0; i < cfg->nbranch_allow; i++) free(cfg->branch_allow[i]);
    free(cfg->branch_allow);
    cfg->branch_allow = NULL;
    cfg->nbranch_allow = 0;
    cfg->auth_token = cfg->auth_admin_token = cfg->branch_allow_text = NULL;
    for (int i = 0; i < cfg->store_nseeds; i++) free(cfg->store_seeds[i].host);
    free(cfg->store_seeds);
    cfg->store_seeds = NULL;
    cfg->store_nseeds = 0;
    for (int i = 0; i < cfg->nsentinels; i++) free(cfg->sentinels[i].host);
    free(cfg->sentinels);
    cfg->sentinels = NULL;
    cfg->nsentinels = 0;
    free(cfg->sentinel_addrs_text);
    free(cfg->sentinel_master);
    free(cfg->sentinel_password);
    cfg->sentinel_addrs_text = cfg->sentinel_master = cfg->sentinel_password = NULL;
    cfg->store_driver = cfg->store_host = cfg->store_user = cfg->store_password = NULL;
    cfg->redis_prefix = cfg->http_host = cfg->alert_web_hook = NULL;
}

/* ---- effective configuration (dtmd --check-config) ---- */

static int is_secret(const char *path) {
    return strstr(path, "Password") != NULL || strstr(path, "Token") != NULL;
}

static void print_quoted(FILE *out, const char *s) {
    fputc('"', out);
    for (; s && *s; s++) {
        if (*s == '"' || *s == '\\')
            fprintf(out, "\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            fprintf(out, "\\x%02x", (unsigned char)*s);
        else
            fputc(*s, out);
    }
    fputc('"', out);
}

/* A URL with its userinfo password hidden: http://u:secret@h/ -> http://u:****@h/ */
static void print_url_masked(FILE *out, const char *url) {
    const char *scheme = strstr(url, "://");
    const char *at = scheme ? strchr(scheme + 3, '@') : NULL;
    const char *slash = scheme ? strchr(scheme + 3, '/') : NULL;
    const char *colon = scheme ? strchr(scheme + 3, ':') : NULL;
    if (!at || (slash && slash < at) || !colon || colon > at) {
        print_quoted(out, url);
        return;
    }
    char *masked = NULL;
    if (asprintf(&masked, "%.*s:****%s", (int)(colon - url), url, at) < 0) abort();
    print_quoted(out, masked);
    free(masked);
}

void config_print(const dtmd_config *cfg, FILE *out) {
    for (size_t i = 0; i < NKEYS; i++) {
        const key_def *k = &keys[i];
        if (strcmp(k->path, "Log.Level") == 0) continue; /* same field as LogLevel */
        const char *base = (const char *)cfg + k->off;
        char env[128];
        config_env_name(k->path, env, sizeof env);
        fprintf(out, "%s: ", k->path);
        switch (k->kind) {
            case K_STR:
            case K_NONEMPTY:
            case K_DRIVER:
            case K_LIST: {
                const char *v = *(char *const *)base;
                if (is_secret(k->path) && v && *v)
                    fputs("\"****\"", out);
                else if (strcmp(k->path, "AlertWebHook") == 0 && v)
                    print_url_masked(out, v);
                else
                    print_quoted(out, v ? v : "");
                break;
            }
            case K_INT:
                fprintf(out, "%d", *(const int *)base);
                break;
            case K_I64:
                fprintf(out, "%lld", (long long)*(const int64_t *)base);
                break;
            case K_SIZE:
                fprintf(out, "%zu", *(const size_t *)base);
                break;
            case K_DUR:
                fprintf(out, "%g", *(const double *)base);
                break;
            case K_MS:
                fprintf(out, "%g", *(const int *)base / 1000.0);
                break;
            case K_LEVEL: {
                static const char *const names[] = {"debug", "info", "warn", "error"};
                int lv = (int)*(const log_level_t *)base;
                fputs(lv >= 0 && lv < 4 ? names[lv] : "?", out);
                break;
            }
            case K_LOGFMT:
                fputs(*(const int *)base ? "json" : "text", out);
                break;
            case K_BOOL:
                fputs(*(const int *)base ? "true" : "false", out);
                break;
            default:
                fputs("~", out);
                break;
        }
        fprintf(out, "    # env %s\n", env);
    }
}
