/* config_print.c - the effective configuration, as dtmd --check-config shows it.
 *
 * Why: an operator needs to see which value won (defaults, conf.yml or the
 * environment) without reading three sources; each key is printed with the
 * environment variable that would override it, and passwords, tokens and a
 * web hook's userinfo password are masked so the output can be shared. */
#include "config_print.h"

#include "config_keys.h"
#include "log.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int is_secret(const char *path) {
    return strstr(path, "Password") != NULL || strstr(path, "Token") != NULL;
}

static void print_quoted(FILE *out, const char *s) {
    fputc('"', out);
    for (; s && *s; s++) {
        if (*s == '"' || *s == '\\')
            fprintf(out, "\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            fprintf(out, "\\x%02x", (unsigned char)*s);
        else
            fputc(*s, out);
    }
    fputc('"', out);
}

/* A URL with its userinfo password hidden: http://u:secret@h/ -> http://u:****@h/ */
static void print_url_masked(FILE *out, const char *url) {
    const char *scheme = strstr(url, "://");
    const char *at = scheme ? strchr(scheme + 3, '@') : NULL;
    const char *slash = scheme ? strchr(scheme + 3, '/') : NULL;
    const char *colon = scheme ? strchr(scheme + 3, ':') : NULL;
    if (!at || (slash && slash < at) || !colon || colon > at) {
        print_quoted(out, url);
        return;
    }
    char *masked = NULL;
    if (asprintf(&masked, "%.*s:****%s", (int)(colon - url), url, at) < 0) abort();
    print_quoted(out, masked);
    free(masked);
}

void config_print(const dtmd_config *cfg, FILE *out) {
    for (size_t i = 0; i < config_nkeys; i++) {
        const key_def *k = &config_keys[i];
        if (strcmp(k->path, "Log.Level") == 0) continue; /* same field as LogLevel */
        const char *base = (const char *)cfg + k->off;
        char env[128];
        config_env_name(k->path, env, sizeof env);
        fprintf(out, "%s: ", k->path);
        switch (k->kind) {
            case K_STR:
            case K_NONEMPTY:
            case K_DRIVER:
            case K_LIST: {
                const char *v = *(char *const *)base;
                if (is_secret(k->path) && v && *v)
                    fputs("\"****\"", out);
                else if (strcmp(k->path, "AlertWebHook") == 0 && v)
                    print_url_masked(out, v);
                else
                    print_quoted(out, v ? v : "");
                break;
            }
            case K_INT:
                fprintf(out, "%d", *(const int *)base);
                break;
            case K_I64:
                fprintf(out, "%lld", (long long)*(const int64_t *)base);
                break;
            case K_SIZE:
                fprintf(out, "%zu", *(const size_t *)base);
                break;
            case K_DUR:
                fprintf(out, "%g", *(const double *)base);
                break;
            case K_MS:
                fprintf(out, "%g", *(const int *)base / 1000.0);
                break;
            case K_LEVEL: {
                static const char *const names[] = {"debug", "info", "warn", "error"};
                int lv = (int)*(const log_level_t *)base;
                fputs(lv >= 0 && lv < 4 ? names[lv] : "?", out);
                break;
            }
            case K_LOGFMT:
                fputs(*(const int *)base ? "json" : "text", out);
                break;
            case K_BOOL:
                fputs(*(const int *)base ? "true" : "false", out);
                break;
            default:
                fputs("~", out);
                break;
        }
        fprintf(out, "    # env %s\n", env);
    }
}
