/* cluster_slot.h - Redis Cluster arithmetic and reply parsing, no I/O.
 *
 * The store routes every command to the master that owns its first key's
 * hash slot. What a slot is, how a MOVED/ASK redirection reads and what a
 * CLUSTER SLOTS answer holds are fixed by the Redis Cluster specification;
 * they live here, apart from the connections, so they can be unit-tested
 * against the specification's own examples. */
#ifndef DTMD_CLUSTER_SLOT_H
#define DTMD_CLUSTER_SLOT_H

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>

#define CLUSTER_SLOTS 16384

/* CRC16-CCITT (XMODEM: polynomial 0x1021, initial value 0, not reflected),
 * the checksum Redis Cluster hashes keys with. "123456789" -> 0x31C3. */
uint16_t cluster_crc16(const char *buf, size_t len);

/* The hash slot of a key: CRC16 of the key, or of its hash tag (the bytes
 * between the first '{' and the first '}' after it, when not empty),
 * modulo 16384. */
int cluster_key_slot(const char *key, size_t len);

typedef enum { CLUSTER_NO_REDIRECT = 0, CLUSTER_MOVED, CLUSTER_ASK } cluster_redirect;

/* Parse an error reply "MOVED <slot> <host>:<port>" or "ASK <slot>
 * <host>:<port>". On a redirection, *slot and *port are set and host (size
 * hostsz) receives the host, "" when Redis left it out (":6380" means the
 * node that answered). Anything else, or a malformed one, is
 * CLUSTER_NO_REDIRECT. */
cluster_redirect cluster_parse_redirect(const char *err, int *slot, char *host, size_t hostsz,
                                        int *port);

/* Called once per slot range of a CLUSTER SLOTS answer with the range's
 * master; host is NULL when Redis reported it as unknown ("" or "?"): it is
 * then the node that was asked. */
typedef void cluster_range_fn(void *arg, int first, int last, const char *host, int port);

/* Walk a CLUSTER SLOTS reply. Returns the number of ranges, or -1 (and no
 * call at all) if the reply is not a well-formed CLUSTER SLOTS answer. */
int cluster_slots_parse(const redisReply *reply, cluster_range_fn *fn, void *arg);

#endif
