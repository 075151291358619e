/* test_config.c - unit tests for config.c.
 *
 * The configuration is the operator's first contact with dtmd: a dtm
 * conf.yml must load unchanged (unknown keys only warn), the environment must
 * win over the file, and every bad value must be refused with a message that
 * names the key. These tests pin each of those promises down, feeding YAML
 * text and an explicit environment through config_load_from. */
#include "config.h"
#include "config_load.h"
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Warning callback: counts calls and keeps the last message. */
static int warn_count;
static char warn_last[512];

static void count_warn(const char *msg) {
    warn_count++;
    snprintf(warn_last, sizeof warn_last, "%s", msg);
}

static void reset_warn(void) {
    warn_count = 0;
    warn_last[0] = '\0';
}

/* Load yaml/envp expecting success; returns 0 on success. */
static int load_ok(dtmd_config *cfg, const char *yaml, char *const *envp) {
    char *err = NULL;
    int rc = config_load_from(cfg, yaml, envp, count_warn, &err);
    if (rc != 0) fprintf(stderr, "  unexpected error: %s\n", err ? err : "(null)");
    CHECK(rc == 0);
    CHECK(err == NULL);
    free(err);
    return rc;
}

/* Load expecting failure; checks the message contains each of want1, want2
 * (NULL = skip). */
static void load_bad(const char *yaml, char *const *envp, const char *want1, const char *want2) {
    dtmd_config cfg;
    char *err = NULL;
    int rc = config_load_from(&cfg, yaml, envp, count_warn, &err);
    CHECK(rc == -1);
    CHECK(err != NULL);
    if (err) {
        if (want1 && !strstr(err, want1)) {
            fprintf(stderr, "  message '%s' lacks '%s'\n", err, want1);
            CHECK(!"message names the key");
        }
        if (want2 && !strstr(err, want2)) {
            fprintf(stderr, "  message '%s' lacks '%s'\n", err, want2);
            CHECK(!"message has detail");
        }
    }
    free(err);
    if (rc == 0) config_free(&cfg);
}

static void check_defaults(const dtmd_config *c) {
    CHECK_STR(c->store_driver, "redis");
    CHECK_STR(c->store_host, "127.0.0.1");
    CHECK_INT(c->store_port, 6379);
    CHECK_STR(c->store_user, "");
    CHECK_STR(c->store_password, "");
    CHECK_STR(c->redis_prefix, "dtmd");
    CHECK_INT(c->data_expire, 604800);
    CHECK_INT(c->finished_data_expire, 86400);
    CHECK_INT(c->store_shards, 16);
    CHECK_INT(c->store_nseeds, 0);
    CHECK(c->store_seeds == NULL);
    CHECK_STR(c->http_host, "0.0.0.0");
    CHECK_INT(c->http_port, 36789);
    CHECK(c->trans_cron_interval == 3);
    CHECK(c->timeout_to_fail == 35);
    CHECK(c->retry_interval == 10);
    CHECK(c->request_timeout == 3);
    CHECK(c->retry_max_interval == 3600);
    CHECK_INT(c->log_level, LOG_INFO);
    CHECK_INT(c->alert_retry_limit, 3);
    CHECK_STR(c->alert_web_hook, "");
    CHECK_INT(c->max_body_bytes, 1048576);
    CHECK_INT(c->max_branches, 2000);
    CHECK_INT(c->max_gid_length, 128);
    CHECK_INT(c->store_command_timeout_ms, 2000);
    CHECK_INT(c->store_wait_replicas, 0);
    CHECK_INT(c->store_wait_timeout_ms, 1000);
    CHECK_STR(c->sentinel_addrs_text, "");
    CHECK_STR(c->sentinel_master, "mymaster");
    CHECK_STR(c->sentinel_password, "");
    CHECK_INT(c->nsentinels, 0);
}

void test_config_defaults(void) {
    dtmd_config c;
    config_defaults(&c);
    check_defaults(&c);
    config_free(&c);
    config_free(&c); /* safe twice: pointers are cleared */

    /* No YAML, no environment; an empty file and a comment-only file. */
    const char *empties[] = {NULL, "", "# only a comment\n", "---\n", "~\n"};
    for (size_t i = 0; i < sizeof empties / sizeof empties[0]; i++) {
        reset_warn();
        if (load_ok(&c, empties[i], NULL) == 0) {
            check_defaults(&c);
            config_free(&c);
        }
        CHECK_INT(warn_count, 0);
    }
}

void test_config_yaml_all_keys(void) {
    const char *yaml = "Store:\n"
                       "  Driver: redis\n"
                       "  Host: redis.example\n"
                       "  Port: 6380\n"
                       "  User: alice\n"
                       "  Password: 's3cret'\n"
                       "  RedisPrefix: \"{x}\"\n"
                       "  DataExpire: 1000\n"
                       "  FinishedDataExpire: 500\n"
                       "  Shards: 64\n"
                       "HttpHost: 127.0.0.1\n"
                       "HttpPort: 8080\n"
                       "TransCronInterval: 1\n"
                       "TimeoutToFail: 20\n"
                       "RetryInterval: 5\n"
                       "RequestTimeout: 2\n"
                       "RetryMaxInterval: 60\n"
                       "LogLevel: debug\n"
                       "AlertRetryLimit: 0\n"
                       "AlertWebHook: http://hook.example/a?b=1\n"
                       "Limits:\n"
                       "  MaxBodyBytes: 4096\n"
                       "  MaxBranches: 50\n"
                       "  MaxGidLength: 64\n";
    dtmd_config c;
    reset_warn();
    if (load_ok(&c, yaml, NULL) != 0) return;
    CHECK_STR(c.store_driver, "redis");
    CHECK_STR(c.store_host, "redis.example");
    CHECK_INT(c.store_port, 6380);
    CHECK_STR(c.store_user, "alice");
    CHECK_STR(c.store_password, "s3cret");
    CHECK_STR(c.redis_prefix, "{x}");
    CHECK_INT(c.data_expire, 1000);
    CHECK_INT(c.finished_data_expire, 500);
    CHECK_INT(c.store_shards, 64);
    CHECK_STR(c.http_host, "127.0.0.1");
    CHECK_INT(c.http_port, 8080);
    CHECK(c.trans_cron_interval == 1);
    CHECK(c.timeout_to_fail == 20);
    CHECK(c.retry_interval == 5);
    CHECK(c.request_timeout == 2);
    CHECK(c.retry_max_interval == 60);
    CHECK_INT(c.log_level, LOG_DEBUG);
    CHECK_INT(c.alert_retry_limit, 0);
    CHECK_STR(c.alert_web_hook, "http://hook.example/a?b=1");
    CHECK_INT(c.max_body_bytes, 4096);
    CHECK_INT(c.max_branches, 50);
    CHECK_INT(c.max_gid_length, 64);
    CHECK_INT(warn_count, 0);
    config_free(&c);

    /* Flow style, other log levels, a null value keeps the default. */
    if (load_ok(&c, "Store: {Host: h1, Port: 1}\nLogLevel: warn\nHttpHost:\nStore2: ~\n", NULL) ==
        0) {
        CHECK_STR(c.store_host, "h1");
        CHECK_INT(c.store_port, 1);
        CHECK_INT(c.log_level, LOG_WARN);
        CHECK_STR(c.http_host, "0.0.0.0");
        config_free(&c);
    }
    if (load_ok(&c, "LogLevel: error\nStore:\nLimits:\n", NULL) == 0) {
        CHECK_INT(c.log_level, LOG_ERROR);
        CHECK_STR(c.store_host, "127.0.0.1");
        config_free(&c);
    }
    /* Later duplicate wins; quoted empty string sets an empty value. */
    if (load_ok(&c, "HttpPort: 1000\nHttpPort: 2000\nAlertWebHook: x\nAlertWebHook: ''\n", NULL) ==
        0) {
        CHECK_INT(c.http_port, 2000);
        CHECK_STR(c.alert_web_hook, "");
        config_free(&c);
    }
}

void test_config_fractional_seconds(void) {
    dtmd_config c;
    const char *yaml = "TransCronInterval: 0.2\nRetryInterval: 0.5\nRequestTimeout: .25\n"
                       "TimeoutToFail: 1.5\nRetryMaxInterval: 2.75\n";
    if (load_ok(&c, yaml, NULL) != 0) return;
    CHECK(c.trans_cron_interval == 0.2);
    CHECK(c.retry_interval == 0.5);
    CHECK(c.request_timeout == 0.25);
    CHECK(c.timeout_to_fail == 1.5);
    CHECK(c.retry_max_interval == 2.75);
    config_free(&c);

    char *env[] = {"RETRY_INTERVAL=0.3", NULL};
    if (load_ok(&c, NULL, env) == 0) {
        CHECK(c.retry_interval == 0.3);
        config_free(&c);
    }
}

void test_config_env_override(void) {
    const char *yaml = "Store:\n  Host: filehost\n  Port: 7000\n  RedisPrefix: file\n"
                       "HttpPort: 9000\nRetryInterval: 4\nLogLevel: error\n"
                       "Limits:\n  MaxBodyBytes: 100\n";
    char *env[] = {"PATH=/usr/bin",
                   "STORE_HOST=envhost",
                   "STORE_PORT=7001",
                   "STORE_REDIS_PREFIX=envp",
                   "STORE_USER=u",
                   "STORE_PASSWORD=p",
                   "STORE_DRIVER=redis",
                   "STORE_DATA_EXPIRE=11",
                   "STORE_FINISHED_DATA_EXPIRE=12",
                   "STORE_SHARDS=3",
                   "HTTP_HOST=::1",
                   "HTTP_PORT=9001",
                   "TRANS_CRON_INTERVAL=0.1",
                   "TIMEOUT_TO_FAIL=9",
                   "RETRY_INTERVAL=8",
                   "REQUEST_TIMEOUT=7",
                   "RETRY_MAX_INTERVAL=6",
                   "LOG_LEVEL=debug",
                   "ALERT_RETRY_LIMIT=4",
                   "ALERT_WEB_HOOK=http://h",
                   "LIMITS_MAX_BODY_BYTES=200",
                   "LIMITS_MAX_BRANCHES=20",
                   "LIMITS_MAX_GID_LENGTH=30",
                   "STORE_HOSTX=ignored",
                   NULL};
    dtmd_config c;
    reset_warn();
    if (load_ok(&c, yaml, env) != 0) return;
    CHECK_STR(c.store_host, "envhost");
    CHECK_INT(c.store_port, 7001);
    CHECK_STR(c.redis_prefix, "envp");
    CHECK_STR(c.store_user, "u");
    CHECK_STR(c.store_password, "p");
    CHECK_STR(c.store_driver, "redis");
    CHECK_INT(c.data_expire, 11);
    CHECK_INT(c.finished_data_expire, 12);
    CHECK_INT(c.store_shards, 3);
    CHECK_STR(c.http_host, "::1");
    CHECK_INT(c.http_port, 9001);
    CHECK(c.trans_cron_interval == 0.1);
    CHECK(c.timeout_to_fail == 9);
    CHECK(c.retry_interval == 8);
    CHECK(c.request_timeout == 7);
    CHECK(c.retry_max_interval == 6);
    CHECK_INT(c.log_level, LOG_DEBUG);
    CHECK_INT(c.alert_retry_limit, 4);
    CHECK_STR(c.alert_web_hook, "http://h");
    CHECK_INT(c.max_body_bytes, 200);
    CHECK_INT(c.max_branches, 20);
    CHECK_INT(c.max_gid_length, 30);
    CHECK_INT(warn_count, 0);
    config_free(&c);

    /* An empty variable does not override; the file value stays. */
    char *env2[] = {"STORE_HOST=", NULL};
    if (load_ok(&c, yaml, env2) == 0) {
        CHECK_STR(c.store_host, "filehost");
        CHECK_INT(c.http_port, 9000);
        config_free(&c);
    }
}

/* config_load reads the real file and the real environment. */
void test_config_load_file(void) {
    char path[] = "/tmp/dtmd_test_config_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0) return;
    const char *text = "Store:\n  Host: fromfile\n  Port: 6390\nHttpPort: 1234\n";
    CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);

    dtmd_config c;
    char *err = NULL;
    unsetenv("STORE_HOST");
    setenv("STORE_PORT", "6391", 1);
    CHECK(config_load(&c, path, count_warn, &err) == 0);
    CHECK(err == NULL);
    CHECK_STR(c.store_host, "fromfile");
    CHECK_INT(c.store_port, 6391);
    CHECK_INT(c.http_port, 1234);
    config_free(&c);

    CHECK(config_load(&c, NULL, count_warn, &err) == 0);
    CHECK_STR(c.store_host, "127.0.0.1");
    CHECK_INT(c.store_port, 6391);
    config_free(&c);
    unsetenv("STORE_PORT");
    unlink(path);

    /* Missing file: message names the path. */
    CHECK(config_load(&c, path, count_warn, &err) == -1);
    CHECK(err && strstr(err, path));
    free(err);
}

static void check_env_name(const char *key, const char *want) {
    char out[128];
    config_env_name(key, out, sizeof out);
    CHECK_STR(out, want);
}

void test_config_env_name(void) {
    check_env_name("Store.Host", "STORE_HOST");
    check_env_name("Store.RedisPrefix", "STORE_REDIS_PREFIX");
    check_env_name("Store.FinishedDataExpire", "STORE_FINISHED_DATA_EXPIRE");
    check_env_name("HttpPort", "HTTP_PORT");
    check_env_name("HTTPPort", "HTTP_PORT");
    check_env_name("TimeoutToFail", "TIMEOUT_TO_FAIL");
    check_env_name("TransCronInterval", "TRANS_CRON_INTERVAL");
    check_env_name("Limits.MaxBodyBytes", "LIMITS_MAX_BODY_BYTES");
    check_env_name("LogLevel", "LOG_LEVEL");
    check_env_name("JsonRpcPort", "JSON_RPC_PORT");
    check_env_name("AlertWebHook", "ALERT_WEB_HOOK");
    check_env_name("Http2Port", "HTTP2_PORT");
    check_env_name("ID", "ID");
    check_env_name("", "");

    /* Truncation keeps the string terminated. */
    char small[6];
    config_env_name("Store.RedisPrefix", small, sizeof small);
    CHECK_STR(small, "STORE");
    char one[1] = {'x'};
    config_env_name("Store", one, sizeof one);
    CHECK_INT(one[0], 0);
}

void test_config_flat_forms(void) {
    dtmd_config c;
    reset_warn();
    if (load_ok(&c, "HTTPPort: 4321\nStoreType: redis\nRedisAddr: cache.local:6400\n", NULL) == 0) {
        CHECK_INT(c.http_port, 4321);
        CHECK_STR(c.store_driver, "redis");
        CHECK_STR(c.store_host, "cache.local");
        CHECK_INT(c.store_port, 6400);
        config_free(&c);
    }
    if (load_ok(&c, "RedisAddr: '[::1]:6401'\n", NULL) == 0) {
        CHECK_STR(c.store_host, "::1");
        CHECK_INT(c.store_port, 6401);
        config_free(&c);
    }
    CHECK_INT(warn_count, 0);
    /* The environment still wins over a flat form in the file. */
    char *env[] = {"HTTP_PORT=5555", "STORE_HOST=envhost", NULL};
    if (load_ok(&c, "HTTPPort: 4321\nRedisAddr: a:1\n", env) == 0) {
        CHECK_INT(c.http_port, 5555);
        CHECK_STR(c.store_host, "envhost");
        CHECK_INT(c.store_port, 1);
        config_free(&c);
    }
    load_bad("StoreType: mysql\n", NULL, "StoreType", "only redis is supported");
    load_bad("HTTPPort: 0\n", NULL, "HTTPPort", "1..65535");
    load_bad("RedisAddr: nohost\n", NULL, "RedisAddr", "'nohost'");
    load_bad("RedisAddr: ':6379'\n", NULL, "RedisAddr", "host:port");
    load_bad("RedisAddr: h:70000\n", NULL, "RedisAddr", "host:port");
    load_bad("RedisAddr: h:x\n", NULL, "RedisAddr", "host:port");
}

void test_config_unknown_keys_warn(void) {
    const char *yaml = "Store:\n"
                       "  Driver: redis\n"
                       "  Db: dtm\n"
                       "  Schema: public\n"
                       "  MaxOpenConns: 500\n"
                       "  MaxIdleConns: 500\n"
                       "  ConnMaxLifeTime: 5\n"
                       "  Bogus: 1\n"
                       "GrpcPort: 36790\n"
                       "JsonRpcPort: 36791\n"
                       "MicroService:\n  Driver: dtm-driver-gozero\n  Target: etcd://x\n"
                       "HttpMicroService:\n  Driver: x\n"
                       "GrpcServiceConfig: '{}'\n"
                       "UpdateBranchSync: 1\n"
                       "UpdateBranchAsyncGoroutineNum: 1\n"
                       "Log:\n  RotationEnable: 1\n"
                       "TimeZoneOffset: '+8'\n"
                       "AdminBasePath: /admin\n"
                       "Whatever: [1, 2]\n"
                       "httpport: 1\n"
                       "Limits:\n  MaxFoo: 3\n";
    dtmd_config c;
    reset_warn();
    if (load_ok(&c, yaml, NULL) != 0) return;
    CHECK_INT(warn_count, 19);
    CHECK_STR(warn_last, "unknown key Limits.MaxFoo ignored");
    CHECK_INT(c.http_port, 36789); /* keys are case-sensitive */
    config_free(&c);

    reset_warn();
    if (load_ok(&c, "GrpcPort: 1\n", NULL) == 0) config_free(&c);
    CHECK_INT(warn_count, 1);
    CHECK_STR(warn_last, "GrpcPort is not used by dtmd");
    reset_warn();
    if (load_ok(&c, "Store:\n  Db: x\n", NULL) == 0) config_free(&c);
    CHECK_STR(warn_last, "Store.Db is not used by dtmd");
    /* dtm's topic cache period: dtmd has no cache, an old config still loads. */
    reset_warn();
    if (load_ok(&c, "ConfigUpdateInterval: 3\n", NULL) == 0) config_free(&c);
    CHECK_INT(warn_count, 1);
    CHECK_STR(warn_last, "ConfigUpdateInterval is not used by dtmd");
    reset_warn();
    if (load_ok(&c, "ConfigUpdateInterval: nan\n", NULL) == 0) config_free(&c);
    CHECK_INT(warn_count, 1);
    reset_warn();
    if (load_ok(&c, "Foo: 1\n", NULL) == 0) config_free(&c);
    CHECK_STR(warn_last, "unknown key Foo ignored");

    /* A NULL callback is allowed. */
    char *err = NULL;
    CHECK(config_load_from(&c, "Foo: 1\n", NULL, NULL, &err) == 0);
    config_free(&c);
}

void test_config_bad_values(void) {
    reset_warn();
    /* durations */
    load_bad("RetryInterval: abc\n", NULL, "RetryInterval",
             "expected a positive number of seconds, got 'abc'");
    load_bad("RetryInterval: 0\n", NULL, "RetryInterval", "positive number of seconds");
    load_bad("TimeoutToFail: -1\n", NULL, "TimeoutToFail", "positive");
    load_bad("TransCronInterval: 0.0\n", NULL, "TransCronInterval", "positive");
    load_bad("RequestTimeout: 0x10\n", NULL, "RequestTimeout", "'0x10'");
    load_bad("RetryMaxInterval: inf\n", NULL, "RetryMaxInterval", "positive");
    load_bad("RetryInterval: 1e12\n", NULL, "RetryInterval", "up to");
    load_bad("RetryInterval: 3s\n", NULL, "RetryInterval", "'3s'");
    /* ports */
    load_bad("HttpPort: 0\n", NULL, "HttpPort", "1..65535");
    load_bad("HttpPort: 65536\n", NULL, "HttpPort", "'65536'");
    load_bad("Store:\n  Port: -5\n", NULL, "Store.Port", "1..65535");
    load_bad("Store:\n  Port: 6379.5\n", NULL, "Store.Port", "'6379.5'");
    /* driver */
    load_bad("Store:\n  Driver: mysql\n", NULL, "Store.Driver", "only redis is supported");
    load_bad("Store:\n  Driver: boltdb\n", NULL, "Store.Driver", "only redis is supported");
    /* log level */
    load_bad("LogLevel: verbose\n", NULL, "LogLevel", "'verbose'");
    /* shards */
    load_bad("Store:\n  Shards: 0\n", NULL, "Store.Shards", "1..1024");
    load_bad("Store:\n  Shards: 1025\n", NULL, "Store.Shards", "1..1024");
    /* expires and limits */
    load_bad("Store:\n  DataExpire: 0\n", NULL, "Store.DataExpire", "positive");
    load_bad("Store:\n  FinishedDataExpire: -3\n", NULL, "Store.FinishedDataExpire", "positive");
    load_bad("Limits:\n  MaxBodyBytes: 0\n", NULL, "Limits.MaxBodyBytes", "positive");
    load_bad("Limits:\n  MaxBranches: -1\n", NULL, "Limits.MaxBranches", "positive");
    load_bad("Limits:\n  MaxGidLength: 0\n", NULL, "Limits.MaxGidLength", "positive");
    load_bad("Limits:\n  MaxBranches: 1.5\n", NULL, "Limits.MaxBranches", "integer");
    load_bad("Limits:\n  MaxBranches: 99999999999999999999\n", NULL, "Limits.MaxBranches",
             "integer");
    load_bad("Limits:\n  MaxRequestTimeout: 0\n", NULL, "Limits.MaxRequestTimeout", "positive");
    load_bad("Limits:\n  MaxTimeoutToFail: 1000000001\n", NULL, "Limits.MaxTimeoutToFail",
             "positive");
    load_bad("Limits:\n  MaxAllBytes: 10\n", NULL, "Limits.MaxAllBytes", "at least 1024");
    load_bad("Metrics:\n  MaxLabelValues: 0\n", NULL, "Metrics.MaxLabelValues", "1..1000000");
    load_bad("AlertRetryLimit: -1\n", NULL, "AlertRetryLimit", "integer");
    load_bad("AlertRetryLimit: three\n", NULL, "AlertRetryLimit", "'three'");
    /* empty hosts, wrong shapes */
    load_bad("Store:\n  Host: ''\n", NULL, "Store.Host", "empty");
    load_bad("HttpPort: [1, 2]\n", NULL, "HttpPort", "list");
    load_bad("Store:\n  Host: {a: 1}\n", NULL, "Store.Host", "mapping");
    load_bad("Store: redis\n", NULL, "Store", "mapping");
    load_bad("Limits: [1]\n", NULL, "Limits", "mapping");
    load_bad("- a\n- b\n", NULL, "top level", NULL);
    /* environment values are validated too, naming key and variable */
    char *env1[] = {"HTTP_PORT=http", NULL};
    load_bad(NULL, env1, "HttpPort", "HTTP_PORT");
    char *env2[] = {"STORE_DRIVER=mysql", NULL};
    load_bad("Store:\n  Driver: redis\n", env2, "Store.Driver", "only redis is supported");
    char *env3[] = {"RETRY_INTERVAL=-2", NULL};
    load_bad(NULL, env3, "RETRY_INTERVAL", "positive number of seconds");
    char *env4[] = {"LOG_LEVEL=loud", NULL};
    load_bad(NULL, env4, "LogLevel", "'loud'");
    CHECK_INT(warn_count, 0);
}

void test_config_yaml_syntax_error(void) {
    load_bad("Store:\n  Host: a\n Port: [\n", NULL, "line", NULL);
    load_bad("HttpPort: 1\nRetryInterval: 'unterminated\n", NULL, "line 2", NULL);
    load_bad("a: b: c\n", NULL, "line 1", NULL);
    /* A bad value after good ones leaves nothing allocated (valgrind). */
    load_bad("Store:\n  Host: h\n  Password: p\nHttpPort: x\n", NULL, "HttpPort", NULL);
}

/* conf/conf.sample.yml documents the defaults: loading it must change nothing
 * and warn about nothing. Skipped when not run from the repository root. */
void test_config_sample_file(void) {
    FILE *f = fopen("conf/conf.sample.yml", "rb");
    if (!f) {
        fprintf(stderr, "  (conf/conf.sample.yml not found, skipped)\n");
        return;
    }
    static char text[65536];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    CHECK(n > 0 && n < sizeof text - 1);
    text[n] = '\0';
    dtmd_config c;
    reset_warn();
    if (load_ok(&c, text, NULL) != 0) return;
    check_defaults(&c);
    config_free(&c);
    CHECK_INT(warn_count, 0);
}

/* Store.Host with a comma names Redis Cluster seed nodes; without one it is a
 * single Redis exactly as before (no seeds, host untouched, even "h:1"). */
void test_config_store_cluster_seeds(void) {
    dtmd_config c;
    reset_warn();
    if (load_ok(&c, "Store:\n  Host: '10.0.0.1:7000,10.0.0.2:7001'\n", NULL) == 0) {
        CHECK_INT(c.store_nseeds, 2);
        if (c.store_nseeds == 2) {
            CHECK_STR(c.store_seeds[0].host, "10.0.0.1");
            CHECK_INT(c.store_seeds[0].port, 7000);
            CHECK_STR(c.store_seeds[1].host, "10.0.0.2");
            CHECK_INT(c.store_seeds[1].port, 7001);
        }
        config_free(&c);
        CHECK_INT(c.store_nseeds, 0);
        CHECK(c.store_seeds == NULL);
    }
    /* Hosts without a port take Store.Port, also when it comes later in the
     * file or from the environment; spaces around entries are ignored; IPv6
     * in brackets, or bare without a port. */
    char *env[] = {"STORE_PORT=7100", NULL};
    if (load_ok(&c, "Store:\n  Host: ' a , b:7002,[::1]:7003,[fe80::1], ::2 '\n  Port: 7005\n",
                env) == 0) {
        CHECK_INT(c.store_nseeds, 5);
        if (c.store_nseeds == 5) {
            CHECK_STR(c.store_seeds[0].host, "a");
            CHECK_INT(c.store_seeds[0].port, 7100);
            CHECK_STR(c.store_seeds[1].host, "b");
            CHECK_INT(c.store_seeds[1].port, 7002);
            CHECK_STR(c.store_seeds[2].host, "::1");
            CHECK_INT(c.store_seeds[2].port, 7003);
            CHECK_STR(c.store_seeds[3].host, "fe80::1");
            CHECK_INT(c.store_seeds[3].port, 7100);
            CHECK_STR(c.store_seeds[4].host, "::2");
            CHECK_INT(c.store_seeds[4].port, 7100);
        }
        config_free(&c);
    }
    /* The environment's list replaces the file's single host. */
    char *env2[] = {"STORE_HOST=127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002", "STORE_PORT=7000",
                    NULL};
    if (load_ok(&c, "Store:\n  Host: single\n", env2) == 0) {
        CHECK_INT(c.store_nseeds, 3);
        if (c.store_nseeds == 3) CHECK_INT(c.store_seeds[2].port, 7002);
        config_free(&c);
    }
    /* Store.Cluster: true makes one address a cluster seed (its port from
     * Store.Port when it has none). */
    char *env3[] = {"STORE_CLUSTER=true", NULL};
    if (load_ok(&c, "Store:\n  Host: seed\n  Port: 7010\n", env3) == 0) {
        CHECK_INT(c.store_nseeds, 1);
        if (c.store_nseeds == 1) {
            CHECK_STR(c.store_seeds[0].host, "seed");
            CHECK_INT(c.store_seeds[0].port, 7010);
        }
        config_free(&c);
    }
    if (load_ok(&c, "Store:\n  Host: 'seed:7011'\n  Cluster: yes\n", NULL) == 0) {
        CHECK_INT(c.store_nseeds, 1);
        if (c.store_nseeds == 1) CHECK_INT(c.store_seeds[0].port, 7011);
        config_free(&c);
    }
    /* A trailing comma makes a one-seed cluster. */
    if (load_ok(&c, "Store:\n  Host: 'seed:7000,'\n", NULL) == 0) {
        CHECK_INT(c.store_nseeds, 1);
        if (c.store_nseeds == 1) CHECK_STR(c.store_seeds[0].host, "seed");
        config_free(&c);
    }
    /* No comma: one Redis, as always. */
    if (load_ok(&c, "Store:\n  Host: redis.local\n  Port: 6400\n", NULL) == 0) {
        CHECK_INT(c.store_nseeds, 0);
        CHECK_STR(c.store_host, "redis.local");
        CHECK_INT(c.store_port, 6400);
        config_free(&c);
    }
    CHECK_INT(warn_count, 0);
    load_bad("Store:\n  Host: ','\n", NULL, "Store.Host", "host[:port]");
    load_bad("Store:\n  Host: 'a:7000,b:0'\n", NULL, "Store.Host", "'b:0'");
    load_bad("Store:\n  Host: 'a:7000,b:70000'\n", NULL, "Store.Host", "'b:70000'");
    load_bad("Store:\n  Host: 'a:7000,b:x'\n", NULL, "Store.Host", "'b:x'");
    load_bad("Store:\n  Host: 'a:7000,b:'\n", NULL, "Store.Host", "'b:'");
    load_bad("Store:\n  Host: 'a:7000,:7001'\n", NULL, "Store.Host", "':7001'");
    load_bad("Store:\n  Host: 'a,[::1'\n", NULL, "Store.Host", "'[::1'");
    load_bad("Store:\n  Host: 'a,[::1]x'\n", NULL, "Store.Host", "'[::1]x'");
    load_bad("Store:\n  Host: 'a,[]:1'\n", NULL, "Store.Host", "'[]:1'");
    char *bad_env[] = {"STORE_HOST=a:1,b:-2", NULL};
    load_bad(NULL, bad_env, "Store.Host", "'b:-2'");
}

/* Store.CommandTimeout / WaitReplicas / WaitTimeout: each bound accepted
 * exactly and refused one step over; seconds may be fractional (kept in ms);
 * the environment overrides the file; a WAIT must end before the commands
 * queued behind it time out. */
void test_config_store_timeouts(void) {
    dtmd_config c;
    reset_warn();
    if (load_ok(&c, "Store:\n  CommandTimeout: 0.5\n  WaitReplicas: 2\n  WaitTimeout: 0.25\n",
                NULL) == 0) {
        CHECK_INT(c.store_command_timeout_ms, 500);
        CHECK_INT(c.store_wait_replicas, 2);
        CHECK_INT(c.store_wait_timeout_ms, 250);
        config_free(&c);
    }
    char *env[] = {"STORE_COMMAND_TIMEOUT=0.75", "STORE_WAIT_REPLICAS=1", "STORE_WAIT_TIMEOUT=0.1",
                   NULL};
    if (load_ok(&c, "Store:\n  CommandTimeout: 5\n  WaitReplicas: 3\n", env) == 0) {
        CHECK_INT(c.store_command_timeout_ms, 750);
        CHECK_INT(c.store_wait_replicas, 1);
        CHECK_INT(c.store_wait_timeout_ms, 100);
        config_free(&c);
    }
    /* the edges: CommandTimeout 0.01..600 s, WaitReplicas 0..1000, WaitTimeout 0.001..600 s */
    if (load_ok(&c, "Store:\n  CommandTimeout: 0.01\n  WaitTimeout: 0.001\n", NULL) == 0) {
        CHECK_INT(c.store_command_timeout_ms, 10);
        CHECK_INT(c.store_wait_timeout_ms, 1);
        config_free(&c);
    }
    if (load_ok(&c, "Store:\n  CommandTimeout: 600\n  WaitReplicas: 1000\n  WaitTimeout: 599\n",
                NULL) == 0) {
        CHECK_INT(c.store_command_timeout_ms, 600000);
        CHECK_INT(c.store_wait_replicas, 1000);
        CHECK_INT(c.store_wait_timeout_ms, 599000);
        config_free(&c);
    }
    /* WaitTimeout 600 is in range when nothing waits (WaitReplicas 0) */
    if (load_ok(&c, "Store:\n  CommandTimeout: 600\n  WaitTimeout: 600\n", NULL) == 0) {
        CHECK_INT(c.store_wait_timeout_ms, 600000);
        config_free(&c);
    }
    CHECK_INT(warn_count, 0);
    load_bad("Store:\n  CommandTimeout: 0.009\n", NULL, "Store.CommandTimeout", "0.01..600");
    load_bad("Store:\n  CommandTimeout: 600.001\n", NULL, "Store.CommandTimeout", "0.01..600");
    load_bad("Store:\n  CommandTimeout: 0\n", NULL, "Store.CommandTimeout", "'0'");
    load_bad("Store:\n  CommandTimeout: 2s\n", NULL, "Store.CommandTimeout", "'2s'");
    load_bad("Store:\n  WaitReplicas: -1\n", NULL, "Store.WaitReplicas", "0..1000");
    load_bad("Store:\n  WaitReplicas: 1001\n", NULL, "Store.WaitReplicas", "0..1000");
    load_bad("Store:\n  WaitTimeout: 0.0004\n", NULL, "Store.WaitTimeout", "0.001..600");
    load_bad("Store:\n  WaitTimeout: 600.001\n", NULL, "Store.WaitTimeout", "0.001..600");
    char *bad_env[] = {"STORE_WAIT_TIMEOUT=0", NULL};
    load_bad(NULL, bad_env, "STORE_WAIT_TIMEOUT", "0.001..600");
    /* WaitTimeout must stay below CommandTimeout once something waits */
    load_bad("Store:\n  WaitReplicas: 1\n  WaitTimeout: 2\n", NULL, "Store.WaitTimeout",
             "shorter than Store.CommandTimeout");
    load_bad("Store:\n  WaitReplicas: 1\n  CommandTimeout: 0.5\n  WaitTimeout: 0.5\n", NULL,
             "Store.WaitTimeout", "shorter");
    if (load_ok(&c, "Store:\n  WaitReplicas: 1\n  CommandTimeout: 0.5\n  WaitTimeout: 0.499\n",
                NULL) == 0)
        config_free(&c);
}

/* Store.SentinelAddrs: a host:port list (26379 by default), exclusive with
 * Redis Cluster; the master's name must not be empty. */
void test_config_store_sentinel(void) {
    dtmd_config c;
    reset_warn();
    if (load_ok(&c,
                "Store:\n  SentinelAddrs: 'a:26380, b ,[::1]:26381'\n  SentinelMaster: m1\n"
                "  SentinelPassword: pw\n",
                NULL) == 0) {
        CHECK_INT(c.nsentinels, 3);
        if (c.nsentinels == 3) {
            CHECK_STR(c.sentinels[0].host, "a");
            CHECK_INT(c.sentinels[0].port, 26380);
            CHECK_STR(c.sentinels[1].host, "b");
            CHECK_INT(c.sentinels[1].port, 26379);
            CHECK_STR(c.sentinels[2].host, "::1");
            CHECK_INT(c.sentinels[2].port, 26381);
        }
        CHECK_STR(c.sentinel_master, "m1");
        CHECK_STR(c.sentinel_password, "pw");
        CHECK_INT(c.store_nseeds, 0);
        config_free(&c);
        CHECK_INT(c.nsentinels, 0);
        CHECK(c.sentinels == NULL);
    }
    char *env[] = {"STORE_SENTINEL_ADDRS=s1:1,s2:2", "STORE_SENTINEL_MASTER=other", NULL};
    if (load_ok(&c, NULL, env) == 0) {
        CHECK_INT(c.nsentinels, 2);
        CHECK_STR(c.sentinel_master, "other");
        config_free(&c);
    }
    CHECK_INT(warn_count, 0);
    load_bad("Store:\n  SentinelAddrs: 'a:1'\n  Host: 'x:7000,y:7001'\n", NULL,
             "Store.SentinelAddrs", "exclude each other");
    load_bad("Store:\n  SentinelAddrs: 'a:1'\n  Cluster: true\n", NULL, "Store.SentinelAddrs",
             "exclude each other");
    load_bad("Store:\n  SentinelAddrs: 'a:1'\n  SentinelMaster: ''\n", NULL, "Store.SentinelMaster",
             "empty");
    load_bad("Store:\n  SentinelAddrs: ','\n", NULL, "Store.SentinelAddrs", "host:port");
    load_bad("Store:\n  SentinelAddrs: 'a:65536'\n", NULL, "Store.SentinelAddrs", "'a:65536'");
    load_bad("Store:\n  SentinelAddrs: 'a:1,b:0'\n", NULL, "Store.SentinelAddrs", "'b:0'");
}
