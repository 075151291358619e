/* main.c - dtmd entry point: configuration, the event loop, shutdown.
 *
 * Everything runs on one libevent loop: evhttp (incoming API), libcurl multi
 * (outgoing branch calls), hiredis async (Redis) and the retry scanner's
 * timer. SIGINT/SIGTERM stop the loop; unfinished transactions simply stay
 * in Redis and are resumed by whichever dtmd scans them next. SIGHUP reopens
 * the log files (Log.Outputs) after logrotate moved them. --check-config
 * loads and validates the configuration, prints it (secrets masked) and
 * exits 0, or 1 with the error. */
#include "branch_call.h"
#include "config.h"
#include "config_load.h"
#include "config_print.h"
#include "cron.h"
#include "engine.h"
#include "http_api.h"
#include "http_conn.h"
#include "liveness.h"
#include "log.h"
#include "metrics.h"
#include "startup_mem.h"
#include "stop_sub.h"
#include "store.h"
#include "trans_store.h"
#include "version.h"

#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void usage(FILE *f) {
    fprintf(
        f,
        "dtmd %s - a dtm-compatible distributed transaction manager\n\n"
        "usage: dtmd [-c conf.yml] [-d] [--check-config]\n"
        "  -c, --config FILE  configuration file (dtm's conf.yml keys; see conf/conf.sample.yml)\n"
        "  -d, --debug        log at debug level\n"
        "  --check-config     validate the configuration, print it (secrets masked), exit 0/1\n"
        "  -v, --version      print the version and exit\n"
        "  -h, --help         this help\n\n"
        "Every key can also be set by an environment variable (Store.Host -> STORE_HOST,\n"
        "HttpPort -> HTTP_PORT, ...); the environment wins over the file.\n",
        DTMD_VERSION);
}

static void warn_cb(const char *msg) {
    log_warn("config: %s", msg);
}

static void on_hup(evutil_socket_t sig, short what, void *arg) {
    (void)sig, (void)what, (void)arg;
    if (log_reopen() == 0) log_info("SIGHUP: log files reopened");
}

/* --check-config: everything start-up would refuse, without starting. */
static int check_config(const char *conf_path) {
    dtmd_config cfg;
    char *err = NULL;
    if (config_load(&cfg, conf_path, warn_cb, &err) != 0) {
        fprintf(stderr, "dtmd: configuration error: %s\n", err ? err : "unknown");
        free(err);
        return 1;
    }
    /* Log.Outputs: the files must be writable (opened for appending, as at
     * start-up; nothing is written to them). */
    if (log_set_outputs(cfg.log_outputs, &err) != 0) {
        fprintf(stderr, "dtmd: configuration error: %s\n", err ? err : "Log.Outputs");
        free(err);
        log_close();
        config_free(&cfg);
        return 1;
    }
    log_close();
    printf("# dtmd %s: effective configuration (%s + environment)\n", DTMD_VERSION,
           conf_path ? conf_path : "defaults");
    config_print(&cfg, stdout);
    printf("# configuration OK\n");
    config_free(&cfg);
    return 0;
}

static void on_signal(evutil_socket_t sig, short what, void *arg) {
    (void)what;
    log_info("signal %d: shutting down", (int)sig);
    event_base_loopbreak(arg);
}

/* The gauges /api/metrics reads from the modules that own them. */
static double gauge_active_passes(void) {
    return engine_active_count();
}
static double gauge_calls_in_flight(void) {
    return branch_call_pending();
}
static double gauge_store_up(void) {
    return store_is_up() ? 1 : 0;
}
static double gauge_parked_total(void) {
    return (double)engine_parked_total();
}

static void register_gauges(void) {
    metrics_add_gauge("dtmd_active_passes", "Transactions being driven by this process.", "gauge",
                      gauge_active_passes);
    metrics_add_gauge("dtmd_branch_calls_in_flight", "Branch calls waiting for an answer.", "gauge",
                      gauge_calls_in_flight);
    metrics_add_gauge("dtmd_store_up", "1 when the Redis store is connected.", "gauge",
                      gauge_store_up);
    metrics_add_gauge("dtmd_parked_total",
                      "Transactions left in the store for the scanner because "
                      "Limits.MaxActivePasses was reached.",
                      "counter", gauge_parked_total);
}

int main(int argc, char **argv) {
    const char *conf_path = NULL;
    int debug = 0, check = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((!strcmp(a, "-c") || !strcmp(a, "--config")) && i + 1 < argc) {
            conf_path = argv[++i];
        } else if (!strcmp(a, "--check-config") || !strcmp(a, "-t")) {
            check = 1;
        } else if (!strcmp(a, "-d") || !strcmp(a, "--debug")) {
            debug = 1;
        } else if (!strcmp(a, "-v") || !strcmp(a, "--version")) {
            printf("dtmd %s\n", DTMD_VERSION);
            return 0;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "dtmd: unknown argument '%s'\n\n", a);
            usage(stderr);
            return 2;
        }
    }

    if (check) return check_config(conf_path);
    startup_mem_allocator();

    dtmd_config cfg;
    char *err = NULL;
    if (config_load(&cfg, conf_path, warn_cb, &err) != 0) {
        fprintf(stderr, "dtmd: configuration error: %s\n", err ? err : "unknown");
        free(err);
        return 1;
    }
    log_set_level(debug ? LOG_DEBUG : cfg.log_level);
    log_set_json(cfg.log_json);
    log_access_enabled = cfg.log_access;
    if (log_set_outputs(cfg.log_outputs, &err) != 0) {
        fprintf(stderr, "dtmd: configuration error: %s\n", err ? err : "Log.Outputs");
        free(err);
        config_free(&cfg);
        return 1;
    }
    srandom((unsigned)(time(NULL) ^ getpid()));
    signal(SIGPIPE, SIG_IGN);

    http_conn_fit_fd_limit(&cfg);
    http_conn_prepare(&cfg);
    metrics_set_max_label_values(cfg.metrics_max_label_values);
    /* epoll's changelist: the interest changes a loop pass makes on one
     * socket reach the kernel as one epoll_ctl when it next waits. evhttp
     * turns writing off and reading on after every answer, two calls made
     * one (docs/performance.md). libevent's caveat is dup()ed descriptors, which
     * dtmd never watches; a descriptor closed and reopened within one pass
     * is retried as an ADD by libevent. */
    struct event_config *ec = event_config_new();
    if (ec) event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    struct event_base *base = ec ? event_base_new_with_config(ec) : NULL;
    if (ec) event_config_free(ec);
    if (!base) {
        fprintf(stderr, "dtmd: cannot create the event loop\n");
        return 1;
    }
    register_gauges();
    tstore_init(&cfg);
    if (branch_call_init(base) != 0 || store_init(base, &cfg) != 0 ||
        liveness_init(base, &cfg) != 0 || engine_init(base, &cfg) != 0 ||
        stop_sub_init(base, &cfg) != 0 || http_api_init(base, &cfg) != 0 ||
        cron_init(base, &cfg) != 0 || metrics_start(base) != 0) {
        log_error("start-up failed");
        config_free(&cfg);
        return 1;
    }
    struct event *sigint = evsignal_new(base, SIGINT, on_signal, base);
    struct event *sigterm = evsignal_new(base, SIGTERM, on_signal, base);
    evsignal_add(sigint, NULL);
    evsignal_add(sigterm, NULL);
    struct event *sighup = evsignal_new(base, SIGHUP, on_hup, NULL);
    evsignal_add(sighup, NULL);
    if (cfg.store_nseeds > 0)
        log_info("dtmd %s started (Redis Cluster, seeds %s, prefix '%s', %d shards)", DTMD_VERSION,
                 cfg.store_host, cfg.redis_prefix, cfg.store_shards);
    else if (cfg.nsentinels > 0)
        log_info("dtmd %s started (Redis Sentinel master '%s', sentinels %s, prefix '%s', %d "
                 "shards)",
                 DTMD_VERSION, cfg.sentinel_master, cfg.sentinel_addrs_text, cfg.redis_prefix,
                 cfg.store_shards);
    else
        log_info("dtmd %s started (store %s:%d prefix '%s', %d shards)", DTMD_VERSION,
                 cfg.store_host, cfg.store_port, cfg.redis_prefix, cfg.store_shards);

    event_base_dispatch(base);

    http_api_shutdown();
    cron_shutdown();
    stop_sub_shutdown();
    engine_shutdown();
    liveness_shutdown();
    store_shutdown();
    metrics_reset();
    branch_call_shutdown();
    event_free(sigint);
    event_free(sigterm);
    event_free(sighup);
    event_base_free(base);
    config_free(&cfg);
    log_info("dtmd stopped");
    log_close();
    return 0;
}
