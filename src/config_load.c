/* config_load.c - loading the configuration: conf.yml (libyaml), then the environment.
 *
 * Why this shape: dtmd must start unchanged from a dtm conf.yml, so it reads
 * dtm's nested keys (Store.Host, HttpPort, ...) and warns about, but accepts,
 * the dtm keys it has no use for (gRPC, microservices, SQL pools, logging).
 * Which keys exist, and how a value is parsed and checked, is the key table's
 * (config_keys.c); this file walks the sources and hands each value to it.
 * Environment names are derived by dtm's rule (config_env_name).
 *
 * Order: defaults, then the YAML file, then the environment (the environment
 * wins: docs/configuration.md#environment-variables), then the checks that
 * need every key (config_resolve). Allocation failure aborts, as everywhere
 * in dtmd. */
#include "config_load.h"

#include "config_keys.h"
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* Call the warning callback with a formatted message. */
static void warn(config_warn_fn *cb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn(config_warn_fn *cb, const char *fmt, ...) {
    if (!cb) return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cb(msg);
}

/* Flat short forms accepted at the top level of the file. RedisAddr is
 * handled separately (it sets two keys). */
static const struct {
    const char *alias, *path;
} aliases[] = {
    {"HTTPPort", "HttpPort"},
    {"StoreType", "Store.Driver"},
};

/* dtm keys dtmd accepts and ignores. A mapping listed here is skipped whole. */
static const char *const unused_keys[] = {
    "GrpcPort",
    "JsonRpcPort",
    "MicroService",
    "HttpMicroService",
    "GrpcServiceConfig",
    "UpdateBranchSync",
    "UpdateBranchAsyncGoroutineNum",
    "Log.RotationEnable",
    "Log.RotationConfigJSON",
    "TimeZoneOffset",
    "AdminBasePath",
    "Store.Db",
    "Store.Schema",
    "Store.MaxOpenConns",
    "Store.MaxIdleConns",
    "Store.ConnMaxLifeTime",
    /* dtm's topic cache period: dtmd reads a topic from Redis on every delivery. */
    "ConfigUpdateInterval",
};

/* Top-level keys whose value is a mapping of dtmd keys. */
static const char *const sections[] = {"Store", "Limits", "Auth", "Log", "Metrics"};

/* ---- YAML walk ---- */

typedef struct load_ctx {
    dtmd_config *cfg;
    yaml_document_t *doc;
    config_warn_fn *warn_cb;
    char **err;
} load_ctx;

/* A scalar that YAML reads as null ("", "~", "null"): the key keeps its value. */
static int is_null(const yaml_node_t *n) {
    if (n->type != YAML_SCALAR_NODE) return 0;
    if (n->tag && strcmp((const char *)n->tag, YAML_NULL_TAG) == 0) return 1;
    if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return 0;
    const char *v = (const char *)n->data.scalar.value;
    return !*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") || !strcmp(v, "NULL");
}

static const char *node_kind(const yaml_node_t *n) {
    return n->type == YAML_MAPPING_NODE ? "a mapping" : "a list";
}

static int in_list(const char *const *list, size_t n, const char *s) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], s) == 0) return 1;
    return 0;
}

static int walk_mapping(load_ctx *c, yaml_node_t *map, const char *prefix);

/* A K_LIST key given as a YAML sequence of scalars: kept comma-joined. */
static int load_list(load_ctx *c, const key_def *k, const char *path, yaml_node_t *seq) {
    size_t cap = 1;
    for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top;
         it++) {
        yaml_node_t *n = yaml_document_get_node(c->doc, *it);
        if (!n || n->type != YAML_SCALAR_NODE || strchr((const char *)n->data.scalar.value, ',')) {
            config_set_err(c->err, "%s: expected a list of strings without commas", path);
            return -1;
        }
        cap += strlen((const char *)n->data.scalar.value) + 1;
    }
    char *joined = malloc(cap);
    if (!joined) abort();
    joined[0] = '\0';
    for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top;
         it++) {
        yaml_node_t *n = yaml_document_get_node(c->doc, *it);
        if (joined[0]) strcat(joined, ",");
        strcat(joined, (const char *)n->data.scalar.value);
    }
    int rc = config_set_value(c->cfg, k, joined, path, c->err);
    free(joined);
    return rc;
}

/* Handle one "key: value" pair; path is the full dotted key. */
static int load_pair(load_ctx *c, const char *path, const char *name, yaml_node_t *val, int top) {
    const key_def *k = config_find_key(path);
    if (top && !k) {
        for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
            if (strcmp(aliases[i].alias, name) == 0) k = config_find_key(aliases[i].path);
    }
    int redis_addr = top && strcmp(name, "RedisAddr") == 0;
    if (k || redis_addr) {
        if (is_null(val)) return 0;
        if (k && k->kind == K_LIST && val->type == YAML_SEQUENCE_NODE)
            return load_list(c, k, path, val);
        if (val->type != YAML_SCALAR_NODE) {
            config_set_err(c->err, "%s: expected a single value, got %s", path, node_kind(val));
            return -1;
        }
        const char *text = (const char *)val->data.scalar.value;
        if (redis_addr) return config_set_redis_addr(c->cfg, text, path, c->err);
        return config_set_value(c->cfg, k, text, path, c->err);
    }
    if (top && in_list(sections, sizeof sections / sizeof sections[0], name)) {
        if (is_null(val)) return 0;
        if (val->type != YAML_MAPPING_NODE) {
            config_set_err(c->err, "%s: expected a mapping of keys", path);
            return -1;
        }
        return walk_mapping(c, val, path);
    }
    if (in_list(unused_keys, sizeof unused_keys / sizeof unused_keys[0], path))
        warn(c->warn_cb, "%s is not used by dtmd", path);
    else
        warn(c->warn_cb, "unknown key %s ignored", path);
    return 0;
}

/* Load every pair of map; prefix is "" at the top level, else "Store" etc. */
static int walk_mapping(load_ctx *c, yaml_node_t *map, const char *prefix) {
    int top = !*prefix;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *kn = yaml_document_get_node(c->doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(c->doc, p->value);
        if (!kn || !vn) continue;
        if (kn->type != YAML_SCALAR_NODE) {
            warn(c->warn_cb, "unknown non-scalar key at line %lu ignored",
                 (unsigned long)kn->start_mark.line + 1);
            continue;
        }
        const char *name = (const char *)kn->data.scalar.value;
        char path[256];
        snprintf(path, sizeof path, "%s%s%s", prefix, top ? "" : ".", name);
        if (load_pair(c, path, name, vn, top) != 0) return -1;
    }
    return 0;
}

/* Parse the YAML from an initialised parser into cfg. what names the source
 * in messages (the file path, or "config"). */
static int load_yaml(dtmd_config *cfg, yaml_parser_t *parser, const char *what,
                     config_warn_fn *warn_cb, char **err) {
    yaml_document_t doc;
    if (!yaml_parser_load(parser, &doc)) {
        const char *problem = parser->problem ? parser->problem : "syntax error";
        if (parser->error == YAML_READER_ERROR)
            config_set_err(err, "%s: YAML error at byte %lu: %s", what,
                           (unsigned long)parser->problem_offset, problem);
        else if (parser->context)
            config_set_err(err, "%s: YAML error at line %lu, column %lu: %s %s started at line %lu",
                           what, (unsigned long)parser->problem_mark.line + 1,
                           (unsigned long)parser->problem_mark.column + 1, problem, parser->context,
                           (unsigned long)parser->context_mark.line + 1);
        else
            config_set_err(err, "%s: YAML error at line %lu, column %lu: %s", what,
                           (unsigned long)parser->problem_mark.line + 1,
                           (unsigned long)parser->problem_mark.column + 1, problem);
        return -1;
    }
    int rc = 0;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root && !is_null(root)) {
        if (root->type != YAML_MAPPING_NODE) {
            config_set_err(err, "%s: expected a mapping of keys at the top level", what);
            rc = -1;
        } else {
            load_ctx c = {cfg, &doc, warn_cb, err};
            rc = walk_mapping(&c, root, "");
        }
    }
    yaml_document_delete(&doc);
    return rc;
}

/* ---- environment ---- */

static const char *env_get(char *const *envp, const char *name) {
    if (!envp) return NULL;
    size_t n = strlen(name);
    for (char *const *e = envp; *e; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=') return *e + n + 1;
    return NULL;
}

/* Apply every key's environment variable; unset or empty means no override
 * (as in dtm). */
static int apply_env(dtmd_config *cfg, char *const *envp, char **err) {
    for (size_t i = 0; i < config_nkeys; i++) {
        char name[128], label[256];
        config_env_name(config_keys[i].path, name, sizeof name);
        const char *v = env_get(envp, name);
        if (!v || !*v) continue;
        snprintf(label, sizeof label, "%s (env %s)", config_keys[i].path, name);
        if (config_set_value(cfg, &config_keys[i], v, label, err) != 0) return -1;
    }
    return 0;
}

/* Shared tail of both loaders: parser already set up (or NULL = no YAML). */
static int load_common(dtmd_config *cfg, yaml_parser_t *parser, const char *what, char *const *envp,
                       config_warn_fn *warn_cb, char **err) {
    if (err) *err = NULL;
    config_defaults(cfg);
    if ((parser && load_yaml(cfg, parser, what, warn_cb, err) != 0) ||
        apply_env(cfg, envp, err) != 0 || config_resolve(cfg, err) != 0) {
        config_free(cfg);
        return -1;
    }
    return 0;
}

int config_load(dtmd_config *cfg, const char *path, config_warn_fn *warn_cb, char **err) {
    extern char **environ;
    if (!path) return load_common(cfg, NULL, NULL, environ, warn_cb, err);
    FILE *f = fopen(path, "rb");
    if (!f) {
        memset(cfg, 0, sizeof *cfg);
        if (err) *err = NULL;
        config_set_err(err, "cannot open config file %s: %s", path, strerror(errno));
        return -1;
    }
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) abort();
    yaml_parser_set_input_file(&parser, f);
    int rc = load_common(cfg, &parser, path, environ, warn_cb, err);
    yaml_parser_delete(&parser);
    fclose(f);
    return rc;
}

int config_load_from(dtmd_config *cfg, const char *yaml_text, char *const *envp,
                     config_warn_fn *warn_cb, char **err) {
    if (!yaml_text) return load_common(cfg, NULL, NULL, envp, warn_cb, err);
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) abort();
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml_text, strlen(yaml_text));
    int rc = load_common(cfg, &parser, "config", envp, warn_cb, err);
    yaml_parser_delete(&parser);
    return rc;
}
