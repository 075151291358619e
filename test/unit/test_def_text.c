/* test_def_text.c - steps and payloads packed for the store: exact round
 * trips, the shapes that pack and those that stay JSON. */
#include "def_text.h"
#include "unit.h"

#include <stdlib.h>
#include <string.h>

/* pack, then unpack: the same bytes; *packed (if given) gets the stored text */
static int steps_roundtrip(const char *json, char *packed, size_t cap) {
    sbuf p, back;
    sb_init(&p);
    sb_init(&back);
    int rc = steps_pack(json, strlen(json), &p);
    if (rc == 0) {
        CHECK(p.ptr[0] == '~');
        CHECK(steps_unpack(p.ptr, p.len, &back) == 0);
        CHECK_STR(back.ptr, json);
    } else {
        CHECK_INT(p.len, 0);
    }
    if (packed) snprintf(packed, cap, "%s", rc == 0 ? p.ptr : "");
    sb_free(&p);
    sb_free(&back);
    return rc;
}

void test_def_text_steps(void) {
    char v[512];
    const char *saga = "[{\"action\":\"http://h:1/api/busi/TransOut\",\"compensate\":"
                       "\"http://h:1/api/busi/TransOutRevert\"},{\"action\":"
                       "\"http://h:1/api/busi/TransIn\",\"compensate\":\"http://h:1/api/busi/"
                       "TransInRevert\"}]";
    CHECK_INT(steps_roundtrip(saga, v, sizeof v), 0);
    CHECK_STR(v, "~chttp://h:1/api/busi/Trans Out +Revert In +Revert"); /* compensate = action + */
    /* empty URLs (a step that succeeds without a call) */
    CHECK_INT(steps_roundtrip("[{\"action\":\"\",\"compensate\":\"\"},{\"action\":\"\","
                              "\"compensate\":\"\"}]",
                              v, sizeof v),
              0);
    CHECK_STR(v, "~c    ");
    /* a msg; one URL alone; one URL the prefix of another; equal URLs */
    CHECK_INT(
        steps_roundtrip("[{\"action\":\"http://a/x\"},{\"action\":\"http://a/y\"}]", v, sizeof v),
        0);
    CHECK_STR(v, "~ahttp://a/ x y");
    CHECK_INT(steps_roundtrip("[{\"action\":\"http://a/x\"}]", v, sizeof v), 0);
    CHECK_STR(v, "~ahttp://a/ x");
    CHECK_INT(steps_roundtrip("[{\"action\":\"http://a/x\",\"compensate\":\"http://a/xy\"}]", v,
                              sizeof v),
              0);
    CHECK_INT(
        steps_roundtrip("[{\"action\":\"http://a/x\",\"compensate\":\"http://a/x\"}]", v, sizeof v),
        0);
    CHECK_INT(steps_roundtrip("[{\"action\":\"\",\"compensate\":\"http://a/x\"},{\"action\":"
                              "\"http://a/x\",\"compensate\":\"\"}]",
                              v, sizeof v),
              0);
    /* a compensate equal to its action is not "+" (nothing after it) */
    CHECK_INT(steps_roundtrip("[{\"action\":\"http://a/x\",\"compensate\":\"http://a/x\"},"
                              "{\"action\":\"http://a/y\",\"compensate\":\"http://a/yz\"}]",
                              v, sizeof v),
              0);
    CHECK_STR(v, "~chttp://a/ x x y +z");
    /* a rest that itself starts with '+' would read as relative: stays JSON */
    CHECK_INT(
        steps_roundtrip("[{\"action\":\"http://a/x\",\"compensate\":\"http://a/+y\"}]", NULL, 0),
        -1);
    sbuf b0;
    sb_init(&b0);
    CHECK_INT(steps_unpack("~chttp:// +x", 12, &b0), -1); /* '+' after an empty action */
    sb_free(&b0);
    /* different hosts: no common prefix beyond the scheme */
    CHECK_INT(
        steps_roundtrip("[{\"action\":\"http://a/x\"},{\"action\":\"https://b/y\"}]", NULL, 0), 0);
    /* other shapes stay JSON */
    const char *json[] = {
        "[{\"compensate\":\"http://a/c\",\"action\":\"http://a/x\"}]", /* key order */
        "[{\"action\":\"http://a/x\",\"data\":\"d\"}]",                /* another key */
        "[{\"action\":\"http://a/x\"},{\"action\":\"http://a/y\",\"compensate\":\"\"}]",
        "[{\"action\":null}]",
        "[{\"action\":\"http://a/\\\"x\"}]", /* an escape */
        "[{\"action\":\"http://a/ x\"}]",    /* a space */
        "[{}]",
        "[]",
        "[{\"action\":\"http://a/x\"}] ",
        "",
    };
    for (size_t i = 0; i < sizeof json / sizeof json[0]; i++)
        CHECK_INT(steps_roundtrip(json[i], NULL, 0), -1);
    /* JSON stored as it is reads back as it is; broken packed text is refused */
    sbuf b;
    sb_init(&b);
    CHECK(steps_unpack("[{\"data\":\"x\"}]", 14, &b) == 0 && b.len == 14);
    sb_reset(&b);
    CHECK_INT(steps_unpack("~x a", 4, &b), -1);
    sb_reset(&b);
    CHECK_INT(steps_unpack("~c", 2, &b), -1);
    sb_reset(&b);
    CHECK_INT(steps_unpack("~chttp:// a", 11, &b), -1); /* a compensate missing */
    sb_free(&b);
}

void test_def_text_payloads(void) {
    const char *cases[] = {
        "[\"{\\\"amount\\\":30}\",\"{\\\"amount\\\":30}\"]",
        "[\"\"]",
        "[\"a\\nb\\\\c\\u0000d\\u001f\"]",
        "[\"\",\"x\",\"\"]",
        "[\"a\",\"a\",\"b\",\"b\",\"\",\"\"]",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sbuf p, back;
        sb_init(&p);
        sb_init(&back);
        CHECK_INT(payloads_pack(cases[i], strlen(cases[i]), &p), 0);
        CHECK(payloads_unpack(p.ptr, p.len, &back) == 0);
        CHECK_STR(back.ptr, cases[i]);
        sb_free(&p);
        sb_free(&back);
    }
    sbuf p;
    sb_init(&p);
    CHECK_INT(payloads_pack(cases[0], strlen(cases[0]), &p), 0);
    CHECK_STR(p.ptr, "~13:{\"amount\":30}=");
    sb_reset(&p);
    /* a NUL inside is kept */
    CHECK_INT(payloads_pack(cases[2], strlen(cases[2]), &p), 0);
    CHECK(p.len == 1 + 2 + 8 && memcmp(p.ptr, "~8:a\nb\\c\0d\x1f", p.len) == 0);
    sb_reset(&p);
    /* not as sb_json_str writes it (another escape): stays JSON */
    CHECK_INT(payloads_pack("[\"\\/\"]", 6, &p), -1);
    CHECK_INT(payloads_pack("[\"a\", 1]", 8, &p), -1);
    CHECK_INT(p.len, 0);
    /* malformed packed text */
    CHECK_INT(payloads_unpack("~5:ab", 5, &p), -1);
    sb_reset(&p);
    CHECK_INT(payloads_unpack("~x", 2, &p), -1);
    sb_reset(&p);
    CHECK_INT(payloads_unpack("~=", 2, &p), -1); /* nothing before it */
    sb_reset(&p);
    CHECK_INT(payloads_unpack("~99999999999999999999999:", 25, &p), -1);
    sb_free(&p);
}
