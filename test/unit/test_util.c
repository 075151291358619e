/* test_util.c - tests for util.c: sbuf, JSON string escaping, base64,
 * parse_i64 and the RFC 3339 time format. */
#include "unit.h"

#include "util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void test_util_sbuf(void) {
    sbuf b;
    sb_init(&b);
    CHECK(b.ptr == NULL);
    CHECK_INT(b.len, 0);
    CHECK_INT(b.cap, 0);
    /* sb_reset and sb_free on an empty buffer are harmless */
    sb_reset(&b);
    sb_free(&b);
    CHECK(b.ptr == NULL);

    /* an empty append still yields a terminated string */
    sb_append(&b, "", 0);
    CHECK(b.ptr != NULL);
    CHECK_STR(b.ptr, "");
    CHECK_INT(b.len, 0);

    sb_puts(&b, "ab");
    sb_putc(&b, 'c');
    sb_append(&b, "defXYZ", 3);
    CHECK_STR(b.ptr, "abcdef");
    CHECK_INT(b.len, 6);
    CHECK(b.cap > b.len);

    /* embedded NUL bytes are kept, len counts them */
    sb_append(&b, "\0g", 2);
    CHECK_INT(b.len, 8);
    CHECK(memcmp(b.ptr, "abcdef\0g", 9) == 0);
    sb_putc(&b, '\0');
    CHECK_INT(b.len, 9);
    CHECK_INT(b.ptr[9], '\0');

    /* reset keeps the allocation, empties the string */
    size_t cap = b.cap;
    char *p = b.ptr;
    sb_reset(&b);
    CHECK_INT(b.len, 0);
    CHECK_STR(b.ptr, "");
    CHECK_INT(b.cap, cap);
    CHECK(b.ptr == p);

    /* growth across many appends keeps the content */
    for (int i = 0; i < 10000; i++) sb_putc(&b, (char)('a' + i % 26));
    CHECK_INT(b.len, 10000);
    CHECK(b.cap >= 10001);
    CHECK_INT(strlen(b.ptr), 10000);
    int ok = 1;
    for (int i = 0; i < 10000; i++) ok &= b.ptr[i] == (char)('a' + i % 26);
    CHECK(ok);

    /* detach hands the bytes over and leaves an empty buffer */
    sb_reset(&b);
    sb_puts(&b, "owned");
    char *s = sb_detach(&b);
    CHECK_STR(s, "owned");
    CHECK(b.ptr == NULL);
    CHECK_INT(b.len, 0);
    CHECK_INT(b.cap, 0);
    free(s);
    /* detaching an untouched buffer gives an empty heap string */
    s = sb_detach(&b);
    CHECK_STR(s, "");
    free(s);
    sb_free(&b);
}

void test_util_sb_printf(void) {
    sbuf b;
    sb_init(&b);
    sb_printf(&b, "%s-%d-%05.1f", "x", -42, 3.14159);
    CHECK_STR(b.ptr, "x--42-003.1");
    sb_printf(&b, "%c%%", '!');
    CHECK_STR(b.ptr, "x--42-003.1!%");
    sb_printf(&b, "%s", "");
    CHECK_INT(b.len, strlen("x--42-003.1!%"));

    /* output longer than the internal 256-byte stack buffer */
    char big[1000];
    memset(big, 'q', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    sb_reset(&b);
    sb_puts(&b, "<");
    sb_printf(&b, "%s|%d", big, 7);
    CHECK_INT(b.len, 1 + 999 + 2);
    CHECK(b.ptr[0] == '<' && b.ptr[1] == 'q' && b.ptr[999] == 'q');
    CHECK_STR(b.ptr + 1000, "|7");
    /* and exactly at the boundary: 255 and 256 characters */
    for (int n = 250; n <= 260; n++) {
        sb_reset(&b);
        sb_printf(&b, "%.*s", n, big);
        CHECK_INT(b.len, n);
        CHECK_INT(strlen(b.ptr), n);
    }
    sb_free(&b);
}

void test_util_sb_put_i64(void) {
    sbuf b;
    sb_init(&b);
    sb_put_i64(&b, 0);
    sb_putc(&b, ' ');
    sb_put_i64(&b, -1);
    sb_putc(&b, ' ');
    sb_put_i64(&b, 1700000000123LL);
    sb_putc(&b, ' ');
    sb_put_i64(&b, INT64_MAX);
    sb_putc(&b, ' ');
    sb_put_i64(&b, INT64_MIN);
    CHECK_STR(b.ptr, "0 -1 1700000000123 9223372036854775807 -9223372036854775808");
    sb_free(&b);
}

/* fmt_i64 against snprintf: every digit count, both signs, the limits, and
 * the values around each power of ten (where the two-digit steps change). */
void test_util_fmt_i64(void) {
    int64_t vals[200];
    int n = 0;
    vals[n++] = 0;
    vals[n++] = INT64_MAX;
    vals[n++] = INT64_MIN;
    vals[n++] = INT64_MIN + 1;
    for (int d = 0; d < 19; d++) {
        int64_t p = 1;
        for (int k = 0; k < d; k++) p *= 10;
        int64_t around[] = {p - 1, p, p + 1, p * 5 + 3};
        for (int k = 0; k < 4; k++) {
            vals[n++] = around[k];
            vals[n++] = -around[k];
        }
    }
    int bad = 0;
    for (int i = 0; i < n; i++) {
        char got[24], want[24];
        size_t len = fmt_i64(got, vals[i]);
        snprintf(want, sizeof want, "%lld", (long long)vals[i]);
        if (strcmp(got, want) != 0 || len != strlen(want)) {
            fprintf(stderr, "  fmt_i64(%s) gave \"%s\" (%zu)\n", want, got, len);
            bad++;
        }
    }
    CHECK_INT(bad, 0);
}

static void check_json_str(const char *in, size_t n, const char *want) {
    sbuf b;
    sb_init(&b);
    sb_json_str(&b, in, n);
    CHECK_STR(b.ptr, want);
    CHECK_INT(b.len, strlen(want));
    sb_free(&b);
}

void test_util_sb_json_str(void) {
    check_json_str("", 0, "\"\"");
    check_json_str("plain text", 10, "\"plain text\"");
    check_json_str("a\"b", 3, "\"a\\\"b\"");
    check_json_str("a\\b", 3, "\"a\\\\b\"");
    check_json_str("\"\\\"", 3, "\"\\\"\\\\\\\"\"");
    check_json_str("\n\r\t", 3, "\"\\n\\r\\t\"");
    check_json_str("\b\f", 2, "\"\\u0008\\u000c\"");
    check_json_str("\x01\x1f\x10", 3, "\"\\u0001\\u001f\\u0010\"");
    /* NUL bytes with an explicit length */
    check_json_str("a\0b", 3, "\"a\\u0000b\"");
    check_json_str("\0", 1, "\"\\u0000\"");
    check_json_str("\0\0", 2, "\"\\u0000\\u0000\"");
    /* only n bytes are read */
    check_json_str("abcdef", 3, "\"abc\"");
    /* DEL, '/', and bytes >= 0x80 (UTF-8) pass through */
    check_json_str("\x7f/", 2, "\"\x7f/\"");
    check_json_str("\xc3\xa9\xe4\xb8\xad", 5, "\"\xc3\xa9\xe4\xb8\xad\"");
    check_json_str("\xff", 1, "\"\xff\"");
    /* escapes at the start and the end of the input */
    check_json_str("\"x\"", 3, "\"\\\"x\\\"\"");
    /* every control character is escaped, nothing else below 0x80 is */
    char all[128];
    for (int i = 0; i < 128; i++) all[i] = (char)i;
    sbuf b;
    sb_init(&b);
    sb_json_str(&b, all, sizeof all);
    size_t ctl = 0;
    for (size_t i = 1; i + 1 < b.len; i++) {
        unsigned char c = (unsigned char)b.ptr[i];
        CHECK(c >= 0x20);
        if (c == '\\') {
            ctl++;
            i++; /* skip the escaped char */
        }
    }
    CHECK_INT(ctl, 34); /* 32 control characters, '"' and '\\' */
    /* 32 controls: \n \r \t as 2 bytes, 29 others as 6; '"' and '\\' as 2;
     * 94 other printable characters (incl. DEL) as 1; plus 2 quotes */
    CHECK_INT(b.len, 3 * 2 + 29 * 6 + 2 * 2 + 94 + 2);
    /* appends to existing content */
    sb_reset(&b);
    sb_puts(&b, "k:");
    sb_json_str(&b, "v", 1);
    CHECK_STR(b.ptr, "k:\"v\"");
    sb_free(&b);
}

static void check_b64(const char *in, size_t n, const char *want) {
    size_t olen = 12345;
    char *enc = base64_encode(in, n, &olen);
    CHECK_STR(enc, want);
    CHECK_INT(olen, strlen(want));
    size_t dlen = 12345;
    char *dec = base64_decode(enc, olen, &dlen);
    CHECK(dec != NULL);
    if (dec) {
        CHECK_INT(dlen, n);
        CHECK(memcmp(dec, in, n) == 0);
        CHECK_INT(dec[dlen], '\0');
    }
    free(enc);
    free(dec);
}

void test_util_base64(void) {
    /* RFC 4648 section 10 test vectors */
    check_b64("", 0, "");
    check_b64("f", 1, "Zg==");
    check_b64("fo", 2, "Zm8=");
    check_b64("foo", 3, "Zm9v");
    check_b64("foob", 4, "Zm9vYg==");
    check_b64("fooba", 5, "Zm9vYmE=");
    check_b64("foobar", 6, "Zm9vYmFy");
    /* binary, including NUL and 0xff */
    check_b64("\0", 1, "AA==");
    check_b64("\xff\xff\xff", 3, "////");
    check_b64("\xfb\xff\xbf", 3, "+/+/");
    check_b64("{\"amount\":30}", 13, "eyJhbW91bnQiOjMwfQ==");
    /* out_len may be NULL */
    char *e = base64_encode("ab", 2, NULL);
    CHECK_STR(e, "YWI=");
    char *d = base64_decode("YWI=", 4, NULL);
    CHECK_STR(d, "ab");
    free(e);
    free(d);

    /* round trip of every byte value at every length 0..300 */
    unsigned char buf[300];
    for (int i = 0; i < 300; i++) buf[i] = (unsigned char)(i * 7 + 3);
    int ok = 1;
    for (size_t n = 0; n <= sizeof buf; n++) {
        size_t el, dl;
        char *enc = base64_encode((const char *)buf, n, &el);
        ok &= el == 4 * ((n + 2) / 3) && strlen(enc) == el;
        char *dec = base64_decode(enc, el, &dl);
        ok &= dec != NULL && dl == n && memcmp(dec, buf, n) == 0;
        free(enc);
        free(dec);
    }
    CHECK(ok);

    /* The decoder accepts missing padding and the URL-safe alphabet. */
    size_t dl;
    d = base64_decode("Zg", 2, &dl);
    CHECK(d && dl == 1 && d[0] == 'f');
    free(d);
    d = base64_decode("Zm8", 3, &dl);
    CHECK(d && dl == 2 && memcmp(d, "fo", 2) == 0);
    free(d);
    d = base64_decode("-_-_", 4, &dl);
    CHECK(d && dl == 3 && memcmp(d, "\xfb\xff\xbf", 3) == 0);
    free(d);
    /* only len bytes are read */
    d = base64_decode("Zm9vYmFy!!!", 8, &dl);
    CHECK(d && dl == 6 && memcmp(d, "foobar", 6) == 0);
    free(d);
}

void test_util_base64_invalid(void) {
    size_t dl = 777;
    const char *bad[] = {"Z",       "Zm9vY", "Zm9v!", "Zm 9v", "Zm9v\n",           "Z=g=",
                         "Zm=v",    "=Zm9",  "Zm.v",  "Zm9v*", "\x80\x81\x82\x83", "Zg=x",
                         "Zm9vYmE$"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *d = base64_decode(bad[i], strlen(bad[i]), &dl);
        if (d) {
            fprintf(stderr, "  base64_decode(\"%s\") accepted invalid input\n", bad[i]);
            unit_failures++;
            free(d);
        }
    }
    /* an embedded NUL is invalid too */
    CHECK(base64_decode("Zm\0v", 4, &dl) == NULL);
}

void test_util_parse_i64(void) {
    int64_t v = -999;
    CHECK_INT(parse_i64("0", &v), 0);
    CHECK_INT(v, 0);
    CHECK_INT(parse_i64("123", &v), 0);
    CHECK_INT(v, 123);
    CHECK_INT(parse_i64("-5", &v), 0);
    CHECK_INT(v, -5);
    CHECK_INT(parse_i64("+7", &v), 0);
    CHECK_INT(v, 7);
    CHECK_INT(parse_i64("007", &v), 0);
    CHECK_INT(v, 7);
    CHECK_INT(parse_i64("9223372036854775807", &v), 0);
    CHECK_INT(v, INT64_MAX);
    CHECK_INT(parse_i64("-9223372036854775808", &v), 0);
    CHECK_INT(v, INT64_MIN);
    CHECK_INT(parse_i64("1700000000123", &v), 0);
    CHECK_INT(v, 1700000000123LL);

    /* errors leave *out untouched */
    v = 42;
    CHECK_INT(parse_i64("9223372036854775808", &v), -1);
    CHECK_INT(parse_i64("-9223372036854775809", &v), -1);
    CHECK_INT(parse_i64("99999999999999999999999", &v), -1);
    CHECK_INT(parse_i64("", &v), -1);
    CHECK_INT(parse_i64(NULL, &v), -1);
    CHECK_INT(parse_i64("abc", &v), -1);
    CHECK_INT(parse_i64("12abc", &v), -1);
    CHECK_INT(parse_i64("12 ", &v), -1);
    CHECK_INT(parse_i64("1.5", &v), -1);
    CHECK_INT(parse_i64("1e3", &v), -1);
    CHECK_INT(parse_i64("0x10", &v), -1);
    CHECK_INT(parse_i64("-", &v), -1);
    CHECK_INT(parse_i64("+", &v), -1);
    CHECK_INT(parse_i64("--1", &v), -1);
    CHECK_INT(v, 42);

    /* errno from an earlier failure does not leak into a later success */
    CHECK_INT(parse_i64("99999999999999999999", &v), -1);
    CHECK_INT(parse_i64("5", &v), 0);
    CHECK_INT(v, 5);
}

/* Regression test for a finding of the unit-test review:
 * parse_i64 promises to parse the whole string as a decimal, but strtoll
 * skips leading white space, so " 12" and "\n12" are accepted as 12
 * (Go's strconv.ParseInt, which dtm uses, refuses them). */
void test_util_parse_i64_whitespace(void) {
    int64_t v = 42;
    CHECK_INT(parse_i64(" 12", &v), -1);
    CHECK_INT(parse_i64("\t12", &v), -1);
    CHECK_INT(parse_i64("\n-3", &v), -1);
    CHECK_INT(parse_i64(" ", &v), -1);
    CHECK_INT(v, 42);
}

/* Run fn with TZ set to tz, then restore the previous TZ. */
static void with_tz(const char *tz, void (*fn)(void)) {
    const char *old = getenv("TZ");
    char *saved = old ? strdup(old) : NULL;
    setenv("TZ", tz, 1);
    tzset();
    fn();
    if (saved) {
        setenv("TZ", saved, 1);
        free(saved);
    } else {
        unsetenv("TZ");
    }
    tzset();
}

static void check_time(int64_t ms, const char *want) {
    char out[40];
    memset(out, 'x', sizeof out);
    format_time_ms(ms, out, sizeof out);
    CHECK_STR(out, want);
}

static void times_utc(void) {
    check_time(0, "1970-01-01T00:00:00.000Z");
    check_time(1, "1970-01-01T00:00:00.001Z");
    check_time(999, "1970-01-01T00:00:00.999Z");
    check_time(1000, "1970-01-01T00:00:01.000Z");
    check_time(1700000000123LL, "2023-11-14T22:13:20.123Z");
    check_time(1700000000050LL, "2023-11-14T22:13:20.050Z");
    check_time(951782400000LL, "2000-02-29T00:00:00.000Z"); /* leap day */
    check_time(1798761599999LL, "2026-12-31T23:59:59.999Z");
    check_time(4102444800000LL, "2100-01-01T00:00:00.000Z");
    /* before 1970 (only from a corrupt record): the ms after the second below */
    check_time(-1, "1969-12-31T23:59:59.999Z");
    check_time(-1000, "1969-12-31T23:59:59.000Z");
    check_time(-1001, "1969-12-31T23:59:58.999Z");
    /* the extremes: no overflow, a time in the usual shape */
    char out[40];
    format_time_ms(INT64_MIN, out, sizeof out);
    CHECK(strstr(out, ".192Z") != NULL);
    format_time_ms(INT64_MAX, out, sizeof out);
    CHECK(strstr(out, ".807Z") != NULL);
}

static void times_plus_0530(void) {
    /* POSIX TZ "IST-5:30" is UTC+05:30 (no tz database needed) */
    check_time(0, "1970-01-01T05:30:00.000+05:30");
    check_time(1700000000123LL, "2023-11-15T03:43:20.123+05:30");
}

static void times_minus_0500(void) {
    check_time(0, "1969-12-31T19:00:00.000-05:00");
    check_time(1700000000007LL, "2023-11-14T17:13:20.007-05:00");
}

static void times_plus_0100(void) {
    /* the example in util.h */
    check_time(1795518000123LL, "2026-11-24T12:00:00.123+01:00");
}

void test_util_format_time_ms(void) {
    with_tz("UTC", times_utc);
    with_tz("UTC0", times_utc);
    with_tz("IST-5:30", times_plus_0530);
    with_tz("EST5", times_minus_0500);
    with_tz("CET-1", times_plus_0100);

    /* Shape in whatever zone the process runs in:
     * YYYY-MM-DDTHH:MM:SS.mmm then Z or +HH:MM / -HH:MM. */
    char out[40];
    format_time_ms(1700000000123LL, out, sizeof out);
    size_t n = strlen(out);
    CHECK(n == 24 || n == 29);
    CHECK(out[4] == '-' && out[7] == '-' && out[10] == 'T' && out[13] == ':' && out[16] == ':' &&
          out[19] == '.');
    CHECK(strncmp(out + 19, ".123", 4) == 0);
    if (n == 24) CHECK(out[23] == 'Z');
    if (n == 29) CHECK((out[23] == '+' || out[23] == '-') && out[26] == ':');
}

void test_util_now_ms(void) {
    int64_t a = now_ms();
    CHECK(a > 1600000000000LL); /* after 2020 */
    CHECK(a < 4102444800000LL); /* before 2100 */
    int64_t b = now_ms();
    CHECK(b >= a && b - a < 1000);
    time_t t = time(NULL);
    CHECK(a / 1000 - (int64_t)t <= 1 && (int64_t)t - a / 1000 <= 1);
}

void test_util_xalloc(void) {
    char *s = xstrdup("hello");
    CHECK_STR(s, "hello");
    free(s);
    s = xstrndup("hello world", 5);
    CHECK_STR(s, "hello");
    free(s);
    s = xstrndup("a\0b", 3);
    CHECK(memcmp(s, "a\0b\0", 4) == 0);
    free(s);
    s = xstrndup("", 0);
    CHECK_STR(s, "");
    free(s);
    /* zero-size requests still return usable, distinct pointers */
    void *p = xmalloc(0), *q = xcalloc(0, 0);
    CHECK(p != NULL && q != NULL && p != q);
    free(p);
    free(q);
    int *z = xcalloc(16, sizeof(int));
    int zero = 1;
    for (int i = 0; i < 16; i++) zero &= z[i] == 0;
    CHECK(zero);
    z = xrealloc(z, 1000 * sizeof(int));
    CHECK_INT(z[15], 0); /* content kept */
    free(z);
}
