/* branch_states.h - the branch states of a stored transaction; part of the
 * store layer (trans_hash.c is its only user).
 *
 * A branch's state is "<p|s|f><ct>,<ut>,<ft>,<rt>": its status letter and
 * times in ms after the time the transaction was stored (trans_stored_ms), empty = unset, unset
 * ones at the end left out with their commas ("p0,0", "s0,2,2"). The
 * states are stored in groups of 8 branches, fields "bs", "bs1", "bs2", ...
 * (each in hash pieces), entries space-separated: a branch result rewrites
 * only its group, so the writes of a transaction with thousands of branches
 * stay linear in them. lua/register_branch.lua appends to the last group.
 * The compact layout's first form kept them all in "bs" led by their base
 * ("<base> <entry> <entry> ..."): a transaction read in it (t->states_whole)
 * is written back in it. */
#ifndef DTMD_BRANCH_STATES_H
#define DTMD_BRANCH_STATES_H

#include "hash_pieces.h"
#include "rargs.h"
#include "trans.h"

/* Append the field holding branch i's state (its group) from memory. */
void bstates_put(rargs *f, const trans *t, int i);
/* Append every group (a new hash). */
void bstates_put_all(rargs *f, const trans *t);
/* Read every branch's state into t->branches (t->nbranches of them, and
 * t->create_ms, already read): 0, or -1 if a group is missing or malformed. */
int bstates_read(trans *t, const hview *h);

#endif
