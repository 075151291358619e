/* config_keys.c - the configuration key table, and parsing and checking values.
 *
 * Why a module of its own: every dtmd key is described once, in `config_keys`
 * below: its YAML path, its type and range, and where it lives in
 * dtmd_config. The YAML loader, the environment overrides (config_load.c) and
 * --check-config (config_print.c) all walk this one table, so they cannot
 * drift apart. A bad value is refused with a message naming the key; dtm
 * would silently keep a zero, which is how misconfigured servers retry in a
 * tight loop. The checks that need several keys (the cluster seeds of
 * Store.Host, the sentinels, WAIT against CommandTimeout, BranchAllow) run
 * once everything is loaded (config_resolve). Allocation failure aborts, as
 * everywhere in dtmd. */
#include "config_keys.h"

#include "url_allow.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Longest accepted duration, seconds (about 31 years): keeps ms arithmetic
 * far from overflow. */
#define MAX_DURATION_S 1e9

/* ---- small allocation helpers (abort on failure) ---- */

char *config_dupstr(const char *s) {
    char *p = strdup(s);
    if (!p) abort();
    return p;
}

/* Replace a heap string field with a copy of s. */
static void set_str(char **field, const char *s) {
    char *old = *field;
    *field = config_dupstr(s);
    free(old);
}

/* Set *err (if err is not NULL) to a malloc'd formatted message. */
void config_set_err(char **err, const char *fmt, ...) {
    if (!err) return;
    va_list ap;
    va_start(ap, fmt);
    char *msg = NULL;
    if (vasprintf(&msg, fmt, ap) < 0) abort();
    va_end(ap);
    free(*err);
    *err = msg;
}

/* ---- key table ---- */

#define OFF(f) offsetof(dtmd_config, f)
#define PORT_EXPECT "expected a port number 1..65535"

const key_def config_keys[] = {
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
const size_t config_nkeys = sizeof config_keys / sizeof config_keys[0];

const key_def *config_find_key(const char *path) {
    for (size_t i = 0; i < config_nkeys; i++)
        if (strcmp(config_keys[i].path, path) == 0) return &config_keys[i];
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
int config_set_value(dtmd_config *cfg, const key_def *k, const char *text, const char *label,
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
                config_set_err(err, "%s: %s, got an empty value", label, k->expect);
                return -1;
            }
            set_str((char **)base, text);
            return 0;
        case K_DRIVER:
            if (strcmp(text, "redis") != 0) {
                config_set_err(err, "%s: only redis is supported, got '%.64s'", label, text);
                return -1;
            }
            set_str((char **)base, text);
            return 0;
        case K_INT:
        case K_I64:
        case K_SIZE:
            if (parse_ll(text, &v) != 0 || v < k->min || v > k->max) {
                config_set_err(err, "%s: %s, got '%.64s'", label, k->expect, text);
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
                config_set_err(err, "%s: expected a positive number of seconds, got '%.64s'", label,
                               text);
                return -1;
            }
            if (d > MAX_DURATION_S) {
                config_set_err(err,
                               "%s: expected a positive number of seconds up to %.0f, got '%.64s'",
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
                config_set_err(err, "%s: %s, got '%.64s'", label, k->expect, text);
                return -1;
            }
            *(int *)base = (int)v;
            return 0;
        }
        case K_LOGFMT:
            if (strcasecmp(text, "text") != 0 && strcasecmp(text, "json") != 0) {
                config_set_err(err, "%s: expected text or json, got '%.64s'", label, text);
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
                config_set_err(err, "%s: expected true or false, got '%.64s'", label, text);
                return -1;
            }
            return 0;
        case K_LEVEL: {
            log_level_t lv;
            if (log_parse_level(text, &lv) != 0) {
                config_set_err(err, "%s: expected debug, info, warn or error, got '%.64s'", label,
                               text);
                return -1;
            }
            *(log_level_t *)base = lv;
            return 0;
        }
    }
    return -1;
}

/* RedisAddr: "host:port" or "[v6addr]:port" -> Store.Host and Store.Port. */
int config_set_redis_addr(dtmd_config *cfg, const char *text, const char *label, char **err) {
    const char *colon = strrchr(text, ':');
    const char *host = text;
    size_t hlen = colon ? (size_t)(colon - text) : 0;
    if (colon && hlen >= 2 && text[0] == '[' && text[hlen - 1] == ']') {
        host = text + 1;
        hlen -= 2;
    }
    long long port;
    if (!colon || hlen == 0 || parse_ll(colon + 1, &port) != 0 || port < 1 || port > 65535) {
        config_set_err(err, "%s: expected host:port, got '%.64s'", label, text);
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
                config_set_err(err, "Store.Host: %s, got '%.*s'", SEEDS_EXPECT,
                               (int)(b - a > 64 ? 64 : b - a), a);
                return -1;
            }
            cfg->store_nseeds++;
        }
    }
    if (cfg->store_nseeds == 0) {
        config_set_err(err, "Store.Host: %s, got '%.64s'", SEEDS_EXPECT, h);
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
        config_set_err(err,
                       "Store.SentinelAddrs: Redis Sentinel and Redis Cluster (Store.Host list or "
                       "Store.Cluster) exclude each other");
        return -1;
    }
    if (!cfg->sentinel_master || !cfg->sentinel_master[0]) {
        config_set_err(err, "Store.SentinelMaster: expected the master's name, got an empty value");
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
                config_set_err(err, "Store.SentinelAddrs: %s, got '%.*s'", SENTINELS_EXPECT,
                               (int)(b - a > 64 ? 64 : b - a), a);
                return -1;
            }
            cfg->nsentinels++;
        }
    }
    if (cfg->nsentinels == 0) {
        config_set_err(err, "Store.SentinelAddrs: %s, got '%.64s'", SENTINELS_EXPECT, s);
        return -1;
    }
    return 0;
}

/* A WAIT holds up the commands behind it on its connection for up to
 * Store.WaitTimeout: it must end well before they time out. */
static int check_store_wait(const dtmd_config *cfg, char **err) {
    if (cfg->store_wait_replicas > 0 &&
        cfg->store_wait_timeout_ms >= cfg->store_command_timeout_ms) {
        config_set_err(
            err,
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
                config_set_err(err, "BranchAllow: %s", msg);
                return -1;
            }
        }
    }
    return 0;
}

/* ---- after loading ---- */

int config_resolve(dtmd_config *cfg, char **err) {
    return resolve_store_seeds(cfg, err) != 0 || resolve_sentinels(cfg, err) != 0 ||
                   check_store_wait(cfg, err) != 0 || resolve_branch_allow(cfg, err) != 0
               ? -1
               : 0;
}
