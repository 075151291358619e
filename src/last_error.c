/* last_error.c - see last_error.h. */
#include "last_error.h"

#include "util.h"

#include <string.h>

size_t utf8_seq_len(const unsigned char *s, size_t n) {
    if (n == 0) return 0;
    unsigned char c = s[0];
    if (c < 0x80) return 1;
    size_t len;
    unsigned min;
    unsigned cp;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2, cp = c & 0x1F, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3, cp = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4, cp = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    /* No overlong forms, surrogates or code points past U+10FFFF. */
    if (cp < min || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return 0;
    return len;
}

/* Append at most max bytes of s as a JSON string of valid UTF-8. */
static void put_excerpt(sbuf *o, const char *s, size_t n, size_t max) {
    sbuf clean;
    sb_init(&clean);
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        size_t k = utf8_seq_len(u + i, n - i);
        size_t out = k ? k : 1;
        if (clean.len + out > max) break;
        if (k)
            sb_append(&clean, s + i, k);
        else
            sb_putc(&clean, '?');
        i += out;
    }
    sb_json_str(o, clean.ptr ? clean.ptr : "", clean.len);
    sb_free(&clean);
}

static void put_key_str(sbuf *o, const char *k, const char *v) {
    sb_printf(o, ",\"%s\":", k);
    put_excerpt(o, v ? v : "", v ? strlen(v) : 0, (size_t)-1);
}

char *last_error_json(const char *branch_id, const char *op, const char *url, branch_outcome o,
                      long http_status, const char *body, size_t len, int64_t now_ms) {
    sbuf j;
    sb_init(&j);
    sb_puts(&j, "{\"branch_id\":");
    put_excerpt(&j, branch_id ? branch_id : "", branch_id ? strlen(branch_id) : 0, (size_t)-1);
    put_key_str(&j, "op", op);
    put_key_str(&j, "url", url);
    put_key_str(&j, "outcome", branch_outcome_name(o));
    if (http_status > 0) {
        sb_printf(&j, ",\"http_status\":%ld,\"body\":", http_status);
        put_excerpt(&j, body ? body : "", body ? len : 0, LAST_ERROR_BODY_MAX);
    } else {
        sb_puts(&j, ",\"transport_error\":");
        put_excerpt(&j, body ? body : "", body ? len : 0, LAST_ERROR_BODY_MAX);
    }
    char ts[48];
    format_time_ms(now_ms, ts, sizeof ts);
    put_key_str(&j, "time", ts);
    sb_putc(&j, '}');
    return sb_detach(&j);
}
