/* trans.h - the global transaction and its branches: the in-memory model
 * and its timing. Requests become a trans in trans_request.h; query answers
 * are written by trans_json.h; how it is stored in Redis is trans_store.h's.
 * Times are kept in milliseconds. */
#ifndef DTMD_TRANS_H
#define DTMD_TRANS_H

#include "config.h"
#include "json.h"
#include "util.h"

#include <stdint.h>

typedef enum { TT_SAGA = 0, TT_MSG, TT_TCC, TT_XA, TT_WORKFLOW, TT_COUNT } trans_type_t;
typedef enum {
    GS_PREPARED = 0,
    GS_SUBMITTED,
    GS_ABORTING,
    GS_SUCCEED,
    GS_FAILED,
    GS_COUNT
} global_status_t;
typedef enum { BS_PREPARED = 0, BS_SUCCEED, BS_FAILED, BS_COUNT } branch_status_t;

const char *trans_type_name(int t);
int trans_type_parse(const char *s); /* -1 if unknown */
const char *global_status_name(int s);
int global_status_parse(const char *s); /* -1 if unknown */
const char *branch_status_name(int s);
int branch_status_parse(const char *s);
int global_status_final(int s);

typedef struct branch {
    char *branch_id;
    char *op;
    char *url;
    char *data; /* payload bytes (may contain anything but is sent verbatim) */
    size_t data_len;
    int status;
    int64_t create_ms, update_ms, finish_ms, rollback_ms; /* 0 = unset */
} branch;

typedef struct trans {
    char *gid;
    int type;
    int status;
    char *steps;       /* JSON text of the steps array, or NULL */
    char *payloads;    /* JSON text of the payloads array, or NULL */
    char *custom_data; /* NULL = "" */
    char *query_prepared;
    char *protocol;
    char *rollback_reason;
    char *last_error; /* JSON object (last_error.h) or NULL */
    char *result;
    char *branch_headers; /* JSON object text or NULL */
    char *req_extra;      /* JSON object text (workflow submit) or NULL; not stored */
    int64_t create_ms, update_ms, finish_ms, rollback_ms;
    /* How far submits of the prepared transaction moved create_ms (they
     * set it to the submit's time, as dtm does): create_ms - this is when it
     * was stored, which its index entry records (stored as "cs", only when
     * not 0: lua/claim.lua, retention.h). */
    int64_t create_shift_ms;
    int64_t next_cron_ms, next_cron_interval_ms;
    /* The process driving it holds it until then (ms; 0 = nobody): see
     * lua/claim.lua. Stored as "lease_until", never shown in the API. */
    int64_t lease_until_ms;
    /* The epoch of this process's liveness the hold was taken in (0 = this
     * process took none): it acts on the hold only while still live in that
     * epoch (liveness.h). Not stored. */
    int64_t hold_epoch;
    int wait_result, concurrent;
    int64_t timeout_to_fail, request_timeout, retry_interval, retry_limit, retry_count; /* s */
    branch *branches;
    int nbranches, branches_cap;
    /* Loaded from the previous store layout: its branch states are written
     * back in it (trans_hash.h). */
    int old_layout;
    /* Its branch states were stored in one "bs" text (the compact layout's
     * first form): they are written back whole (trans_hash.h). */
    int states_whole;
    /* The hash holds a stop a request recorded for the holder of the time
     * (stop_req, lua/cas_update.lua): whoever drives it next stores that
     * stop before anything else (engine.c). */
    int stop_recorded;
    /* derived, for branch calls */
    char **header_lines;
    int nheaders;
    /* The parsed request body, kept from trans_from_body until
     * trans_make_branches reads the steps and payloads from it (else they
     * are parsed again from the stored text). Owned; NULL otherwise. */
    yajl_val request;
} trans;

trans *trans_new(void);
void trans_free(trans *t);
branch *trans_add_branch(trans *t, const char *branch_id, const char *op, const char *url,
                         const char *data, size_t data_len, int status);

/* Free t->request now (it is otherwise freed by trans_make_branches or
 * trans_free): a transaction that lives on does not keep its request. */
void trans_drop_request(trans *t);

/* Timing helpers (docs/protocol.md#retries-and-back-off, #timeouts); all in ms. */
int64_t trans_base_interval_ms(const trans *t, const dtmd_config *cfg);
int64_t trans_request_timeout_ms(const trans *t, const dtmd_config *cfg);
int64_t trans_timeout_ms(const trans *t, const dtmd_config *cfg); /* 0 = never */
int trans_timed_out(const trans *t, const dtmd_config *cfg, int64_t now);

/* Is url acceptable as a branch URL: "" or http(s)://host... */
int url_is_http(const char *url);

/* When the transaction was stored (create_ms less what submits moved it):
 * fixed for its life, so the stored times are kept relative to it
 * (trans_hash.h, branch_states.h). */
static inline int64_t trans_stored_ms(const trans *t) {
    return t->create_ms - t->create_shift_ms;
}

/* A stored time or distance (ms) beyond this (year 33658) is corrupt: reading
 * refuses it, so that the sums above cannot overflow. */
#define TRANS_TIME_MAX_MS 1000000000000000LL

static inline int trans_time_sane(int64_t ms) {
    return ms >= -TRANS_TIME_MAX_MS && ms <= TRANS_TIME_MAX_MS;
}

#endif
