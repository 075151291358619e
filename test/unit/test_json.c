/* test_json.c - tests for json.c: json_parse (valid, invalid, length-bounded
 * input), json_field (absent / null / non-object) and json_write (compact
 * re-serialisation of every value kind, escapes and raw number text). */
#include "unit.h"

#include "json.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

/* Parse text (n bytes) and write it back; returns the written text (caller
 * frees) or NULL when parsing failed (then err holds the message). */
static char *roundtrip_n(const char *text, size_t n, char *err, size_t errlen) {
    yajl_val v = json_parse(text, n, err, errlen);
    if (!v) return NULL;
    sbuf b;
    sb_init(&b);
    json_write(&b, v);
    json_free(v);
    return sb_detach(&b);
}

static void check_roundtrip(const char *in, const char *want) {
    char err[256] = "";
    char *got = roundtrip_n(in, strlen(in), err, sizeof err);
    if (!got) fprintf(stderr, "  parse error for %s: %s\n", in, err);
    CHECK_STR(got, want);
    free(got);
}

/* json_parse must fail with a message that starts with "invalid JSON: " and
 * contains want (when not NULL). */
static void check_invalid_n(const char *in, size_t n, const char *want) {
    char err[256] = "";
    yajl_val v = json_parse(in, n, err, sizeof err);
    CHECK(v == NULL);
    if (v) {
        json_free(v);
        return;
    }
    CHECK(strncmp(err, "invalid JSON: ", 14) == 0);
    CHECK(strchr(err, '\n') == NULL); /* only the first line of yajl's message */
    if (want && !strstr(err, want)) {
        fprintf(stderr, "  message \"%s\" lacks \"%s\"\n", err, want);
        unit_failures++;
    }
}

static void check_invalid(const char *in, const char *want) {
    check_invalid_n(in, strlen(in), want);
}

void test_json_parse_valid(void) {
    char err[128] = "";
    const char *text = "{\"gid\":\"g1\",\"n\":42,\"f\":1.5,\"ok\":true,\"no\":false,"
                       "\"nil\":null,\"arr\":[1,\"two\",{\"three\":3}],\"obj\":{}}";
    yajl_val v = json_parse(text, strlen(text), err, sizeof err);
    CHECK(v != NULL);
    if (!v) return;
    CHECK(YAJL_IS_OBJECT(v));
    CHECK_INT(v->u.object.len, 8);
    yajl_val g = json_field(v, "gid");
    CHECK(g && YAJL_IS_STRING(g));
    if (g) CHECK_STR(g->u.string, "g1");
    yajl_val n = json_field(v, "n");
    CHECK(n && YAJL_IS_INTEGER(n));
    if (n) CHECK_INT(YAJL_GET_INTEGER(n), 42);
    yajl_val f = json_field(v, "f");
    CHECK(f && YAJL_IS_DOUBLE(f) && !YAJL_IS_INTEGER(f));
    if (f) CHECK(YAJL_GET_DOUBLE(f) == 1.5);
    CHECK(YAJL_IS_TRUE(json_field(v, "ok")));
    CHECK(YAJL_IS_FALSE(json_field(v, "no")));
    yajl_val arr = json_field(v, "arr");
    CHECK(arr && YAJL_IS_ARRAY(arr));
    if (arr) {
        CHECK_INT(arr->u.array.len, 3);
        CHECK(YAJL_IS_STRING(arr->u.array.values[1]));
        yajl_val three = json_field(arr->u.array.values[2], "three");
        CHECK(three && YAJL_GET_INTEGER(three) == 3);
    }
    yajl_val obj = json_field(v, "obj");
    CHECK(obj && YAJL_IS_OBJECT(obj) && obj->u.object.len == 0);
    json_free(v);

    /* Scalars are valid top-level documents; surrounding whitespace is fine. */
    v = json_parse(" \n\t42 \r\n", 8, err, sizeof err);
    CHECK(v && YAJL_IS_INTEGER(v) && YAJL_GET_INTEGER(v) == 42);
    if (v) json_free(v);
    v = json_parse("\"s\"", 3, err, sizeof err);
    CHECK(v && YAJL_IS_STRING(v) && strcmp(v->u.string, "s") == 0);
    if (v) json_free(v);
    v = json_parse("null", 4, err, sizeof err);
    CHECK(v && YAJL_IS_NULL(v));
    if (v) json_free(v);
}

void test_json_parse_invalid(void) {
    check_invalid("", "premature EOF");
    check_invalid("   ", "premature EOF");
    check_invalid("{", "premature EOF");
    check_invalid("[1,2", "premature EOF");
    check_invalid("{\"a\":}", "unallowed token");
    check_invalid("[1,]", "unallowed token");
    check_invalid("nul", "lexical error");
    check_invalid("{'a':1}", "invalid char");
    check_invalid("{\"a\":1} x", "trailing garbage");
    check_invalid("[1] [2]", "trailing garbage");
    check_invalid("\"\xff\"", "UTF8");
    check_invalid("{\"a\" 1}", NULL);
    check_invalid("{1:2}", NULL);
    check_invalid("\"unterminated", NULL);
    check_invalid("01", NULL);

    /* A raw NUL byte would make yajl stop early and accept a prefix: refused. */
    const char nul_body[] = "{\"a\":1}\0garbage";
    check_invalid_n(nul_body, sizeof nul_body - 1, "NUL byte");
    const char nul_in_string[] = "{\"a\":\"x\0y\"}";
    check_invalid_n(nul_in_string, sizeof nul_in_string - 1, "NUL byte");

    /* A small err buffer is truncated but stays terminated. */
    char small[8];
    memset(small, 'x', sizeof small);
    CHECK(json_parse("{", 1, small, sizeof small) == NULL);
    CHECK_INT(strlen(small), sizeof small - 1);
    CHECK(strncmp(small, "invalid", 7) == 0);
}

/* The text need not be NUL-terminated: only len bytes are read. */
void test_json_parse_len_bounded(void) {
    char err[128] = "";
    const char buf[] = "{\"a\":1}xxxx";
    yajl_val v = json_parse(buf, 7, err, sizeof err);
    CHECK(v && YAJL_IS_OBJECT(v));
    if (v) {
        yajl_val a = json_field(v, "a");
        CHECK(a && YAJL_GET_INTEGER(a) == 1);
        json_free(v);
    }
    /* The same bytes with the garbage included fail. */
    check_invalid_n(buf, sizeof buf - 1, "trailing garbage");
    /* A prefix that cuts a document is incomplete, even if more follows. */
    check_invalid_n(buf, 5, "premature EOF");
    /* A heap buffer with no terminator at all (valgrind/ASan would see an
     * overread if json_parse used strlen on the input). */
    char *heap = malloc(4);
    memcpy(heap, "[7] ", 4);
    v = json_parse(heap, 3, err, sizeof err);
    CHECK(v && YAJL_IS_ARRAY(v) && v->u.array.len == 1);
    if (v) json_free(v);
    free(heap);
    /* Zero length is an empty document. */
    check_invalid_n("{}", 0, "premature EOF");
}

void test_json_field(void) {
    char err[128];
    const char *text = "{\"a\":1,\"n\":null,\"s\":\"\",\"z\":0,\"f\":false,\"o\":{\"n\":null},"
                       "\"arr\":[]}";
    yajl_val v = json_parse(text, strlen(text), err, sizeof err);
    CHECK(v != NULL);
    if (!v) return;
    CHECK(json_field(v, "a") != NULL);
    CHECK(json_field(v, "missing") == NULL);
    CHECK(json_field(v, "") == NULL);
    CHECK(json_field(v, "A") == NULL); /* case-sensitive */
    /* null is treated as absent */
    CHECK(json_field(v, "n") == NULL);
    CHECK(json_field(json_field(v, "o"), "n") == NULL);
    /* falsy but present values are returned */
    yajl_val s = json_field(v, "s");
    CHECK(s && YAJL_IS_STRING(s) && s->u.string[0] == '\0');
    CHECK(YAJL_IS_INTEGER(json_field(v, "z")));
    CHECK(YAJL_IS_FALSE(json_field(v, "f")));
    yajl_val arr = json_field(v, "arr");
    CHECK(arr && YAJL_IS_ARRAY(arr));
    /* non-objects: NULL */
    CHECK(json_field(NULL, "a") == NULL);
    CHECK(json_field(arr, "a") == NULL);
    CHECK(json_field(json_field(v, "a"), "a") == NULL);
    CHECK(json_field(s, "a") == NULL);
    json_free(v);

    /* An array whose elements look like keys is still not an object. */
    v = json_parse("[\"a\",1]", 7, err, sizeof err);
    CHECK(v != NULL);
    CHECK(json_field(v, "a") == NULL);
    if (v) json_free(v);
}

void test_json_write_roundtrip(void) {
    /* compact output, key order kept, nesting */
    check_roundtrip("{ \"b\" : 1 , \"a\" : [ 1 , 2 , { \"c\" : [ ] } ] , \"d\" : { } }",
                    "{\"b\":1,\"a\":[1,2,{\"c\":[]}],\"d\":{}}");
    check_roundtrip("[true,false,null]", "[true,false,null]");
    check_roundtrip("[[[[]]],{\"x\":{\"y\":{\"z\":null}}}]",
                    "[[[[]]],{\"x\":{\"y\":{\"z\":null}}}]");
    check_roundtrip("{}", "{}");
    check_roundtrip("[]", "[]");
    check_roundtrip("null", "null");
    check_roundtrip("true", "true");
    check_roundtrip("\"\"", "\"\"");
    /* numbers keep their original text */
    check_roundtrip("[0,-0,1.50,1e3,1E-2,-12.25e+10]", "[0,-0,1.50,1e3,1E-2,-12.25e+10]");
    check_roundtrip("[9223372036854775807,-9223372036854775808]",
                    "[9223372036854775807,-9223372036854775808]");
    check_roundtrip("12345678901234567890123", "12345678901234567890123"); /* beyond int64 */
    /* string escapes: quote, backslash, solidus, control characters */
    check_roundtrip("\"a\\\"b\\\\c\\/d\"", "\"a\\\"b\\\\c/d\"");
    check_roundtrip("\"\\n\\r\\t\\b\\f\"", "\"\\n\\r\\t\\u0008\\u000c\"");
    check_roundtrip("\"\\u0001\\u001f\\u0020\\u007f\"", "\"\\u0001\\u001f \x7f\"");
    /* \u escapes become UTF-8, raw UTF-8 passes through */
    check_roundtrip("\"\\u00e9\"", "\"\xc3\xa9\"");
    check_roundtrip("\"\\u4e2d\\u6587\"", "\"\xe4\xb8\xad\xe6\x96\x87\"");
    check_roundtrip("\"\\ud83d\\ude00\"", "\"\xf0\x9f\x98\x80\"");
    check_roundtrip("\"\xc3\xa9t\xc3\xa9\"", "\"\xc3\xa9t\xc3\xa9\"");
    /* keys are escaped like strings */
    check_roundtrip("{\"a\\\"b\":\"c\\\\d\",\"\\n\":1}", "{\"a\\\"b\":\"c\\\\d\",\"\\n\":1}");
    /* a JSON document inside a string (dtm payloads) survives */
    check_roundtrip("[\"{\\\"amount\\\":30}\"]", "[\"{\\\"amount\\\":30}\"]");

    /* The output of json_write parses back to the same output. */
    const char *doc = "{\"k\":[1,\"\\u0002\\\"\",{\"z\":false}],\"u\":\"\\u00fc\"}";
    char err[128];
    char *once = roundtrip_n(doc, strlen(doc), err, sizeof err);
    CHECK(once != NULL);
    if (once) {
        char *twice = roundtrip_n(once, strlen(once), err, sizeof err);
        CHECK_STR(twice, once);
        free(twice);
        free(once);
    }
}

void test_json_write_appends(void) {
    /* json_write appends to what is already in the buffer; NULL writes null */
    sbuf b;
    sb_init(&b);
    sb_puts(&b, "x=");
    json_write(&b, NULL);
    CHECK_STR(b.ptr, "x=null");
    char err[64];
    yajl_val v = json_parse("[1]", 3, err, sizeof err);
    CHECK(v != NULL);
    sb_putc(&b, ';');
    json_write(&b, v);
    CHECK_STR(b.ptr, "x=null;[1]");
    CHECK_INT(b.len, strlen("x=null;[1]"));
    if (v) json_free(v);
    sb_free(&b);
}

static void check_strs(const char *text, const char *field, int want_rc, size_t want_n) {
    json_strs s;
    memset(&s, 0x5a, sizeof s);
    int rc = json_strings(text, strlen(text), field, &s);
    if (rc != want_rc || (rc == 0 && s.n != want_n)) {
        fprintf(stderr, "  json_strings(%s, %s) = %d with %zu strings, want %d with %zu\n", text,
                field ? field : "NULL", rc, rc == 0 ? s.n : 0, want_rc, want_n);
        unit_failures++;
    }
    if (rc != 0) { /* on error the output is empty and owns nothing */
        CHECK_INT(s.n, 0);
        CHECK(s.s == NULL && s.len == NULL);
    }
    json_strs_free(&s);
}

void test_json_strings(void) {
    /* the document is the array */
    json_strs s;
    const char doc[] = "[\"a\",\"b\\u0000c\",\"\",\"\\u00e9\\\"\\\\\",\"\\u0000\"]";
    CHECK_INT(json_strings(doc, sizeof doc - 1, NULL, &s), 0);
    CHECK_INT(s.n, 5);
    if (s.n == 5) {
        CHECK_STR(s.s[0], "a");
        CHECK_INT(s.len[0], 1);
        /* "\u0000" is kept: the length counts every byte */
        CHECK_INT(s.len[1], 3);
        CHECK(memcmp(s.s[1], "b\0c", 4) == 0);
        CHECK_STR(s.s[2], "");
        CHECK_INT(s.len[2], 0);
        CHECK_STR(s.s[3], "\xc3\xa9\"\\");
        CHECK_INT(s.len[3], 4);
        CHECK_INT(s.len[4], 1);
        CHECK_INT(s.s[4][0], '\0');
    }
    json_strs_free(&s);
    CHECK_INT(s.n, 0);
    CHECK(s.s == NULL && s.len == NULL);
    json_strs_free(&s); /* twice is harmless */

    /* a top-level member */
    const char obj[] = "{\"gid\":\"g\",\"other\":{\"payloads\":[1]},\"n\":[[\"x\"]],"
                       "\"payloads\":[\"p\\u0000\",\"q\"],\"z\":{\"a\":[true]}}";
    CHECK_INT(json_strings(obj, sizeof obj - 1, "payloads", &s), 0);
    CHECK_INT(s.n, 2);
    if (s.n == 2) {
        CHECK_INT(s.len[0], 2);
        CHECK(memcmp(s.s[0], "p\0", 3) == 0);
        CHECK_STR(s.s[1], "q");
    }
    json_strs_free(&s);

    /* only len bytes are read */
    const char buf[] = "[\"a\"]garbage";
    CHECK_INT(json_strings(buf, 5, NULL, &s), 0);
    CHECK_INT(s.n, 1);
    json_strs_free(&s);

    check_strs("[]", NULL, 0, 0);
    check_strs(" [ \"a\" , \"b\" ] ", NULL, 0, 2);
    check_strs("{}", "payloads", 0, 0);                       /* absent */
    check_strs("{\"payloads\":null}", "payloads", 0, 0);      /* null = absent */
    check_strs("{\"payloads\":[]}", "payloads", 0, 0);        /* empty */
    check_strs("{\"Payloads\":[1]}", "payloads", 0, 0);       /* case-sensitive */
    check_strs("{\"a\":{\"payloads\":5}}", "payloads", 0, 0); /* nested: ignored */
    check_strs("{\"a\":[{\"payloads\":[\"x\"]}]}", "payloads", 0, 0);
    check_strs("{\"payloads\":[\"x\"],\"b\":[1,{}]}", "payloads", 0, 1);
    /* a null element is an empty string (Go's []string decoding) */
    check_strs("{\"payloads\":[null,\"a\"]}", "payloads", 0, 2);
    /* not an array of strings */
    check_strs("{\"payloads\":\"x\"}", "payloads", -1, 0);
    check_strs("{\"payloads\":{}}", "payloads", -1, 0);
    check_strs("{\"payloads\":5}", "payloads", -1, 0);
    check_strs("{\"payloads\":true}", "payloads", -1, 0);
    check_strs("{\"payloads\":[\"a\",1]}", "payloads", -1, 0);
    check_strs("{\"payloads\":[\"a\",[\"b\"]]}", "payloads", -1, 0);
    check_strs("{\"payloads\":[{\"a\":\"b\"}]}", "payloads", -1, 0);
    check_strs("[\"a\",false]", NULL, -1, 0);
    check_strs("[[]]", NULL, -1, 0);
    check_strs("{\"a\":\"b\"}", NULL, -1, 0);        /* object where the array should be */
    check_strs("[\"payloads\"]", "payloads", -1, 0); /* array where the object should be */
    /* invalid JSON */
    check_strs("", NULL, -1, 0);
    check_strs("[\"a\"", NULL, -1, 0);
    check_strs("[\"a\",]", NULL, -1, 0);
    check_strs("[\"a\"] [\"b\"]", NULL, -1, 0);
    check_strs("{\"payloads\":[\"a\"]", "payloads", -1, 0);
    check_strs("[\"\xff\"]", NULL, -1, 0);
}

/* Regression test for a finding of the unit-test review:
 * json.h: json_strings returns -1 "if the JSON is invalid or the value is
 * not an array of strings", but a scalar document is accepted as an empty
 * array (field NULL), and with a field a scalar document (not an object)
 * is accepted as "member absent". */
void test_json_strings_scalar_document(void) {
    check_strs("\"a\"", NULL, -1, 0);
    check_strs("5", NULL, -1, 0);
    check_strs("null", NULL, -1, 0);
    check_strs("true", NULL, -1, 0);
    check_strs("\"payloads\"", "payloads", -1, 0);
    check_strs("7", "payloads", -1, 0);
}

/* ---- json_parse against yajl_tree_parse ----------------------------------
 * json_parse builds yajl_tree's node layout itself (json.c): for every
 * document here both must give the same tree (types, key order, strings
 * as read by strlen, a number's text, integer, double and flags), or both
 * refuse it with the same first line of yajl's message. */

static int same_tree(yajl_val a, yajl_val b, const char *doc) {
    if (!a || !b || a->type != b->type) {
        fprintf(stderr, "  %s: node types differ\n", doc);
        return 0;
    }
    switch (a->type) {
        case yajl_t_string:
            if (strcmp(a->u.string, b->u.string) != 0) {
                fprintf(stderr, "  %s: string \"%s\" != \"%s\"\n", doc, a->u.string, b->u.string);
                return 0;
            }
            return 1;
        case yajl_t_number:
            if (strcmp(a->u.number.r, b->u.number.r) != 0 ||
                a->u.number.flags != b->u.number.flags ||
                ((a->u.number.flags & YAJL_NUMBER_INT_VALID) && a->u.number.i != b->u.number.i) ||
                ((a->u.number.flags & YAJL_NUMBER_DOUBLE_VALID) &&
                 a->u.number.d != b->u.number.d)) {
                fprintf(stderr, "  %s: number %s (flags %u) != %s (flags %u)\n", doc, a->u.number.r,
                        a->u.number.flags, b->u.number.r, b->u.number.flags);
                return 0;
            }
            return 1;
        case yajl_t_object:
            if (a->u.object.len != b->u.object.len) {
                fprintf(stderr, "  %s: object sizes %zu != %zu\n", doc, a->u.object.len,
                        b->u.object.len);
                return 0;
            }
            for (size_t i = 0; i < a->u.object.len; i++) {
                if (strcmp(a->u.object.keys[i], b->u.object.keys[i]) != 0) {
                    fprintf(stderr, "  %s: key \"%s\" != \"%s\"\n", doc, a->u.object.keys[i],
                            b->u.object.keys[i]);
                    return 0;
                }
                if (!same_tree(a->u.object.values[i], b->u.object.values[i], doc)) return 0;
            }
            return 1;
        case yajl_t_array:
            if (a->u.array.len != b->u.array.len) {
                fprintf(stderr, "  %s: array sizes %zu != %zu\n", doc, a->u.array.len,
                        b->u.array.len);
                return 0;
            }
            for (size_t i = 0; i < a->u.array.len; i++)
                if (!same_tree(a->u.array.values[i], b->u.array.values[i], doc)) return 0;
            return 1;
        default:
            return 1; /* true, false, null */
    }
}

static void check_like_yajl_tree(const char *doc) {
    char err[512] = "", yerr[512] = "";
    yajl_val mine = json_parse(doc, strlen(doc), err, sizeof err);
    yajl_val theirs = yajl_tree_parse(doc, yerr, sizeof yerr);
    const char *shown = strlen(doc) > 60 ? "(long document)" : doc;
    CHECK((mine != NULL) == (theirs != NULL));
    if (mine && theirs) {
        CHECK(same_tree(mine, theirs, shown));
    } else if (!mine && !theirs) {
        yerr[strcspn(yerr, "\n")] = '\0';
        char want[600];
        snprintf(want, sizeof want, "invalid JSON: %s", yerr);
        CHECK_STR(err, want);
    } else {
        fprintf(stderr, "  %s: json_parse %s, yajl_tree_parse %s\n", shown, mine ? "ok" : err,
                theirs ? "ok" : yerr);
    }
    json_free(mine);
    if (theirs) yajl_tree_free(theirs);
}

void test_json_parse_like_yajl_tree(void) {
    static const char *const docs[] = {
        "{\"gid\":\"g1\",\"trans_type\":\"saga\",\"steps\":[{\"action\":\"http://s/a\","
        "\"compensate\":\"http://s/c\"}],\"payloads\":[\"{\\\"amount\\\":30}\"],"
        "\"wait_result\":true,\"retry_interval\":null}",
        "{}",
        "[]",
        "[[],{},[{}]]",
        "{\"a\":{\"b\":{\"c\":[1,[2,[3]]]}}}",
        "{\"k\":1,\"k\":2,\"k\":\"three\"}", /* duplicate keys, kept in order */
        "5",
        "\"s\"",
        "true",
        "false",
        "null",
        "  [1]  ",
        "[0,-0,12,-12,1.5,-1.5e3,1e3,1E-2,0.0]",
        "[9223372036854775807,9223372036854775808,-9223372036854775807]",
        "[-9223372036854775808,-9223372036854775809,123456789012345678901234567890]",
        "[1e400,-1e400,1e-400]",
        "[\"\\u00e9\\u4e2d\",\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\",\"x\\u0000y\",\"\"]",
        "{\"\":\"empty key\",\"\\u00e9\":1}",
        "/* comment */ {\"a\": 1 // line comment\n}",
        /* refused: the same message */
        "",
        "   ",
        "{",
        "[1,]",
        "{\"a\" 1}",
        "{\"a\":}",
        "[1] 2",
        "nul",
        "tru",
        "[01]",
        "+1",
        "[1.]",
        "[\"\\x\"]",
        "{\"a\":1,}",
        "[\"unterminated]",
        "{1:2}",
        "/* open comment",
        "[\"\x01\"]",
        "\"\xff\"",
    };
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) check_like_yajl_tree(docs[i]);

    /* members past json_parse's first 32 on its stack, strings past its
     * first chunk, nesting near the limit */
    sbuf b;
    sb_init(&b);
    sb_putc(&b, '{');
    for (int i = 0; i < 300; i++)
        sb_printf(&b, "%s\"k%d\":[%d,\"v%d\",{\"n\":%d.5}]", i ? "," : "", i, i, i, i);
    sb_puts(&b, ",\"big\":\"");
    for (int i = 0; i < 20000; i++) sb_putc(&b, (char)('a' + i % 26));
    sb_puts(&b, "\"}");
    check_like_yajl_tree(b.ptr);
    sb_reset(&b);
    for (int i = 0; i < 250; i++) sb_puts(&b, i % 2 ? "{\"a\":" : "[");
    sb_puts(&b, "7");
    for (int i = 249; i >= 0; i--) sb_puts(&b, i % 2 ? "}" : "]");
    check_like_yajl_tree(b.ptr);
    sb_free(&b);
}
