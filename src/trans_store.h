/* trans_store.h - a transaction's life in Redis: the one module that knows
 * how transactions are stored (with trans_hash.h, its hash encoding).
 *
 * It owns the key layout of a gid (keys.h names the keys, this module picks
 * the prefix and shard), the argument list of every transaction script in
 * lua/ (docs/design.md "Lua contracts") and the parsing of their replies
 * into a tag plus, where the script returns the hash, a decoded trans. It
 * sits on store.h (the async Redis client) and below engine, cron and the
 * API, which call it with typed arguments and never build a Redis command
 * for a transaction themselves. */
#ifndef DTMD_TRANS_STORE_H
#define DTMD_TRANS_STORE_H

#include "config.h"
#include "store.h"
#include "trans.h"
#include "trans_hash.h"

#include <stdint.h>

/* Prefix and shard count from cfg (kept). */
void tstore_init(const dtmd_config *cfg);

/* The identity scripts record as a hold's owner, and its liveness TTL
 * (liveness.h sets them once it picked its identity). */
void tstore_set_holder(const char *id, int64_t ttl_ms);

int tstore_shard(const char *gid); /* keys.h: the gid's shard */

/* ---- script replies ------------------------------------------------------ */

typedef enum {
    TS_OK = 0,
    TS_EXISTS,     /* save_new: the gid is stored already */
    TS_CONFLICT,   /* the stored status does not allow it */
    TS_WRONG_TYPE, /* the stored type is not the expected one */
    TS_NOT_FOUND,  /* no such transaction */
    TS_BUSY,       /* claim, lease_load: another holder drives it */
    TS_LOST,       /* cas_update: the writer's hold was taken over */
    TS_STOP,       /* cas_update: a request to another process asked to stop */
    TS_HELD,       /* cas_update: an ending request waits for the holder */
    TS_SAME,       /* register_branch: registered before with the same content */
    TS_DUPLICATE,  /* register_branch: registered before with other content */
    TS_TOO_MANY,   /* register_branch: Limits.MaxBranches reached */
    TS_NONE,       /* stop_apply: no stop recorded */
    TS_NOT_OURS,   /* stop_apply: this process does not hold it */
    TS_BAD,        /* a reply of an unexpected shape */
} tstore_tag;

/* A script's answer. Strings point into the reply and are valid during the
 * callback only; t is owned by the reply: a callback that keeps it sets
 * r->t = NULL. */
typedef struct tstore_reply {
    tstore_tag tag;
    const char *tag_text; /* as the script said it ("" for TS_BAD) */
    const char *status;   /* the stored status ("" if none); TOO_MANY: the branch count */
    const char *type;     /* the stored type ("" if none) */
    const char *reason;   /* stop_apply OK: the rollback reason stored, or NULL */
    int64_t epoch;        /* save_new/claim/lease_load OK, lease_move: the hold's epoch */
    int64_t held_until;   /* claim BUSY: the hold's end (ms) */
    trans *t;             /* claim/lease_load OK, tstore_load: the transaction */
} tstore_reply;

/* Exactly one of r / err is non-NULL; err as store.h says. */
typedef void tstore_cb(void *arg, tstore_reply *r, const char *err);

/* ---- commands ------------------------------------------------------------ */

/* HGETALL: r->tag OK with r->t, NOT_FOUND (no hash) or BAD (malformed). */
void tstore_load(const char *gid, tstore_cb *cb, void *arg);

/* save_new.lua: store t unless its gid exists. due_ms -1: stored finished
 * (not due); ttl_s the hash's TTL; held: this process holds it from now on
 * (t->lease_until_ms). OK (epoch) / EXISTS (status, type). */
void tstore_save_new(const trans *t, int64_t due_ms, int64_t ttl_s, int held, tstore_cb *cb,
                     void *arg);

/* cas_update.lua: a compare-and-set on the stored type and status. */
typedef struct tstore_cas {
    const char *gid;
    const char *type;    /* expected type; NULL = any */
    const char *from;    /* expected statuses, a comma list; "" = any */
    int64_t due_ms;      /* 0 = leave the due index, -1 = remove, else the new due time */
    int64_t ttl_s;       /* the hash's TTL, 0 = leave */
    int pass;            /* a pass's write: carries its hold (hold) */
    int fenced;          /* ... fenced by this process's identity (a hold was taken) */
    int64_t hold;        /* the pass's lease_until */
    const char *stop_id; /* an ending request: its id and the stop channel */
    const char *stop_channel;
    const rargs *first; /* fields written before the others (NULL = none) */
    int check_nb;       /* refuse (CONFLICT) unless the stored branch count is nb */
    int nb;
} tstore_cas;

/* The arguments of c with fields (consumed), to send now or again. */
void tstore_cas_args(const tstore_cas *c, rargs *fields, rargs *out);
/* Send them (copied: args may be sent again). */
void tstore_cas_send(const rargs *args, tstore_cb *cb, void *arg);
/* Both at once (fields consumed). */
void tstore_cas_update(const tstore_cas *c, rargs *fields, tstore_cb *cb, void *arg);

/* claim.lua: a request takes a stored transaction over (fields consumed).
 * OK (t, epoch) / BUSY (held_until) / CONFLICT / WRONG_TYPE / NOT_FOUND. */
void tstore_claim(const char *gid, const char *type, const char *from, const char *busy,
                  int64_t now, int64_t lease_end, rargs *fields, tstore_cb *cb, void *arg);

/* lease_load.lua: the scanner holds a due gid and loads it. OK (t, epoch) /
 * BUSY / NOT_FOUND. */
void tstore_lease_load(const char *gid, int64_t now, int64_t lease_end, tstore_cb *cb, void *arg);

/* lease_move.lua: extend or give back this process's hold: due is ""
 * (leave the due index), "GT:<ms>" or "XX:<ms>"; ours the hold as this
 * process knows it; until 0 gives it back. OK with epoch (0: not moved). */
void tstore_lease_move(const char *gid, const char *due, int64_t ours, int64_t until, tstore_cb *cb,
                       void *arg);

/* stop_apply.lua: store a stop another process's request recorded. OK
 * (status, reason) / CONFLICT (status) / NONE / NOT_OURS. */
void tstore_stop_apply(const char *gid, tstore_cb *cb, void *arg);

/* register_branch.lua: add n branches (op[i], url[i]) of id bid with data,
 * all in status, unless registered before (ident: the branch's identity op,
 * sig: up to 3 strings of its content, NULL-terminated). OK / SAME /
 * DUPLICATE / TOO_MANY (status: the count) / WRONG_TYPE / CONFLICT / NOT_FOUND. */
typedef struct tstore_registration {
    const char *gid;
    int type;
    const char *from; /* the statuses that allow it */
    const char *bid, *ident_op, *data;
    const char *const *sig;
    int n;
    const char *const *op, *const *url;
    const char *status;
    int max_branches;
} tstore_registration;
void tstore_register_branch(const tstore_registration *r, tstore_cb *cb, void *arg);

/* ---- the shards' indexes (raw replies, as the scripts document) ---------- */

/* lease_due.lua: hold up to batch due gids of shard until `until`. */
void tstore_lease_due(int shard, int64_t now, int64_t until, int batch, store_cb *cb, void *arg);
/* Remove gid from shard's due index. */
void tstore_drop_due(int shard, const char *gid, store_cb *cb, void *arg);
/* The gids of shard due up to until (ms), at most limit. */
void tstore_list_due(int shard, int64_t until, int limit, store_cb *cb, void *arg);
/* live.lua: this process is live on shard; wait: for the connection. */
void tstore_live(int shard, int wait, store_cb *cb, void *arg);
/* One step of the trimmer's walk over a shard's index stream (index_trim.lua). */
typedef struct tstore_trim {
    const char *cursor; /* the last entry id looked at: "" = from the oldest */
    int batch;          /* entries to look at at most */
    int64_t min_ttl_ms; /* the shortest TTL dtmd gives a hash */
    int64_t margin_ms;
    int64_t stale_ms; /* an entry older than its hash's creation by more is stale */
} tstore_trim;
void tstore_index_trim(int shard, const tstore_trim *t, store_cb *cb, void *arg);
/* Delete shard's expiry zset, which dtmd before the trimmer's walk kept. */
void tstore_index_drop_expiry(int shard, store_cb *cb, void *arg);
/* index_migrate.lua: move up to batch entries of an older dtmd's index zset
 * into shard's index stream. */
void tstore_index_migrate(int shard, int batch, store_cb *cb, void *arg);
/* all_page.lua: count index entries of shard after (from_ms, from_gid)
 * (from_gid NULL: from the newest). */
void tstore_all_page(int shard, int64_t from_ms, const char *from_gid, int count, store_cb *cb,
                     void *arg);
/* reset_cron.lua: make up to limit gids of shard due before threshold due now. */
void tstore_reset_cron(int shard, int64_t threshold, int64_t now, int64_t limit, store_cb *cb,
                       void *arg);

#endif
