/* branch_states.c - the branch states of a stored transaction (see
 * branch_states.h). */
#include "branch_states.h"

#include <stdlib.h>
#include <string.h>

/* Branches per field: a group's text stays within a hash piece or two. */
#define STATE_GROUP 8

/* One branch's state: "<p|s|f><ct>,<ut>,<ft>,<rt>", each time in ms after
 * base, empty = unset. */
static void branch_state_entry(const branch *b, int64_t base, sbuf *o) {
    sb_putc(o, branch_status_name(b->status)[0]);
    const int64_t times[4] = {b->create_ms, b->update_ms, b->finish_ms, b->rollback_ms};
    int last = 3;
    while (last > 0 && !times[last]) last--; /* unset times at the end are left out */
    for (int k = 0; k <= last; k++) {
        if (k) sb_putc(o, ',');
        if (times[k]) sb_put_i64(o, times[k] - base);
    }
}

/* The states of all branches as one text, "<base>" then " <entry>" per
 * branch (base: the create time): the first compact form, still written
 * for a transaction read in it (t->states_whole). */
static void put_states_whole(rargs *f, const trans *t) {
    sbuf s;
    sb_init(&s);
    sb_put_i64(&s, t->create_ms);
    for (int i = 0; i < t->nbranches; i++) {
        sb_putc(&s, ' ');
        branch_state_entry(&t->branches[i], t->create_ms, &s);
    }
    pieces_put(f, "bs", s.ptr, s.len);
    sb_free(&s);
}

/* Group g's field: "bs", "bs1", "bs2", ... */
static size_t group_name(char *k, int g) {
    memcpy(k, "bs", 3);
    return g ? 2 + fmt_i64(k + 2, g) : 2;
}

/* Group g of the branch states: its entries, space-separated, times in ms
 * after the create time. A write carries only the groups it changes, so a
 * transaction's writes stay linear in its branches. */
static void put_group(rargs *f, const trans *t, int g) {
    sbuf s;
    sb_init(&s);
    int end = (g + 1) * STATE_GROUP < t->nbranches ? (g + 1) * STATE_GROUP : t->nbranches;
    for (int i = g * STATE_GROUP; i < end; i++) {
        if (i > g * STATE_GROUP) sb_putc(&s, ' ');
        branch_state_entry(&t->branches[i], trans_stored_ms(t), &s);
    }
    char k[24];
    group_name(k, g);
    pieces_put(f, k, s.ptr, s.len);
    sb_free(&s);
}

void bstates_put(rargs *f, const trans *t, int i) {
    if (t->states_whole)
        put_states_whole(f, t);
    else
        put_group(f, t, i / STATE_GROUP);
}

void bstates_put_all(rargs *f, const trans *t) {
    for (int g = 0; g * STATE_GROUP < t->nbranches; g++) put_group(f, t, g);
}

/* The inverse of branch_state_entry at *p (moved past it). */
static int branch_entry_parse(branch *b, int64_t base, const char **pp) {
    const char *p = *pp;
    char *end;
    b->status = *p == 'p' ? BS_PREPARED : *p == 's' ? BS_SUCCEED : *p == 'f' ? BS_FAILED : -1;
    if (b->status < 0) return -1;
    p++;
    int64_t *times[4] = {&b->create_ms, &b->update_ms, &b->finish_ms, &b->rollback_ms};
    for (int k = 0; k < 4; k++) *times[k] = 0;
    for (int k = 0; k < 4; k++) {
        if (k) {
            if (*p == ' ' || !*p) break; /* the rest unset */
            if (*p != ',') return -1;
            p++;
        }
        if (*p == ',' || *p == ' ' || !*p) continue;
        long long x = strtoll(p, &end, 10);
        if (end == p || !trans_time_sane(x)) return -1;
        *times[k] = base + x;
        p = end;
    }
    *pp = p;
    return 0;
}

/* Branches from..to-1 from the entries in v, space-separated. */
static int branch_entries_parse(trans *t, int from, int to, int64_t base, const char *p) {
    for (int i = from; i < to; i++) {
        if (i > from && *p++ != ' ') return -1;
        if (branch_entry_parse(&t->branches[i], base, &p)) return -1;
    }
    return *p ? -1 : 0;
}

/* Every branch's state: in groups, or (t->states_whole) in one text led by
 * its base. */
int bstates_read(trans *t, const hview *h) {
    char *v;
    size_t n;
    if (hv_long(h, "bs", &v, &n) != 1) return -1;
    int rc;
    if ((*v >= '0' && *v <= '9') || *v == '-') {
        char *p;
        long long base = strtoll(v, &p, 10);
        t->states_whole = 1;
        rc = *p == ' ' && trans_time_sane(base)
                 ? branch_entries_parse(t, 0, t->nbranches, base, p + 1)
                 : -1;
        free(v);
        return rc;
    }
    for (int g = 0;; g++) {
        int to = (g + 1) * STATE_GROUP < t->nbranches ? (g + 1) * STATE_GROUP : t->nbranches;
        rc = branch_entries_parse(t, g * STATE_GROUP, to, trans_stored_ms(t), v);
        free(v);
        if (rc || to == t->nbranches) return rc;
        char k[24];
        group_name(k, g + 1);
        if (hv_long(h, k, &v, &n) != 1) return -1;
    }
}
