/* test_keys.c - tests for keys.c: the gid -> shard hash (pinned values: it
 * must never change, or stored transactions are orphaned) and the exact key
 * names with their "{shard}" Redis Cluster hash tag. */
#include "unit.h"

#include "keys.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reference FNV-1a 32 (offset basis 2166136261, prime 16777619), written
 * independently of keys.c. */
static uint32_t ref_fnv1a32(const char *s, size_t n) {
    uint32_t h = 0x811c9dc5u;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 0x01000193u;
    return h;
}

void test_keys_shard_pinned(void) {
    /* Published FNV-1a 32 test vectors: "" -> 0x811c9dc5, "a" -> 0xe40c292c,
     * "foobar" -> 0xbf9cf968. key_shard is the hash modulo nshards. */
    CHECK_INT(ref_fnv1a32("", 0), 0x811c9dc5u);
    CHECK_INT(ref_fnv1a32("a", 1), 0xe40c292cu);
    CHECK_INT(ref_fnv1a32("foobar", 6), 0xbf9cf968u);

    CHECK_INT(key_shard("", 0, 16), 0x811c9dc5u % 16); /* 5 */
    CHECK_INT(key_shard("", 0, 16), 5);
    CHECK_INT(key_shard("a", 1, 16), 12);
    CHECK_INT(key_shard("a", 1, 7), 5);
    CHECK_INT(key_shard("a", 1, 1024), 300);
    CHECK_INT(key_shard("foobar", 6, 16), 8);
    CHECK_INT(key_shard("foobar", 6, 1024), 360);
    CHECK_INT(key_shard("gid-1", 5, 16), 9); /* 0x5fd6b0c9 */
    CHECK_INT(key_shard("gid-1", 5, 1024), 201);
    /* a dtm-style gid (shortuuid) */
    CHECK_INT(key_shard("6yJ3TeLnfsaPFVvcq8G3mN", 22, 16), 15); /* 0x0b1e626f */
    CHECK_INT(key_shard("6yJ3TeLnfsaPFVvcq8G3mN", 22, 1024), 623);
    /* bytes >= 0x80 are hashed unsigned */
    CHECK_INT(key_shard("\xc3\xa9t\xc3\xa9", 5, 16), 7); /* 0xffb58817 */
    CHECK_INT(key_shard("\xc3\xa9t\xc3\xa9", 5, 1024), 23);
    /* the length is explicit: an embedded NUL is hashed, trailing bytes are not */
    CHECK_INT(key_shard("a\0b", 3, 16), 2); /* 0x10f3abd2 */
    CHECK_INT(key_shard("a\0b", 3, 1024), 978);
    CHECK_INT(key_shard("foobarXYZ", 6, 16), 8);
    CHECK_INT(key_shard("ab", 1, 16), key_shard("a", 1, 16));
    /* one shard, or a nonsensical count: always 0 */
    CHECK_INT(key_shard("foobar", 6, 1), 0);
    CHECK_INT(key_shard("foobar", 6, 0), 0);
    CHECK_INT(key_shard("foobar", 6, -3), 0);
}

void test_keys_shard_matches_reference(void) {
    char gid[64];
    int shards[] = {1, 2, 3, 16, 17, 100, 1024};
    for (int i = 0; i < 2000; i++) {
        int n = snprintf(gid, sizeof gid, "g-%d-%x", i, (unsigned)(i * 2654435761u));
        for (size_t k = 0; k < sizeof shards / sizeof shards[0]; k++) {
            int s = key_shard(gid, (size_t)n, shards[k]);
            if (s != (int)(ref_fnv1a32(gid, (size_t)n) % (uint32_t)shards[k])) {
                fprintf(stderr, "  key_shard(%s, %d) = %d, reference %u\n", gid, shards[k], s,
                        ref_fnv1a32(gid, (size_t)n) % (uint32_t)shards[k]);
                unit_failures++;
                return;
            }
        }
    }
}

void test_keys_shard_distribution(void) {
    enum { NSH = 16, N = 64000 };
    int count[NSH] = {0};
    char gid[64];
    for (int i = 0; i < N; i++) {
        /* sequential gids, as a client with a counter would produce */
        int n = snprintf(gid, sizeof gid, "gid-%d", i);
        int s = key_shard(gid, (size_t)n, NSH);
        CHECK(s >= 0 && s < NSH);
        if (s < 0 || s >= NSH) return;
        count[s]++;
    }
    /* Expect N/NSH = 4000 each; allow +-10% (a real imbalance is far worse). */
    for (int s = 0; s < NSH; s++) {
        if (count[s] < 3600 || count[s] > 4400) {
            fprintf(stderr, "  shard %d got %d of %d gids\n", s, count[s], N);
            unit_failures++;
        }
    }
    /* Range over odd shard counts, and stability (same input, same shard). */
    for (int nsh = 1; nsh <= 64; nsh++) {
        for (int i = 0; i < 200; i++) {
            int n = snprintf(gid, sizeof gid, "x%dy", i * 7919);
            int s = key_shard(gid, (size_t)n, nsh);
            CHECK(s >= 0 && s < nsh);
            CHECK_INT(key_shard(gid, (size_t)n, nsh), s);
        }
    }
}

void test_keys_names(void) {
    sbuf b;
    sb_init(&b);
    key_trans(&b, "dtmd", 3, "gid-1");
    CHECK_STR(b.ptr, "dtmd{3}:t:gid-1");
    CHECK_INT(b.len, strlen("dtmd{3}:t:gid-1"));
    /* each key function replaces the buffer's content */
    key_trans(&b, "dtmd", 0, "x");
    CHECK_STR(b.ptr, "dtmd{0}:t:x");
    key_trans(&b, "p:", 1023, "a:b{c}%s%d");
    CHECK_STR(b.ptr, "p:{1023}:t:a:b{c}%s%d"); /* the gid is not a format */
    key_trans(&b, "", 12, "g");
    CHECK_STR(b.ptr, "{12}:t:g");
    key_due(&b, "dtmd", 7);
    CHECK_STR(b.ptr, "dtmd{7}:due");
    key_due(&b, "", 0);
    CHECK_STR(b.ptr, "{0}:due");
    key_index(&b, "dtmd", 15);
    CHECK_STR(b.ptr, "dtmd{15}:ix");
    key_index(&b, "pfx-", 1);
    CHECK_STR(b.ptr, "pfx-{1}:ix");
    key_old_index(&b, "dtmd", 15);
    CHECK_STR(b.ptr, "dtmd{15}:idx");
    key_old_index(&b, "pfx-", 1);
    CHECK_STR(b.ptr, "pfx-{1}:idx");
    key_expiry(&b, "dtmd", 15);
    CHECK_STR(b.ptr, "dtmd{15}:exp");
    key_expiry(&b, "", 1023);
    CHECK_STR(b.ptr, "{1023}:exp");
    key_live(&b, "dtmd", 15);
    CHECK_STR(b.ptr, "dtmd{15}:live");
    key_kv(&b, "dtmd", "topics");
    CHECK_STR(b.ptr, "dtmd{kv}:kv:topics");
    key_kv(&b, "", "%n");
    CHECK_STR(b.ptr, "{kv}:kv:%n");
    CHECK_INT(b.len, strlen("{kv}:kv:%n"));

    /* A long gid (beyond sb_printf's stack buffer) is kept whole. */
    char gid[600];
    memset(gid, 'g', sizeof gid - 1);
    gid[sizeof gid - 1] = '\0';
    key_trans(&b, "dtmd", 9, gid);
    CHECK_INT(b.len, strlen("dtmd{9}:t:") + sizeof gid - 1);
    CHECK(strncmp(b.ptr, "dtmd{9}:t:ggg", 13) == 0);
    CHECK_INT(b.ptr[b.len], '\0');

    /* The transaction key and its shard's indexes share one hash tag, so a
     * Lua script touching all four stays in one Redis Cluster slot. */
    const char *g = "6yJ3TeLnfsaPFVvcq8G3mN";
    int shard = key_shard(g, strlen(g), 16);
    char want[128];
    key_trans(&b, "dtmd", shard, g);
    snprintf(want, sizeof want, "dtmd{%d}:t:%s", shard, g);
    CHECK_STR(b.ptr, want);
    sbuf d, x, e;
    sb_init(&d);
    sb_init(&x);
    sb_init(&e);
    key_due(&d, "dtmd", shard);
    key_index(&x, "dtmd", shard);
    key_expiry(&e, "dtmd", shard);
    const char *t1 = strchr(b.ptr, '{'), *t2 = strchr(d.ptr, '{'), *t3 = strchr(x.ptr, '{');
    const char *t4 = strchr(e.ptr, '{');
    CHECK(t1 && t2 && t3 && t4);
    if (t1 && t2 && t3 && t4) {
        size_t n = (size_t)(strchr(t1, '}') - t1) + 1;
        CHECK(strncmp(t1, t2, n) == 0 && strncmp(t1, t3, n) == 0 && strncmp(t1, t4, n) == 0);
    }
    sb_free(&d);
    sb_free(&x);
    sb_free(&e);
    sb_free(&b);
}
