/* cluster_slot.c - Redis Cluster key slots, redirections, CLUSTER SLOTS
 * (see cluster_slot.h).
 *
 * Written from the Redis Cluster specification ("Keys distribution model",
 * "Hash tags", "Redirection and resharding"); the unit tests check the
 * specification's examples. */
#include "cluster_slot.h"

#include <stdlib.h>
#include <string.h>

/* Bit by bit: keys are short and a table would be 512 bytes of magic
 * numbers to review. */
uint16_t cluster_crc16(const char *buf, size_t len) {
    uint16_t crc = 0;
    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)((unsigned char)buf[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
    }
    return crc;
}

int cluster_key_slot(const char *key, size_t len) {
    const char *open = memchr(key, '{', len);
    if (open) {
        size_t rest = len - (size_t)(open - key) - 1;
        const char *close = memchr(open + 1, '}', rest);
        /* "{}" is no tag: the whole key is hashed. */
        if (close && close > open + 1) {
            len = (size_t)(close - open - 1);
            key = open + 1;
        }
    }
    return cluster_crc16(key, len) & (CLUSTER_SLOTS - 1);
}

/* Parse a whole decimal number in [min, max] from s..end. 0 ok, -1 not one. */
static int parse_num(const char *s, const char *end, long min, long max, long *out) {
    if (s == end || end - s > 9) return -1;
    long v = 0;
    for (const char *p = s; p < end; p++) {
        if (*p < '0' || *p > '9') return -1;
        v = v * 10 + (*p - '0');
    }
    if (v < min || v > max) return -1;
    *out = v;
    return 0;
}

cluster_redirect cluster_parse_redirect(const char *err, int *slot, char *host, size_t hostsz,
                                        int *port) {
    cluster_redirect kind;
    const char *p;
    if (!err) return CLUSTER_NO_REDIRECT;
    if (strncmp(err, "MOVED ", 6) == 0) {
        kind = CLUSTER_MOVED;
        p = err + 6;
    } else if (strncmp(err, "ASK ", 4) == 0) {
        kind = CLUSTER_ASK;
        p = err + 4;
    } else {
        return CLUSTER_NO_REDIRECT;
    }
    const char *sp = strchr(p, ' ');
    long s, pt;
    if (!sp || parse_num(p, sp, 0, CLUSTER_SLOTS - 1, &s) != 0) return CLUSTER_NO_REDIRECT;
    const char *addr = sp + 1, *end = addr + strlen(addr);
    const char *colon = strrchr(addr, ':'); /* an IPv6 host keeps its own colons */
    if (!colon || parse_num(colon + 1, end, 1, 65535, &pt) != 0) return CLUSTER_NO_REDIRECT;
    size_t hl = (size_t)(colon - addr);
    if (hl >= hostsz) return CLUSTER_NO_REDIRECT;
    memcpy(host, addr, hl);
    host[hl] = '\0';
    *slot = (int)s;
    *port = (int)pt;
    return kind;
}

/* One node of a range: [host, port, id, ...]. 0 ok, -1 malformed. */
static int parse_node(const redisReply *n, const char **host, int *port) {
    if (n->type != REDIS_REPLY_ARRAY || n->elements < 2) return -1;
    const redisReply *h = n->element[0], *p = n->element[1];
    if (h->type != REDIS_REPLY_STRING || p->type != REDIS_REPLY_INTEGER) return -1;
    if (p->integer < 1 || p->integer > 65535) return -1;
    *host = (h->len == 0 || strcmp(h->str, "?") == 0) ? NULL : h->str;
    *port = (int)p->integer;
    return 0;
}

/* One range: [first, last, master, replica...]. 0 ok, -1 malformed. */
static int parse_range(const redisReply *r, int *first, int *last, const char **host, int *port) {
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 3) return -1;
    const redisReply *a = r->element[0], *b = r->element[1];
    if (a->type != REDIS_REPLY_INTEGER || b->type != REDIS_REPLY_INTEGER) return -1;
    if (a->integer < 0 || a->integer > b->integer || b->integer >= CLUSTER_SLOTS) return -1;
    *first = (int)a->integer;
    *last = (int)b->integer;
    return parse_node(r->element[2], host, port);
}

/* Checked whole before the first call, so a caller never applies half an
 * answer. */
int cluster_slots_parse(const redisReply *reply, cluster_range_fn *fn, void *arg) {
    if (!reply || reply->type != REDIS_REPLY_ARRAY) return -1;
    int first, last, port;
    const char *host;
    for (size_t i = 0; i < reply->elements; i++)
        if (parse_range(reply->element[i], &first, &last, &host, &port) != 0) return -1;
    for (size_t i = 0; i < reply->elements; i++) {
        parse_range(reply->element[i], &first, &last, &host, &port);
        fn(arg, first, last, host, port);
    }
    return (int)reply->elements;
}
