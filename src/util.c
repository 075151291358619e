/* util.c - string buffer, clock, base64 and JSON string escaping shared by
 * every module (see util.h). Kept dependency-free so unit tests link it. */
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static void oom(void) {
    fputs("dtmd: out of memory\n", stderr);
    abort();
}

void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) oom();
    return p;
}

void *xcalloc(size_t n, size_t m) {
    void *p = calloc(n ? n : 1, m ? m : 1);
    if (!p) oom();
    return p;
}

void *xrealloc(void *p, size_t n) {
    p = realloc(p, n ? n : 1);
    if (!p) oom();
    return p;
}

char *xstrdup(const char *s) {
    return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n) {
    char *p = xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void sb_init(sbuf *b) {
    b->ptr = NULL;
    b->len = b->cap = 0;
}

void sb_free(sbuf *b) {
    free(b->ptr);
    sb_init(b);
}

void sb_reset(sbuf *b) {
    b->len = 0;
    if (b->ptr) b->ptr[0] = '\0';
}

/* Make room for n more bytes plus the terminating NUL. */
static void sb_grow(sbuf *b, size_t n) {
    if (b->len + n + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + n + 1) cap *= 2;
    b->ptr = xrealloc(b->ptr, cap);
    b->cap = cap;
}

void sb_reserve(sbuf *b, size_t n) {
    sb_grow(b, n);
}

void sb_append(sbuf *b, const char *s, size_t n) {
    sb_grow(b, n);
    if (n) memcpy(b->ptr + b->len, s, n);
    b->len += n;
    b->ptr[b->len] = '\0';
}

void sb_puts(sbuf *b, const char *s) {
    sb_append(b, s, strlen(s));
}

void sb_putc(sbuf *b, char c) {
    sb_append(b, &c, 1);
}

void sb_printf(sbuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char tmp[256];
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof tmp) {
        sb_append(b, tmp, (size_t)n);
        return;
    }
    sb_grow(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->ptr + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void sb_put_i64(sbuf *b, int64_t v) {
    char tmp[24];
    sb_append(b, tmp, fmt_i64(tmp, v));
}

/* JSON escaping as Go's encoding/json does it for the characters that
 * matter to parsers: quotes, backslash, control characters. Bytes >= 0x80
 * are passed through (stored payloads are treated as UTF-8 text). */
void sb_json_str(sbuf *b, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    sb_grow(b, n + 2);
    sb_putc(b, '"');
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        sb_append(b, s + start, i - start);
        start = i + 1;
        switch (c) {
            case '"':
                sb_append(b, "\\\"", 2);
                break;
            case '\\':
                sb_append(b, "\\\\", 2);
                break;
            case '\n':
                sb_append(b, "\\n", 2);
                break;
            case '\r':
                sb_append(b, "\\r", 2);
                break;
            case '\t':
                sb_append(b, "\\t", 2);
                break;
            default: {
                char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
                sb_append(b, e, 6);
            }
        }
    }
    sb_append(b, s + start, n - start);
    sb_putc(b, '"');
}

char *sb_detach(sbuf *b) {
    char *p = b->ptr ? b->ptr : xstrdup("");
    sb_init(b);
    return p;
}

int64_t now_ms(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

void format_time_ms(int64_t ms, char *out, size_t n) {
    time_t secs = (time_t)(ms / 1000);
    int sub = (int)(ms % 1000);
    if (sub < 0) secs--, sub += 1000; /* before 1970: the second below, and ms after it */
    struct tm tm;
    if (!localtime_r(&secs, &tm)) { /* a year past int: only from a corrupt value */
        snprintf(out, n, "%s", "1970-01-01T00:00:00.000Z");
        return;
    }
    char base[32];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    long off = tm.tm_gmtoff;
    if (off == 0) {
        snprintf(out, n, "%s.%03dZ", base, sub);
        return;
    }
    char sign = off < 0 ? '-' : '+';
    if (off < 0) off = -off;
    snprintf(out, n, "%s.%03d%c%02ld:%02ld", base, sub, sign, off / 3600, (off % 3600) / 60);
}

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *base64_encode(const char *data, size_t len, size_t *out_len) {
    const unsigned char *in = (const unsigned char *)data;
    size_t olen = 4 * ((len + 2) / 3);
    char *out = xmalloc(olen + 1), *p = out;
    size_t i = 0;
    for (; i + 2 < len; i += 3) {
        *p++ = b64chars[in[i] >> 2];
        *p++ = b64chars[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
        *p++ = b64chars[((in[i + 1] & 15) << 2) | (in[i + 2] >> 6)];
        *p++ = b64chars[in[i + 2] & 63];
    }
    if (i < len) {
        *p++ = b64chars[in[i] >> 2];
        if (i + 1 < len) {
            *p++ = b64chars[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
            *p++ = b64chars[(in[i + 1] & 15) << 2];
        } else {
            *p++ = b64chars[(in[i] & 3) << 4];
            *p++ = '=';
        }
        *p++ = '=';
    }
    *p = '\0';
    if (out_len) *out_len = (size_t)(p - out);
    return out;
}

static int b64val(unsigned char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
}

char *base64_decode(const char *data, size_t len, size_t *out_len) {
    while (len > 0 && data[len - 1] == '=') len--;
    if (len % 4 == 1) return NULL;
    char *out = xmalloc(len * 3 / 4 + 1);
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64val((unsigned char)data[i]);
        if (v < 0) {
            free(out);
            return NULL;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    out[o] = '\0';
    if (out_len) *out_len = o;
    return out;
}

int parse_i64(const char *s, int64_t *out) {
    /* An optional sign and digits, as Go's strconv.ParseInt: strtoll alone
     * would also skip leading white space. */
    if (!s || !*s) return -1;
    const char *d = (*s == '-' || *s == '+') ? s + 1 : s;
    if (*d < '0' || *d > '9') return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end) return -1;
    *out = v;
    return 0;
}

size_t fmt_i64(char *out, int64_t v) {
    /* two digits per division, written in place once the digits are
     * counted: it formats every length and time of every Redis command
     * (about 160 calls per saga) */
    static const char pairs[] = "00010203040506070809101112131415161718192021222324"
                                "25262728293031323334353637383940414243444546474849"
                                "50515253545556575859606162636465666768697071727374"
                                "75767778798081828384858687888990919293949596979899";
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    size_t len = v < 0;
    if (v < 0) out[0] = '-';
    static const uint64_t pow10[] = {10ull,
                                     100ull,
                                     1000ull,
                                     10000ull,
                                     100000ull,
                                     1000000ull,
                                     10000000ull,
                                     100000000ull,
                                     1000000000ull,
                                     10000000000ull,
                                     100000000000ull,
                                     1000000000000ull,
                                     10000000000000ull,
                                     100000000000000ull,
                                     1000000000000000ull,
                                     10000000000000000ull,
                                     100000000000000000ull,
                                     1000000000000000000ull,
                                     10000000000000000000ull};
    size_t nd = 1;
    while (nd < 20 && u >= pow10[nd - 1]) nd++;
    len += nd;
    char *p = out + len;
    *p = '\0';
    while (u >= 100) {
        const char *d = pairs + 2 * (u % 100);
        u /= 100;
        *--p = d[1];
        *--p = d[0];
    }
    if (u >= 10) {
        *--p = pairs[2 * u + 1];
        *--p = pairs[2 * u];
    } else {
        *--p = (char)('0' + u);
    }
    return len;
}
