/* util.h - small shared helpers: growable string buffer, clock, base64,
 * JSON string escaping.
 *
 * sbuf owns its bytes; ptr is always NUL-terminated (after the first append
 * or sb_init) so it can be passed to C string functions. Allocation failure
 * aborts the process: dtmd cannot do anything useful without memory. */
#ifndef DTMD_UTIL_H
#define DTMD_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sbuf {
    char *ptr;
    size_t len;
    size_t cap;
} sbuf;

void sb_init(sbuf *b);
void sb_free(sbuf *b);
void sb_reset(sbuf *b);
void sb_append(sbuf *b, const char *s, size_t n);
/* Make room for n more bytes now: one allocation instead of several when
 * the final size is known or bounded. */
void sb_reserve(sbuf *b, size_t n);
void sb_puts(sbuf *b, const char *s);
void sb_putc(sbuf *b, char c);
void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_put_i64(sbuf *b, int64_t v);
/* Append s (n bytes) as a quoted JSON string with escaping. */
void sb_json_str(sbuf *b, const char *s, size_t n);
/* Detach the buffer: caller owns the returned string. */
char *sb_detach(sbuf *b);

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t m);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

int64_t now_ms(void); /* wall clock, milliseconds since the epoch */

/* v in decimal into out (room for 21 bytes), NUL-terminated; returns the
 * length. Not snprintf("%lld"): every stored time and every Redis argument
 * length goes through it, on the hot path. */
size_t fmt_i64(char *out, int64_t v);

/* RFC 3339 with milliseconds and local zone offset, as Go's time.Time JSON:
 * "2026-11-24T12:00:00.123+01:00". out must hold 40 bytes. */
void format_time_ms(int64_t ms, char *out, size_t n);

/* base64 (standard alphabet, padded). Caller frees. */
char *base64_encode(const char *data, size_t len, size_t *out_len);
/* Returns NULL on invalid input. */
char *base64_decode(const char *data, size_t len, size_t *out_len);

/* Parse a decimal int64 (whole string). 0 ok, -1 error. */
int parse_i64(const char *s, int64_t *out);

#endif
