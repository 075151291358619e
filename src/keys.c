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

/* "<prefix>{<shard>}<what>": written piece by piece, not with sb_printf,
 * since every transaction's store call names two or three of these keys
 * and vsnprintf is costly on that path. */
static void key_shard_part(sbuf *out, const char *prefix, int shard, const char *what) {
    sb_reset(out);
    sb_puts(out, prefix);
    sb_putc(out, '{');
    sb_put_i64(out, shard);
    sb_putc(out, '}');
    sb_puts(out, what);
}

void key_trans(sbuf *out, const char *prefix, int shard, const char *gid) {
    key_shard_part(out, prefix, shard, ":t:");
    sb_puts(out, gid);
}

void key_due(sbuf *out, const char *prefix, int shard) {
    key_shard_part(out, prefix, shard, ":due");
}

void key_index(sbuf *out, const char *prefix, int shard) {
    key_shard_part(out, prefix, shard, ":ix");
}

void key_old_index(sbuf *out, const char *prefix, int shard) {
    key_shard_part(out, prefix, shard, ":idx");
}

void key_expiry(sbuf *out, const char *prefix, int shard) {
    key_shard_part(out, prefix, shard, ":exp");
}

void key_live(sbuf *out, const char *prefix, int shard) {
    key_shard_part(out, prefix, shard, ":live");
}

void key_kv(sbuf *out, const char *prefix, const char *cat) {
    sb_reset(out);
    sb_printf(out, "%s{kv}:kv:", prefix);
    sb_puts(out, cat);
}
