/* cron.h - the retry scanner.
 *
 * Every TransCronInterval (jittered, so several dtmd processes sharing a
 * store spread out) each shard's due index is asked, with lease_due.lua, for
 * transactions whose due time has come; the script pushes their due time
 * forward by a lease (RetryInterval) in the same step, so no other process
 * drives them meanwhile. Each leased transaction is loaded and handed to the
 * engine. Nothing here blocks: a shard with a full batch is rescanned at once.
 * Each tick also trims the shards' gid indexes (retention.h).
 * cron_shutdown (SIGTERM, after the API stopped, before the engine stops)
 * hands the leases of the transactions still being driven back: their due
 * time becomes now, so another process takes them over at its next scan; it
 * runs the event loop for that, at most one second. */
#ifndef DTMD_CRON_H
#define DTMD_CRON_H

#include "config.h"

struct event_base;

int cron_init(struct event_base *base, const dtmd_config *cfg);
void cron_shutdown(void);

#endif
