/* engine.h - drives transactions: one "pass" per transaction at a time.
 *
 * A pass runs a transaction's mode logic once (docs/modes.md): it
 * calls the branches that are due, persists every result with one Lua
 * script before acting on it, changes the global status by compare-and-set,
 * and ends when nothing is in flight and nothing more can be done now. What
 * is left (ONGOING/failing branches) is picked up again by the retry scanner
 * (cron.c) at the due time the pass stored.
 *
 * Passes are started by the API (submit, abort, ...) and by the scanner. At
 * most one pass per gid runs in this process; a second request for the same
 * gid attaches to the running pass and hears its outcome. */
#ifndef DTMD_ENGINE_H
#define DTMD_ENGINE_H

#include "config.h"
#include "trans.h"

struct event_base;

/* How a pass ended, for wait_result answers (docs/protocol.md#wait_result). err is NULL,
 * or why the pass stopped early (store unavailable / another writer changed
 * the status). halted is BR_SUCCESS, or the outcome of the branch call that
 * made a TCC/XA/msg pass stop walking its branches, with halt_msg saying why. */
typedef struct pass_end {
    const char *err;
    int halted; /* branch_outcome */
    const char *halt_msg;
    int unknown; /* a write's outcome is unknown: t->status may not be what is stored */
} pass_end;

/* Called exactly once when the pass ends. t is the transaction as the pass
 * left it; t and e are valid during the call only. */
typedef void pass_done_cb(void *arg, const trans *t, const pass_end *e);

int engine_init(struct event_base *base, const dtmd_config *cfg);
void engine_shutdown(void); /* ends every pass; callbacks get err "shutting down" */

/* Run a pass over t (takes ownership). done may be NULL. If a pass for the
 * same gid is running, t is dropped and done is attached to that pass. */
void engine_drive(trans *t, pass_done_cb *done, void *arg);

/* A new transaction about to be stored (save_new): if its first pass would
 * end at once without calling anything - a saga or msg whose every action
 * has an empty URL, dtm's own benchmark shape - apply that outcome to t
 * (branches and status, times = now) and return 1. The caller then stores
 * it finished (no due time, the finished TTL), answers without a pass, and
 * reports it with engine_settled: one Redis round trip for the whole
 * transaction instead of two, and no pass to run. Else t is unchanged.
 * The mode decides (mode_settle in mode.h). */
int engine_settle_new(trans *t, int64_t now);
void engine_settled(const trans *t); /* log and metrics of a settled one */

/* A request just stored a final status (forceStop, a msg abort, a workflow
 * submit): end this process's pass over gid, if any, at once - its queued
 * and running branch calls are cancelled (their slots freed, nothing more is
 * sent) and its waiters hear status with why. No branch is called after its
 * transaction's final status is stored. */
void engine_cancel(const char *gid, int status, const char *why);

/* A request to another process asked to stop gid (stop_sub.c): if this
 * process holds it, cancel its calls and store the stop (lua/stop_apply.lua,
 * docs/requests.md). */
void engine_stop_requested(const char *gid);

/* Is a pass for gid running in this process? */
int engine_active(const char *gid);
int engine_active_count(void);

/* A hold's end on gid as stored in lease_until: until, or just after, so
 * that no two holds this process takes on one gid share a value. A hold is
 * given back or extended only while the stored value is still the caller's,
 * so two takers (say the scanner and a submit) ending on the same
 * millisecond must not look alike. */
int64_t engine_new_hold(const char *gid, int64_t until);

/* The end of this process's hold on a gid it drives (0 if it drives none). */
int64_t engine_held_until(const char *gid);

/* Limits.MaxActivePasses (engine_hold.c explains). engine_has_room: may one
 * more pass start; engine_room: how many may (INT_MAX without a limit). */
int engine_has_room(void);
int engine_room(void);

/* Leave t in the store instead of driving it: due now, hold given back
 * (one lease_move); frees t. The next scan with room drives it. */
void engine_park(trans *t);

/* The scanner left due work in the store for want of room. */
void engine_note_backlog(void);

/* cb runs when passes end and parked or left work may now fit (once per
 * engine_park / engine_note_backlog, when there is room for a batch). */
void engine_set_room_cb(void (*cb)(void));

long long engine_parked_total(void); /* for /api/metrics */

#endif
