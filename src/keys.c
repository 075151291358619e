/* keys.c - key names and gid -> shard mapping (see keys.h). */
#include "keys.h"

#include <string.h>

int key_shard(const char *gid, size_t len, int nshards) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)gid[i];
        h *= 16777619u;
    }
    return nshards > 0 ? (int)(h % (uint32_t)nshards) : 0;
}

void key_trans(sbuf *out, const char *prefix, int shard, const char *gid) {
    sb_reset(out);
    sb_printf(out, "%s{%d}:t:", prefix, shard);
    sb_puts(out, gid);
}

void key_due(sbuf *out, const char *prefix, int shard) {
    sb_reset(out);
    sb_printf(out, "%s{%d}:due", prefix, shard);
}

void key_index(sbuf *out, const char *prefix, int shard) {
    sb_reset(out);
    sb_printf(out, "%s{%d}:idx", prefix, shard);
}

void key_kv(sbuf *out, const char *prefix, const char *cat) {
    sb_reset(out);
    sb_printf(out, "%s{kv}:kv:", prefix);
    sb_puts(out, cat);
}
