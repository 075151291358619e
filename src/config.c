/* config.c - what dtmd's configuration is: its defaults, the environment
 * name of a key, and freeing it.
 *
 * Why apart from loading: every module reads dtmd_config, few load it. The
 * defaults here are the ones docs/configuration.md lists; loading
 * (config_load.c) starts from them, and the key table (config_keys.c)
 * parses and checks each value that replaces one. Allocation failure aborts,
 * as everywhere in dtmd. */
#include "config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static char *dupstr(const char *s) {
    char *p = strdup(s);
    if (!p) abort();
    return p;
}

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
    cfg->max_active_passes = 512;
    cfg->max_request_timeout = 3600;
    cfg->max_timeout_to_fail = 604800;
    cfg->max_retry_interval = 86400;
    cfg->max_all_bytes = 4194304;
    cfg->metrics_max_label_values = 100;
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
