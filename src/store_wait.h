/* store_wait.h - Store.WaitReplicas: one pipelined WAIT per node and loop
 * turn confirms the turn's writes (store_wait.c). Private to the store. */
#ifndef DTMD_STORE_WAIT_H
#define DTMD_STORE_WAIT_H

#include "config.h"
#include "store_int.h"

struct event_base;

/* settle(r, NULL): r's WAIT confirmed it, deliver r->held; settle(r, err):
 * fail r with err. Either way r is the store's to finish. */
void store_wait_init(struct event_base *base, const dtmd_config *cfg,
                     void (*settle)(store_req *r, const char *err));
/* Frees the WAITs not sent yet (their requests keep no ticket). */
void store_wait_shutdown(void);

/* r was just sent to n: it joins n's open WAIT, sent at the end of this
 * loop turn on the same connection, behind r. */
void store_wait_join(store_req *r, store_node *n);

#endif
