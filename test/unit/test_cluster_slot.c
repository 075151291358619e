/* test_cluster_slot.c - tests for cluster_slot.c: the key -> hash slot
 * function must agree with Redis exactly, or commands land on the wrong
 * master and every one of them costs a MOVED; the redirection and
 * CLUSTER SLOTS parsers must take what Redis sends and refuse the rest.
 * Replies are built by hiredis's own RESP reader from protocol text. */
#include "unit.h"

#include "cluster_slot.h"

#include <hiredis/hiredis.h>
#include <stdlib.h>
#include <string.h>

static int slot_of(const char *key) {
    return cluster_key_slot(key, strlen(key));
}

void test_cluster_crc16(void) {
    /* The specification's check value, and the empty input. */
    CHECK_INT(cluster_crc16("123456789", 9), 0x31C3);
    CHECK_INT(cluster_crc16("", 0), 0);
    CHECK_INT(cluster_crc16("A", 1), 0x58E5);
    /* bytes >= 0x80 are not sign-extended */
    CHECK_INT(cluster_crc16("\xff", 1), 0x1EF0);
}

void test_cluster_key_slot(void) {
    /* Values CLUSTER KEYSLOT gives. */
    CHECK_INT(slot_of("123456789"), 0x31C3 % 16384); /* 12739 */
    CHECK_INT(slot_of("foo"), 12182);
    CHECK_INT(slot_of("bar"), 5061);
    CHECK_INT(slot_of("user1000"), 3443);
    CHECK_INT(slot_of(""), 0);
    /* The specification's hash tag examples. */
    CHECK_INT(slot_of("{user1000}.following"), slot_of("user1000"));
    CHECK_INT(slot_of("{user1000}.followers"), slot_of("user1000"));
    /* "{}" is an empty tag: the whole key is hashed */
    CHECK_INT(slot_of("foo{}{bar}"), cluster_crc16("foo{}{bar}", 10) % 16384);
    CHECK_INT(slot_of("foo{{bar}}zap"), slot_of("{bar"));
    CHECK_INT(slot_of("foo{bar}{zap}"), slot_of("bar"));
    CHECK_INT(slot_of("{foo"), cluster_crc16("{foo", 4) % 16384); /* no '}' */
    CHECK_INT(slot_of("}foo{"), cluster_crc16("}foo{", 5) % 16384);
    /* dtmd's keys: the shard's tag decides, whatever the prefix and gid. */
    CHECK_INT(slot_of("dtmd{3}:t:gid-1"), slot_of("3"));
    CHECK_INT(slot_of("dtmd{3}:due"), slot_of("3"));
    CHECK_INT(slot_of("other{3}:idx"), slot_of("3"));
    CHECK_INT(slot_of("dtmd{kv}:kv:topics"), slot_of("kv"));
    CHECK_INT(slot_of("3"), 1584);
    CHECK_INT(slot_of("kv"), 2433);
    /* the length is honoured: a NUL or anything after len is not hashed */
    CHECK_INT(cluster_key_slot("{ab}cd", 3), cluster_crc16("{ab", 3) % 16384);
    CHECK_INT(cluster_key_slot("a\0b", 3), cluster_crc16("a\0b", 3) % 16384);
}

/* Answers of Redis 7's own CLUSTER KEYSLOT (redis-cli -p <node> CLUSTER
 * KEYSLOT <key>), including dtmd's key names (keys.h) and odd tags. */
void test_cluster_key_slot_matches_redis(void) {
    static const struct {
        const char *key;
        int slot;
    } redis_says[] = {
        {"", 0},
        {"a", 15495},
        {"foo{}{bar}", 8363},
        {"foo{{bar}}zap", 4015},
        {"foo{bar}{zap}", 5061},
        {"{}", 15257},
        {"{", 4092},
        {"}", 12090},
        {"}{a}", 15495},
        {"a{}b{c}", 7353},
        {"dtmd{0}:due", 13907},
        {"dtmd{15}:due", 4178},
        {"dtmd{7}:idx", 1716},
        {"dtmd{3}:t:saga-gid-1", 1584},
        {"dtmd{kv}:kv:topics", 2433},
        {"c1a2b3c4{12}:t:x y&z", 8373},
        {"{1023}:due", 14911},
        {"\xc3\xa9\xc3\xa8", 15504},
    };
    for (size_t i = 0; i < sizeof redis_says / sizeof redis_says[0]; i++)
        CHECK_INT(slot_of(redis_says[i].key), redis_says[i].slot);
    char longkey[301];
    memset(longkey, 'x', 300);
    longkey[300] = '\0';
    CHECK_INT(slot_of(longkey), 11216);
}

void test_cluster_parse_redirect(void) {
    char host[64];
    int slot = -1, port = -1;
    CHECK_INT(cluster_parse_redirect("MOVED 3999 127.0.0.1:6381", &slot, host, sizeof host, &port),
              CLUSTER_MOVED);
    CHECK_INT(slot, 3999);
    CHECK_STR(host, "127.0.0.1");
    CHECK_INT(port, 6381);
    CHECK_INT(
        cluster_parse_redirect("ASK 16383 redis-2.local:7000", &slot, host, sizeof host, &port),
        CLUSTER_ASK);
    CHECK_INT(slot, 16383);
    CHECK_STR(host, "redis-2.local");
    CHECK_INT(port, 7000);
    /* IPv6: the last colon separates the port */
    CHECK_INT(cluster_parse_redirect("MOVED 0 ::1:7001", &slot, host, sizeof host, &port),
              CLUSTER_MOVED);
    CHECK_INT(slot, 0);
    CHECK_STR(host, "::1");
    CHECK_INT(port, 7001);
    /* unknown endpoint: host left out, meaning the node that answered */
    CHECK_INT(cluster_parse_redirect("MOVED 12 :6380", &slot, host, sizeof host, &port),
              CLUSTER_MOVED);
    CHECK_STR(host, "");
    CHECK_INT(port, 6380);

    const char *bad[] = {
        NULL,
        "",
        "ERR unknown command",
        "NOSCRIPT No matching script",
        "TRYAGAIN Multiple keys request during rehashing of slot",
        "CLUSTERDOWN The cluster is down",
        "MOVED",
        "MOVED 3999",
        "MOVED 3999 127.0.0.1",
        "MOVED 16384 127.0.0.1:6381",
        "MOVED -1 127.0.0.1:6381",
        "MOVED x 127.0.0.1:6381",
        "MOVED 3999 127.0.0.1:0",
        "MOVED 3999 127.0.0.1:65536",
        "MOVED 3999 127.0.0.1:",
        "MOVED 3999 127.0.0.1:63a",
        "moved 3999 127.0.0.1:6381",
        "ASKING",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int r = cluster_parse_redirect(bad[i], &slot, host, sizeof host, &port);
        if (r != CLUSTER_NO_REDIRECT) fprintf(stderr, "  accepted: %s\n", bad[i]);
        CHECK_INT(r, CLUSTER_NO_REDIRECT);
    }
    /* a host longer than the buffer is refused, not truncated */
    char small[4];
    CHECK_INT(cluster_parse_redirect("MOVED 1 abcdef:1", &slot, small, sizeof small, &port),
              CLUSTER_NO_REDIRECT);
    CHECK_INT(cluster_parse_redirect("MOVED 1 abc:1", &slot, small, sizeof small, &port),
              CLUSTER_MOVED);
}

/* A reply parsed by hiredis from RESP text; NULL if the text is not one. */
static redisReply *resp(const char *text) {
    redisReader *rd = redisReaderCreate();
    void *reply = NULL;
    if (redisReaderFeed(rd, text, strlen(text)) != REDIS_OK ||
        redisReaderGetReply(rd, &reply) != REDIS_OK)
        reply = NULL;
    redisReaderFree(rd);
    return reply;
}

typedef struct seen {
    int n;
    int first[8], last[8], port[8];
    char host[8][32];
} seen;

static void record(void *arg, int first, int last, const char *host, int port) {
    seen *s = arg;
    if (s->n >= 8) return;
    s->first[s->n] = first;
    s->last[s->n] = last;
    s->port[s->n] = port;
    snprintf(s->host[s->n], sizeof s->host[0], "%s", host ? host : "(asked)");
    s->n++;
}

static int parse_text(const char *text, seen *s) {
    memset(s, 0, sizeof *s);
    redisReply *r = resp(text);
    CHECK(r != NULL);
    int n = cluster_slots_parse(r, record, s);
    freeReplyObject(r);
    return n;
}

void test_cluster_slots_parse(void) {
    seen s;
    /* Redis 7: three masters, one with a replica; node entries carry an id
     * and a (here empty) metadata array after host and port. */
    const char *three = "*3\r\n"
                        "*3\r\n:0\r\n:5460\r\n*4\r\n$9\r\n127.0.0.1\r\n:7000\r\n$2\r\nid\r\n*0\r\n"
                        "*4\r\n:5461\r\n:10922\r\n"
                        "*3\r\n$9\r\n127.0.0.1\r\n:7001\r\n$2\r\nid\r\n"
                        "*3\r\n$9\r\n127.0.0.1\r\n:7004\r\n$2\r\nid\r\n"
                        "*3\r\n:10923\r\n:16383\r\n*2\r\n$0\r\n\r\n:7002\r\n";
    CHECK_INT(parse_text(three, &s), 3);
    CHECK_INT(s.n, 3);
    CHECK_INT(s.first[0], 0);
    CHECK_INT(s.last[0], 5460);
    CHECK_STR(s.host[0], "127.0.0.1");
    CHECK_INT(s.port[0], 7000);
    CHECK_INT(s.first[1], 5461);
    CHECK_INT(s.last[1], 10922);
    CHECK_INT(s.port[1], 7001); /* the master, not the replica */
    CHECK_STR(s.host[2], "(asked)");
    CHECK_INT(s.port[2], 7002);
    /* "?" is an unknown endpoint too */
    CHECK_INT(parse_text("*1\r\n*3\r\n:0\r\n:16383\r\n*2\r\n$1\r\n?\r\n:7000\r\n", &s), 1);
    CHECK_STR(s.host[0], "(asked)");
    /* a cluster with no slot assigned yet */
    CHECK_INT(parse_text("*0\r\n", &s), 0);

    /* Malformed answers: refused whole, nothing reported. */
    const char *bad[] = {
        "-ERR This instance has cluster support disabled\r\n",
        "+OK\r\n",
        "*1\r\n:1\r\n",
        "*1\r\n*2\r\n:0\r\n:1\r\n",                                /* no master */
        "*1\r\n*3\r\n:5\r\n:4\r\n*2\r\n$1\r\nh\r\n:1\r\n",         /* first > last */
        "*1\r\n*3\r\n:0\r\n:16384\r\n*2\r\n$1\r\nh\r\n:1\r\n",     /* past the last slot */
        "*1\r\n*3\r\n:-1\r\n:3\r\n*2\r\n$1\r\nh\r\n:1\r\n",        /* negative */
        "*1\r\n*3\r\n:0\r\n:3\r\n*2\r\n$1\r\nh\r\n:0\r\n",         /* port 0 */
        "*1\r\n*3\r\n:0\r\n:3\r\n*2\r\n$1\r\nh\r\n$4\r\n7000\r\n", /* port as text */
        "*1\r\n*3\r\n:0\r\n:3\r\n*1\r\n$1\r\nh\r\n",               /* no port */
        "*1\r\n*3\r\n$1\r\n0\r\n:3\r\n*2\r\n$1\r\nh\r\n:1\r\n",    /* slot as text */
        "*2\r\n*3\r\n:0\r\n:3\r\n*2\r\n$1\r\nh\r\n:1\r\n:7\r\n",   /* good, then bad */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int n = parse_text(bad[i], &s);
        if (n != -1) fprintf(stderr, "  accepted bad answer #%zu\n", i);
        CHECK_INT(n, -1);
        CHECK_INT(s.n, 0);
    }
    CHECK_INT(cluster_slots_parse(NULL, record, &s), -1);
}
