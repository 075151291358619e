/* config.h - dtmd configuration: defaults, conf.yml, environment overrides.
 *
 * dtmd reads dtm's conf.yml keys (Store.Host, HttpPort, ...) so a dtm
 * configuration file starts dtmd unchanged. Every key can also be given as an
 * environment variable named by dtm's rule (Store.Host -> STORE_HOST,
 * HttpPort -> HTTP_PORT); unlike dtm, the environment wins over the file
 * (docs/configuration.md#environment-variables). Durations are seconds and may
 * be fractional. This header is the configuration every module reads;
 * config_load.h loads it, config_print.h shows it. */
#ifndef DTMD_CONFIG_H
#define DTMD_CONFIG_H

#include "log.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* A Redis node address: one entry of a Store.Host cluster list. */
typedef struct dtmd_addr {
    char *host;
    int port;
} dtmd_addr;

typedef struct dtmd_config {
    /* Store.* */
    char *store_driver;           /* only "redis" is accepted */
    char *store_host;             /* default "127.0.0.1" */
    int store_port;               /* default 6379 */
    char *store_user;             /* "" = none */
    char *store_password;         /* "" = none */
    char *redis_prefix;           /* Store.RedisPrefix, default "dtmd" */
    int64_t data_expire;          /* Store.DataExpire, seconds, default 604800 */
    int64_t finished_data_expire; /* Store.FinishedDataExpire, default 86400 */
    int store_shards;             /* Store.Shards, due-index shards, default 16, 1..1024 */
    int store_max_queued;         /* Store.MaxQueued: commands waiting for one node, 10000 */
    int store_cluster;            /* Store.Cluster: Redis Cluster even with one address */
    int store_command_timeout_ms; /* Store.CommandTimeout: longest wait for any reply, 2000 */
    int store_wait_replicas;      /* Store.WaitReplicas: WAIT for this many replicas, 0 = off */
    int store_wait_timeout_ms;    /* Store.WaitTimeout: WAIT's timeout, 1000 */
    char *sentinel_addrs_text;    /* Store.SentinelAddrs: "h1:p1,h2:p2", "" = no Sentinel */
    char *sentinel_master;        /* Store.SentinelMaster: the master's name, "mymaster" */
    char *sentinel_password;      /* Store.SentinelPassword: AUTH on the sentinels, "" = none */
    /* Derived from Store.Host once everything is loaded: a comma in it means
     * Redis Cluster, and each entry ("host:port", "[v6]:port", or a host that
     * takes Store.Port) is a seed node. 0 seeds = one Redis, store_host:port. */
    dtmd_addr *store_seeds;
    int store_nseeds;
    /* Derived from Store.SentinelAddrs: the sentinels to ask for the master. */
    dtmd_addr *sentinels;
    int nsentinels;

    char *http_host; /* HttpHost, listen address, default "0.0.0.0" */
    int http_port;   /* HttpPort, default 36789 */

    /* durations in seconds (fractional allowed), all > 0 */
    double trans_cron_interval; /* TransCronInterval, default 3 */
    double timeout_to_fail;     /* TimeoutToFail, default 35 */
    double retry_interval;      /* RetryInterval, default 10 */
    double request_timeout;     /* RequestTimeout, default 3 */
    double retry_max_interval;  /* RetryMaxInterval, default 3600 */

    log_level_t log_level; /* LogLevel: debug|info|warn|error, default info */
    /* Log.* (Log.Level = LogLevel) */
    int log_json;      /* Log.Format: 0 text (default), 1 json */
    char *log_outputs; /* Log.Outputs: "stderr" and/or file paths, comma separated */
    int log_access;    /* Log.Access: one line per HTTP request, default false */

    int alert_retry_limit; /* AlertRetryLimit, default 3 */
    char *alert_web_hook;  /* AlertWebHook, default "" */

    /* Limits.* (dtmd only) */
    size_t max_body_bytes; /* Limits.MaxBodyBytes, default 1048576 */
    int max_branches;      /* Limits.MaxBranches, default 2000 */
    int max_gid_length;    /* Limits.MaxGidLength, default 128 */

    /* Security and limits (dtmd only; see docs/security.md) */
    char *auth_token;        /* Auth.Token: bearer token for the API, "" = open */
    char *auth_admin_token;  /* Auth.AdminToken: token for management routes, "" = none */
    char *branch_allow_text; /* BranchAllow as given (comma list), "" = allow all */
    char **branch_allow;     /* derived: its entries, trimmed */
    int nbranch_allow;       /* 0 = every http(s) URL allowed */
    int max_inflight_calls;  /* Limits.MaxInflightCalls, default 1024 */
    size_t max_header_bytes; /* Limits.MaxHeaderBytes, default 65536 */
    double idle_timeout;     /* Limits.IdleTimeout, seconds, default 120 */
    int max_connections;     /* Limits.MaxConnections: open client connections, 0 = no
                                limit, default 10000 */
    int max_active_passes;   /* Limits.MaxActivePasses: transactions driven in memory at
                              * once (wait_result ones aside), 0 = no limit */
    int close_idle_at_limit; /* Limits.CloseIdleAtLimit: at MaxConnections close the
                              * longest-idle connection for a new one, default false */
    /* per-transaction fields above these are refused (400), seconds */
    int64_t max_request_timeout;  /* Limits.MaxRequestTimeout, default 3600 */
    int64_t max_timeout_to_fail;  /* Limits.MaxTimeoutToFail, default 604800 */
    int64_t max_retry_interval;   /* Limits.MaxRetryInterval, default 86400 */
    size_t max_all_bytes;         /* Limits.MaxAllBytes: JSON of one /all answer, about */
    int metrics_max_label_values; /* Metrics.MaxLabelValues: distinct values per label */
} dtmd_config;

/* Fill cfg with the defaults above (strings are heap copies). */
void config_defaults(dtmd_config *cfg);

/* The env variable name for a dotted key by dtm's rule, into out (size n).
 * "Store.RedisPrefix" -> "STORE_REDIS_PREFIX", "HTTPPort" -> "HTTP_PORT". */
void config_env_name(const char *key, char *out, size_t n);

/* How long a process that takes a transaction to drive holds it before any
 * other may: RetryInterval, capped by RetryMaxInterval like every other wait
 * (docs/protocol.md#retries-and-back-off). The cron scanner's lease and a request's claim. */
int64_t config_lease_ms(const dtmd_config *cfg);

void config_free(dtmd_config *cfg);

#endif
