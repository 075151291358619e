/* test_last_error.c - the last_error record (last_error.h): always valid
 * JSON, the body cut at a character boundary, transport errors told apart. */
#include "json.h"
#include "last_error.h"
#include "unit.h"

#include <stdlib.h>
#include <string.h>

/* 2023-11-14T22:13:20.123Z */
#define T0 1700000000123LL

void test_last_error_json(void) {
    char *j =
        last_error_json("01", "action", "http://svc/a", BR_ERROR, 500, "down \"now\"\n", 11, T0);
    CHECK_STR(j, "{\"branch_id\":\"01\",\"op\":\"action\",\"url\":\"http://svc/a\","
                 "\"outcome\":\"ERROR\",\"http_status\":500,\"body\":\"down \\\"now\\\"\\n\","
                 "\"time\":\"2023-11-14T22:13:20.123Z\"}");
    free(j);

    /* no HTTP answer: the transport error instead of a status and body */
    j = last_error_json("00", "msg", "http://svc/q", BR_ERROR, 0, "Connection refused", 18, T0);
    CHECK(strstr(j, "\"transport_error\":\"Connection refused\"") != NULL);
    CHECK(strstr(j, "http_status") == NULL);
    free(j);

    /* a long UTF-8 body is cut before LAST_ERROR_BODY_MAX bytes, never inside
     * a character; invalid bytes become '?' */
    char body[600];
    size_t n = 0;
    body[n++] = (char)0xff; /* invalid */
    body[n++] = 'x';
    while (n + 3 <= sizeof body) { /* U+20AC, 3 bytes each */
        body[n++] = (char)0xe2;
        body[n++] = (char)0x82;
        body[n++] = (char)0xac;
    }
    j = last_error_json("02", "compensate", "u", BR_ONGOING, 425, body, n, T0);
    const char *b = strstr(j, "\"body\":\"");
    CHECK(b != NULL);
    if (b) {
        b += 8;
        const char *e = strchr(b, '"');
        CHECK(e != NULL);
        size_t len = e ? (size_t)(e - b) : 0;
        CHECK(len <= LAST_ERROR_BODY_MAX);
        CHECK(len >= LAST_ERROR_BODY_MAX - 3);
        CHECK(strncmp(b, "?x\xe2\x82\xac", 5) == 0);
        CHECK((len - 2) % 3 == 0); /* whole characters only */
    }
    char err[128];
    yajl_val v = json_parse(j, strlen(j), err, sizeof err);
    CHECK(v != NULL);
    json_free(v);
    free(j);

    /* overlong forms and surrogates are not UTF-8 */
    CHECK_INT(utf8_seq_len((const unsigned char *)"\xc0\x80", 2), 0);
    CHECK_INT(utf8_seq_len((const unsigned char *)"\xed\xa0\x80", 3), 0);
    CHECK_INT(utf8_seq_len((const unsigned char *)"\xf0\x9f\x98\x80", 4), 4);
    CHECK_INT(utf8_seq_len((const unsigned char *)"\xe2\x82", 2), 0);
}
