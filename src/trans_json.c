/* trans_json.c - a transaction as dtm's query answers show it (see
 * trans_json.h). */
#include "trans_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void j_key(sbuf *o, const char *k) {
    sb_putc(o, ',');
    sb_json_str(o, k, strlen(k));
    sb_putc(o, ':');
}

static void j_str(sbuf *o, const char *k, const char *v) {
    if (!v || !*v) return;
    j_key(o, k);
    sb_json_str(o, v, strlen(v));
}

static void j_time(sbuf *o, const char *k, int64_t ms) {
    if (!ms) return;
    char ts[48];
    format_time_ms(ms, ts, sizeof ts);
    j_key(o, k);
    sb_json_str(o, ts, strlen(ts));
}

static void j_int(sbuf *o, const char *k, int64_t v) {
    if (!v) return;
    j_key(o, k);
    sb_put_i64(o, v);
}

static void j_raw(sbuf *o, const char *k, const char *json) {
    if (!json || !*json) return;
    j_key(o, k);
    sb_puts(o, json);
}

/* The options block dtm stores as JSON text: zero values omitted except
 * "concurrent", so it is never empty. */
static void options_json(const trans *t, sbuf *o) {
    sb_puts(o, "{");
    if (t->wait_result) sb_puts(o, "\"wait_result\":true,");
    if (t->timeout_to_fail)
        sb_printf(o, "\"timeout_to_fail\":%lld,", (long long)t->timeout_to_fail);
    if (t->request_timeout)
        sb_printf(o, "\"request_timeout\":%lld,", (long long)t->request_timeout);
    if (t->retry_interval) sb_printf(o, "\"retry_interval\":%lld,", (long long)t->retry_interval);
    if (t->branch_headers) sb_printf(o, "\"branch_headers\":%s,", t->branch_headers);
    sb_printf(o, "\"concurrent\":%s", t->concurrent ? "true" : "false");
    if (t->retry_limit) sb_printf(o, ",\"retry_limit\":%lld", (long long)t->retry_limit);
    sb_puts(o, "}");
}

void trans_to_json(const trans *t, sbuf *o) {
    sb_puts(o, "{\"id\":0");
    j_time(o, "create_time", t->create_ms);
    j_time(o, "update_time", t->update_ms);
    j_str(o, "gid", t->gid);
    j_str(o, "trans_type", trans_type_name(t->type));
    j_raw(o, "steps", t->steps);
    j_raw(o, "payloads", t->payloads);
    j_str(o, "status", global_status_name(t->status));
    j_str(o, "query_prepared", t->query_prepared);
    j_str(o, "protocol", t->protocol && *t->protocol ? t->protocol : "http");
    j_time(o, "finish_time", t->finish_ms);
    j_time(o, "rollback_time", t->rollback_ms);
    j_str(o, "result", t->result);
    j_str(o, "rollback_reason", t->rollback_reason);
    sbuf opts;
    sb_init(&opts);
    options_json(t, &opts);
    j_str(o, "options", opts.ptr);
    sb_free(&opts);
    j_str(o, "custom_data", t->custom_data);
    /* Go clients decode these as int64 seconds: never emit a fraction. */
    j_int(o, "next_cron_interval", (t->next_cron_interval_ms + 999) / 1000);
    j_time(o, "next_cron_time", t->next_cron_ms);
    if (t->wait_result) sb_puts(o, ",\"wait_result\":true");
    j_int(o, "timeout_to_fail", t->timeout_to_fail);
    j_int(o, "request_timeout", t->request_timeout);
    j_int(o, "retry_interval", t->retry_interval);
    j_raw(o, "branch_headers", t->branch_headers);
    sb_printf(o, ",\"concurrent\":%s", t->concurrent ? "true" : "false");
    j_int(o, "retry_limit", t->retry_limit);
    /* Always present (dtm's SDKs ignore unknown fields): why it is not done. */
    sb_printf(o, ",\"retry_count\":%lld,\"last_error\":%s", (long long)t->retry_count,
              t->last_error ? t->last_error : "null");
    sb_putc(o, '}');
}

void branch_to_json(const trans *t, int i, sbuf *o) {
    const branch *b = &t->branches[i];
    sb_puts(o, "{\"id\":0");
    if (b->create_ms)
        j_time(o, "create_time", b->create_ms);
    else
        sb_puts(o, ",\"create_time\":null");
    if (b->update_ms)
        j_time(o, "update_time", b->update_ms);
    else
        sb_puts(o, ",\"update_time\":null");
    j_str(o, "gid", t->gid);
    j_str(o, "url", b->url);
    if (b->data_len) {
        size_t n;
        char *enc = base64_encode(b->data, b->data_len, &n);
        j_key(o, "bin_data");
        sb_json_str(o, enc, n);
        free(enc);
    }
    j_key(o, "branch_id");
    sb_json_str(o, b->branch_id, strlen(b->branch_id));
    j_key(o, "op");
    sb_json_str(o, b->op, strlen(b->op));
    j_str(o, "status", branch_status_name(b->status));
    j_time(o, "finish_time", b->finish_ms);
    j_time(o, "rollback_time", b->rollback_ms);
    sb_putc(o, '}');
}

void trans_answer_json(const trans *t, const char *list, sbuf *out) {
    sb_puts(out, "{\"transaction\":");
    trans_to_json(t, out);
    sb_printf(out, ",\"%s\":[", list);
    for (int i = 0; i < t->nbranches; i++) {
        if (i) sb_putc(out, ',');
        branch_to_json(t, i, out);
    }
    sb_puts(out, "]}");
}
