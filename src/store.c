/* store.c - hiredis async connection with reconnect and script loading.
 *
 * Why a wrapper at all: hiredis gives us a connection, but dtmd needs three
 * things around it that every caller would otherwise repeat: reconnecting
 * after Redis restarts, failing fast (and asynchronously) while it is down,
 * and calling scripts by SHA with a transparent fallback when Redis forgot
 * them. Requests keep their arguments until answered for that fallback. */
#include "store.h"

#include "log.h"
#include "lua_scripts.h"
#include "util.h"

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <stdlib.h>
#include <string.h>

#define UNAVAILABLE "store unavailable"

typedef struct store_req {
    rargs args;  /* full command as sent (EVALSHA form for scripts) */
    int script;  /* index into lua_scripts, or -1 for plain commands */
    int retried; /* already re-sent as EVAL after NOSCRIPT */
    store_cb *cb;
    void *arg;
} store_req;

static struct {
    struct event_base *base;
    const dtmd_config *cfg;
    redisAsyncContext *ac;
    int up; /* connected and usable */
    int stopping;
    struct event *reconnect_ev;
    double reconnect_delay; /* seconds, doubles up to 2 s */
    char (*shas)[41];       /* per script, "" until SCRIPT LOAD answered */
    int nscripts;
} st;

void ra_init(rargs *a) {
    memset(a, 0, sizeof *a);
}

void ra_add(rargs *a, const char *s, size_t n) {
    if (a->argc == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 16;
        a->argv = xrealloc(a->argv, sizeof(char *) * (size_t)a->cap);
        a->lens = xrealloc(a->lens, sizeof(size_t) * (size_t)a->cap);
    }
    a->argv[a->argc] = xstrndup(s ? s : "", s ? n : 0);
    a->lens[a->argc] = s ? n : 0;
    a->argc++;
}

void ra_adds(rargs *a, const char *s) {
    ra_add(a, s, s ? strlen(s) : 0);
}

void ra_addi(rargs *a, int64_t v) {
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%lld", (long long)v);
    ra_add(a, tmp, (size_t)n);
}

void ra_free(rargs *a) {
    for (int i = 0; i < a->argc; i++) free(a->argv[i]);
    free(a->argv);
    free(a->lens);
    ra_init(a);
}

int store_err_unavailable(const char *err) {
    return err && strncmp(err, UNAVAILABLE, strlen(UNAVAILABLE)) == 0;
}

int store_is_up(void) {
    return st.up;
}

static void req_free(store_req *r) {
    ra_free(&r->args);
    free(r);
}

static void schedule_reconnect(void);
static void send_req(store_req *r);

/* Deferred failure: callers must never be called back re-entrantly. */
static void fail_later_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    store_req *r = arg;
    r->cb(r->arg, NULL, UNAVAILABLE);
    req_free(r);
}

static void fail_later(store_req *r) {
    if (event_base_once(st.base, -1, EV_TIMEOUT, fail_later_cb, r, NULL) != 0) {
        r->cb(r->arg, NULL, UNAVAILABLE);
        req_free(r);
    }
}

static void reply_cb(redisAsyncContext *ac, void *replyp, void *privdata) {
    (void)ac;
    store_req *r = privdata;
    redisReply *reply = replyp;
    if (!reply) {
        r->cb(r->arg, NULL, UNAVAILABLE ": connection lost");
        req_free(r);
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        if (r->script >= 0 && !r->retried && strncmp(reply->str, "NOSCRIPT", 8) == 0) {
            /* Redis lost its script cache: send the body once, which also
             * caches it again for the following EVALSHA calls. */
            const lua_script *s = &lua_scripts[r->script];
            free(r->args.argv[0]);
            free(r->args.argv[1]);
            r->args.argv[0] = xstrdup("EVAL");
            r->args.lens[0] = 4;
            r->args.argv[1] = xstrndup(s->text, s->len);
            r->args.lens[1] = s->len;
            r->retried = 1;
            send_req(r);
            return;
        }
        r->cb(r->arg, NULL, reply->str);
        req_free(r);
        return;
    }
    r->cb(r->arg, reply, NULL);
    req_free(r);
}

static void send_req(store_req *r) {
    if (!st.up || !st.ac) {
        fail_later(r);
        return;
    }
    if (redisAsyncCommandArgv(st.ac, reply_cb, r, r->args.argc, (const char **)r->args.argv,
                              r->args.lens) != REDIS_OK) {
        fail_later(r);
    }
}

void store_command(rargs *cmd, store_cb *cb, void *arg) {
    store_req *r = xcalloc(1, sizeof *r);
    r->args = *cmd;
    ra_init(cmd);
    r->script = -1;
    r->cb = cb;
    r->arg = arg;
    send_req(r);
}

void store_script(const char *name, int nkeys, rargs *args, store_cb *cb, void *arg) {
    int idx = -1;
    for (int i = 0; lua_scripts[i].name; i++) {
        if (strcmp(lua_scripts[i].name, name) == 0) {
            idx = i;
            break;
        }
    }
    if (idx < 0) {
        log_error("store: no script named %s", name);
        abort();
    }
    store_req *r = xcalloc(1, sizeof *r);
    r->script = idx;
    r->cb = cb;
    r->arg = arg;
    ra_init(&r->args);
    if (st.shas[idx][0]) {
        ra_adds(&r->args, "EVALSHA");
        ra_adds(&r->args, st.shas[idx]);
    } else {
        ra_adds(&r->args, "EVAL");
        ra_add(&r->args, lua_scripts[idx].text, lua_scripts[idx].len);
        r->retried = 1;
    }
    ra_addi(&r->args, nkeys);
    for (int i = 0; i < args->argc; i++) ra_add(&r->args, args->argv[i], args->lens[i]);
    ra_free(args);
    send_req(r);
}

static void script_loaded_cb(redisAsyncContext *ac, void *replyp, void *privdata) {
    (void)ac;
    redisReply *reply = replyp;
    int idx = (int)(intptr_t)privdata;
    if (reply && reply->type == REDIS_REPLY_STRING && reply->len == 40) {
        memcpy(st.shas[idx], reply->str, 41);
    } else if (reply) {
        log_error("store: SCRIPT LOAD %s failed: %s", lua_scripts[idx].name,
                  reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
    }
}

static void auth_cb(redisAsyncContext *ac, void *replyp, void *privdata) {
    (void)privdata;
    redisReply *reply = replyp;
    if (reply && reply->type == REDIS_REPLY_ERROR) {
        log_error("store: AUTH failed: %s", reply->str);
        redisAsyncDisconnect(ac);
    }
}

static void connect_cb(const redisAsyncContext *ac, int status) {
    if (status != REDIS_OK) {
        log_warn("store: cannot connect to redis %s:%d: %s", st.cfg->store_host, st.cfg->store_port,
                 ac->errstr);
        st.ac = NULL; /* hiredis frees the context after this callback */
        schedule_reconnect();
        return;
    }
    redisAsyncContext *c = (redisAsyncContext *)ac;
    if (st.cfg->store_password[0]) {
        if (st.cfg->store_user[0])
            redisAsyncCommand(c, auth_cb, NULL, "AUTH %s %s", st.cfg->store_user,
                              st.cfg->store_password);
        else
            redisAsyncCommand(c, auth_cb, NULL, "AUTH %s", st.cfg->store_password);
    }
    for (int i = 0; i < st.nscripts; i++) {
        st.shas[i][0] = '\0';
        redisAsyncCommand(c, script_loaded_cb, (void *)(intptr_t)i, "SCRIPT LOAD %b",
                          lua_scripts[i].text, lua_scripts[i].len);
    }
    st.up = 1;
    st.reconnect_delay = 0.1;
    log_info("store: connected to redis %s:%d", st.cfg->store_host, st.cfg->store_port);
}

static void disconnect_cb(const redisAsyncContext *ac, int status) {
    (void)ac;
    st.up = 0;
    st.ac = NULL;
    if (st.stopping) return;
    log_warn("store: redis connection lost%s%s", status == REDIS_OK ? "" : ": ",
             status == REDIS_OK ? "" : ac->errstr);
    schedule_reconnect();
}

static void do_connect(void) {
    redisAsyncContext *ac = redisAsyncConnect(st.cfg->store_host, st.cfg->store_port);
    if (!ac || ac->err) {
        log_warn("store: cannot connect to redis %s:%d: %s", st.cfg->store_host, st.cfg->store_port,
                 ac ? ac->errstr : "out of memory");
        if (ac) redisAsyncFree(ac);
        schedule_reconnect();
        return;
    }
    st.ac = ac;
    redisLibeventAttach(ac, st.base);
    redisAsyncSetConnectCallback(ac, connect_cb);
    redisAsyncSetDisconnectCallback(ac, disconnect_cb);
}

static void reconnect_timer_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what, (void)arg;
    if (!st.stopping && !st.ac) do_connect();
}

static void schedule_reconnect(void) {
    if (st.stopping) return;
    double d = st.reconnect_delay;
    struct timeval tv = {(time_t)d, (suseconds_t)((d - (double)(time_t)d) * 1e6)};
    evtimer_add(st.reconnect_ev, &tv);
    st.reconnect_delay = d * 2 > 2.0 ? 2.0 : d * 2;
}

int store_init(struct event_base *base, const dtmd_config *cfg) {
    memset(&st, 0, sizeof st);
    st.base = base;
    st.cfg = cfg;
    st.reconnect_delay = 0.1;
    while (lua_scripts[st.nscripts].name) st.nscripts++;
    st.shas = xcalloc((size_t)st.nscripts, sizeof *st.shas);
    st.reconnect_ev = evtimer_new(base, reconnect_timer_cb, NULL);
    do_connect();
    return 0;
}

void store_shutdown(void) {
    st.stopping = 1;
    st.up = 0;
    if (st.ac) {
        redisAsyncContext *ac = st.ac;
        st.ac = NULL;
        redisAsyncFree(ac); /* pending callbacks get a NULL reply */
    }
    if (st.reconnect_ev) event_free(st.reconnect_ev);
    st.reconnect_ev = NULL;
    free(st.shas);
    st.shas = NULL;
}
