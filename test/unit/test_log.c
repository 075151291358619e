/* test_log.c - unit tests for log.c's line format and config's Log.* keys.
 *
 * JSON lines must stay valid JSON whatever the message holds (quotes,
 * backslashes, control characters, overlong text) and carry the gid of
 * "gid <gid>: ..." messages; the text format is unchanged. */
#include "config.h"
#include "config_load.h"
#include "log.h"
#include "unit.h"

#include <stdlib.h>
#include <string.h>

void test_log_format_text(void) {
    char buf[256];
    size_t n = log_format_line(buf, sizeof buf, 0, LOG_WARN, "hello");
    CHECK(n == strlen(buf));
    /* 2026-11-24 16:53:32.123 warn  hello */
    CHECK(n == 23 + 7 + 5);
    CHECK(buf[4] == '-' && buf[10] == ' ' && buf[19] == '.');
    CHECK(strcmp(buf + 23, " warn  hello") == 0);
}

void test_log_format_text_escapes_controls(void) {
    char buf[256];
    log_format_line(buf, sizeof buf, 0, LOG_INFO, "a\nb\r\tc\x1b[0m\x7f");
    CHECK(strcmp(buf + 23, " info  a\\nb\\r\\tc\\x1b[0m\\x7f") == 0);
    /* an escape is never cut in half at the end of the buffer */
    char small[23 + 7 + 3];
    log_format_line(small, sizeof small, 0, LOG_INFO, "ab\x01");
    CHECK(strcmp(small + 23, " info  ab") == 0);
}

void test_log_format_json(void) {
    char buf[512];
    log_format_line(buf, sizeof buf, 1, LOG_INFO, "gid g-1: branch \"01\" failed\\\n\tx");
    CHECK(strncmp(buf, "{\"ts\":\"", 7) == 0);
    CHECK(buf[7 + 10] == 'T' && strstr(buf, "Z\",\"level\":\"info\"") != NULL);
    CHECK(strstr(buf, "\"gid\":\"g-1\"") != NULL);
    CHECK(strstr(buf, "\"msg\":\"gid g-1: branch \\\"01\\\" failed\\\\\\u000a\\u0009x\"}") != NULL);
    CHECK(buf[strlen(buf) - 1] == '}');
    /* gid after a module prefix; none when the word is not a gid */
    log_format_line(buf, sizeof buf, 1, LOG_WARN, "cron: gid abc: cannot load");
    CHECK(strstr(buf, "\"gid\":\"abc\"") != NULL);
    log_format_line(buf, sizeof buf, 1, LOG_WARN, "no gid specified");
    CHECK(strstr(buf, "\"gid\"") == NULL);
    log_format_line(buf, sizeof buf, 1, LOG_WARN, "forgid x: y");
    CHECK(strstr(buf, "\"gid\"") == NULL);
}

void test_log_format_json_truncated(void) {
    char msg[1000], buf[200];
    memset(msg, '"', sizeof msg - 1);
    msg[sizeof msg - 1] = '\0';
    size_t n = log_format_line(buf, sizeof buf, 1, LOG_ERROR, msg);
    CHECK(n < sizeof buf);
    CHECK(n >= 2 && buf[n - 1] == '}' && buf[n - 2] == '"');
    /* the cut never leaves a dangling backslash before the closing quote */
    size_t bs = 0;
    for (size_t i = n - 3; i > 0 && buf[i] == '\\'; i--) bs++;
    CHECK(bs % 2 == 0);
}

void test_config_log_keys(void) {
    dtmd_config c;
    char *err = NULL;
    CHECK(config_load_from(&c, NULL, NULL, NULL, &err) == 0);
    CHECK_INT(c.log_json, 0);
    CHECK_INT(c.log_access, 0);
    CHECK_STR(c.log_outputs, "stderr");
    config_free(&c);
    const char *yaml = "Log:\n  Level: warn\n  Format: JSON\n  Outputs: [stderr, /tmp/x.log]\n"
                       "  Access: yes\n  RotationEnable: 0\n";
    CHECK(config_load_from(&c, yaml, NULL, NULL, &err) == 0);
    CHECK_INT(c.log_level, LOG_WARN);
    CHECK_INT(c.log_json, 1);
    CHECK_INT(c.log_access, 1);
    CHECK(c.log_outputs && strstr(c.log_outputs, "/tmp/x.log") != NULL);
    config_free(&c);
    char *env[] = {"LOG_FORMAT=text", "LOG_ACCESS=off", NULL};
    CHECK(config_load_from(&c, yaml, env, NULL, &err) == 0);
    CHECK_INT(c.log_json, 0);
    CHECK_INT(c.log_access, 0);
    config_free(&c);
    CHECK(config_load_from(&c, "Log:\n  Access: maybe\n", NULL, NULL, &err) == -1);
    CHECK(err && strstr(err, "Log.Access"));
    free(err);
    err = NULL;
    CHECK(config_load_from(&c, "Log:\n  Format: xml\n", NULL, NULL, &err) == -1);
    CHECK(err && strstr(err, "Log.Format"));
    free(err);
}
