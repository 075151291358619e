/* alert.c - retry alerts: log line plus optional webhook (see alert.h). */
#include "alert.h"

#include "branch_call.h"
#include "log.h"

#include <string.h>

int alert_retry_count(int64_t interval_ms, int64_t base_ms) {
    int n = 0;
    if (base_ms <= 0) return 0;
    while (interval_ms >= base_ms * 2 && n < 62) {
        interval_ms /= 2;
        n++;
    }
    return n;
}

/* The hook's answer does not matter. */
static void hook_done(void *arg, branch_outcome o, long status, const char *body, size_t len) {
    (void)arg;
    (void)body;
    (void)len;
    if (o != BR_SUCCESS)
        log_warn("alert webhook answered %ld (%s)", status, branch_outcome_name(o));
}

void alert_maybe(const dtmd_config *cfg, const trans *t, const char *branch_url, const char *error,
                 size_t error_len) {
    int n = alert_retry_count(t->next_cron_interval_ms, trans_base_interval_ms(t, cfg));
    if (n < cfg->alert_retry_limit) return;
    if (error_len > 500) error_len = 500;
    log_warn("gid %s: alert: branch %s failed %d times in a row: %.*s", t->gid, branch_url, n,
             (int)error_len, error);
    if (!cfg->alert_web_hook || !cfg->alert_web_hook[0]) return;
    sbuf body;
    sb_init(&body);
    sb_puts(&body, "{\"gid\":");
    sb_json_str(&body, t->gid, strlen(t->gid));
    sb_puts(&body, ",\"status\":");
    sb_json_str(&body, global_status_name(t->status), strlen(global_status_name(t->status)));
    sb_puts(&body, ",\"branch\":");
    sb_json_str(&body, branch_url, strlen(branch_url));
    sb_puts(&body, ",\"error\":");
    sb_json_str(&body, error, error_len);
    sb_printf(&body, ",\"retry_count\":%d}", n);
    branch_request req = {
        .url = cfg->alert_web_hook,
        .body = body.ptr,
        .body_len = body.len,
        .force_post = 1,
        .timeout_s = cfg->request_timeout,
    };
    if (!branch_call_start(&req, hook_done, NULL))
        log_warn("gid %s: alert webhook %s could not be called", t->gid, cfg->alert_web_hook);
    sb_free(&body);
}
