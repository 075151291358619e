"""The shards' gid indexes stay as small as the store, without anyone listing.

Every stored transaction adds an entry (field g = its gid) to its shard's
index stream `<prefix>{<shard>}:ix` (for /all), its id Redis' time of the
store (/all lists newest first). The transaction hash expires
(Store.DataExpire, Store.FinishedDataExpire once finished); the retry scanner
walks each stream from its oldest id, as far as entries old enough to have
expired, and deletes the entries whose hash is gone, or stale ones (the gid
stored again since) (src/retention.c, lua/index_trim.lua). Nothing else is
kept per gid: the `<prefix>{<shard>}:exp` zset of the previous dtmd (gid ->
expiry time) is no longer written, and deleted at start. The index zset
`<prefix>{<shard>}:idx` of an older dtmd (gid -> creation time, or score 0
from an even older one) is moved into the stream oldest first, gids whose
hash is gone dropped, score-0 gids given their creation time
(src/retention.c, lua/index_migrate.lua).

These tests never call /all until they have checked the indexes: the indexes
are read straight from Redis.
"""

import json
import time
import urllib.parse

import pytest

from dtmtest import TIMEOUT_SCALE, S, b64, new_gid, parse_time, saga, wait_until

PREFIX = "dtmd"
SHARDS = 4
# TTLs (s) long enough for the set-up to finish before anything expires,
# also under valgrind (TIMEOUT_SCALE)
SHORT = max(2, round(2 * TIMEOUT_SCALE))


def shard_of(gid, n=SHARDS):
    """FNV-1a 32 of the gid modulo the shard count (src/keys.c)."""
    h = 2166136261
    for b in gid.encode():
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h % n


def ix_key(shard):
    """The shard's index stream."""
    return "%s{%d}:ix" % (PREFIX, shard)


def idx_key(shard):
    """The index zset of an older dtmd: moved into the stream at start."""
    return "%s{%d}:idx" % (PREFIX, shard)


def exp_key(shard):
    """The previous dtmd's expiry zset: never written now."""
    return "%s{%d}:exp" % (PREFIX, shard)


def hash_key(gid):
    return "%s{%d}:t:%s" % (PREFIX, shard_of(gid), gid)


def zcard(r, key_of):
    return sum(r("ZCARD", key_of(s)) for s in range(SHARDS))


def ix_count(r, shards=SHARDS):
    """Entries in the index streams, and in the older dtmd's zsets (which
    must be gone: migrated)."""
    return sum(r("XLEN", ix_key(s)) + r("ZCARD", idx_key(s)) for s in range(shards))


def entries(r, shard):
    """The shard's index stream: [(ms, gid)], oldest first."""
    out = []
    for eid, fields in r("XRANGE", ix_key(shard), "-", "+"):
        f = dict(zip(fields[::2], fields[1::2]))
        out.append((int(eid.split(b"-")[0]), f[b"g"].decode()))
    return out


def entry_times(r, gid):
    """The ms of each of gid's index entries, oldest first."""
    return [t for t, g in entries(r, shard_of(gid)) if g == gid]


def ix_ms(r, gid):
    """The ms of gid's newest index entry, None if it has none."""
    times = entry_times(r, gid)
    return times[-1] if times else None


def expires_at(r, gid):
    """When Redis expires the gid's hash (ms)."""
    when = r("PEXPIRETIME", hash_key(gid))
    assert when > 0, (gid, when)
    return when


def no_exp(r):
    """No shard has an expiry zset: a transaction costs one index entry."""
    return all(r("EXISTS", exp_key(s)) == 0 for s in range(SHARDS))


def all_gids(d, limit):
    """Every gid /all lists, page by page of limit, in its order."""
    gids, pos = [], ""
    while True:
        st, body = d.api("GET", "/all?limit=%d&position=%s" % (limit, urllib.parse.quote(pos)))
        assert st == 200, body
        gids += [t["gid"] for t in body["transactions"]]
        pos = body["next_position"]
        if not pos:
            return gids


def ok(resp):
    assert resp == (200, {"dtm_result": "SUCCESS"}), resp


def finished_saga(dtmd, gid):
    """A saga whose only step has no URL: stored finished by its submit."""
    ok(dtmd.submit(saga(gid, [("", "")], wait_result=True)))


def prepared_tcc(dtmd, gid):
    """An unfinished transaction that stays so (it would time out in 1000 s)."""
    ok(dtmd.api("POST", "/prepare", body={"gid": gid, "trans_type": "tcc",
                                           "timeout_to_fail": 1000}))


def test_index_shrinks_to_zero_without_listing(start_dtmd, redis_server):
    d = start_dtmd(STORE_SHARDS=SHARDS, STORE_FINISHED_DATA_EXPIRE=SHORT,
                   STORE_DATA_EXPIRE=2 * SHORT)
    done = [new_gid("ret-done") for _ in range(40)]
    open_ = [new_gid("ret-open") for _ in range(10)]
    for g in done:
        finished_saga(d, g)
    for g in open_:
        prepared_tcc(d, g)
    with redis_server.client() as r:
        assert ix_count(r) == 50 and no_exp(r)
        # the hashes expire (Redis), then their gids leave the index (dtmd)
        wait_until(lambda: not redis_server.keys("%s*:t:*" % PREFIX), timeout=10,
                   msg="every transaction hash expired")
        wait_until(lambda: ix_count(r) == 0 and zcard(r, exp_key) == 0, timeout=5,
                   msg="indexes trimmed: ix %d exp %d" % (ix_count(r), zcard(r, exp_key)))
        # an emptied stream is deleted too
        assert redis_server.keys("%s*:ix" % PREFIX) == []
        assert redis_server.keys("%s*:idx" % PREFIX) == []
    assert d.api("GET", "/all") == (200, {"transactions": [], "next_position": ""})


def test_entries_live_as_long_as_their_hash(start_dtmd, redis_server):
    """An unfinished transaction keeps its gid while its hash lives (DataExpire);
    one that finishes gets the FinishedDataExpire TTL, and leaves after it."""
    d = start_dtmd(STORE_SHARDS=SHARDS, STORE_FINISHED_DATA_EXPIRE=SHORT,
                   STORE_DATA_EXPIRE=3 * SHORT)
    stays, finishes = new_gid("ret-stays"), new_gid("ret-finishes")
    prepared_tcc(d, stays)
    prepared_tcc(d, finishes)
    with redis_server.client() as r:
        first = expires_at(r, finishes)
        expires_at(r, stays)
        time.sleep(1.5)
        ok(d.api("POST", "/submit", body={"gid": finishes, "trans_type": "tcc",
                                          "wait_result": True}))
        d.wait_status(finishes, S)
        moved = expires_at(r, finishes)
        assert first - moved > 1000, (first, moved)  # 3 SHORT from creation -> SHORT from now

        left_at = watch_until_gone(r, [stays, finishes], 3 * SHORT + 5 * TIMEOUT_SCALE)
        assert left_at[finishes] < left_at[stays], left_at
        assert ix_count(r) == 0 and no_exp(r)


def watch_until_gone(r, gids, timeout):
    """Poll until every gid has left the index; a gid never leaves while its
    hash exists (the index is read first: a hash gone later is no
    contradiction). Returns {gid: monotonic time it was seen gone}."""
    left_at = {}
    deadline = time.monotonic() + timeout
    while len(left_at) < len(gids) and time.monotonic() < deadline:
        for g in gids:
            if g in left_at:
                continue
            listed = ix_ms(r, g) is not None
            exists = r("EXISTS", hash_key(g)) == 1
            assert listed or not exists, "%s left the index while its hash exists" % g
            if not listed:
                left_at[g] = time.monotonic()
        time.sleep(0.05)
    assert set(left_at) == set(gids), (sorted(left_at), gids)
    return left_at


def test_finished_gid_leaves_once_its_hash_expired(start_dtmd, redis_server):
    """A finished transaction's hash expires FinishedDataExpire after it
    finished; the trimmer then finds it gone and drops its index entry, with
    no other entry kept for it. DataExpire is long: the walk goes as far as
    the shorter of the two TTLs."""
    d = start_dtmd(STORE_SHARDS=SHARDS, STORE_FINISHED_DATA_EXPIRE=SHORT,
                   STORE_DATA_EXPIRE=600)
    gid = new_gid("ret-fin")
    finished_saga(d, gid)
    with redis_server.client() as r:
        assert ix_ms(r, gid) is not None and no_exp(r)
        assert expires_at(r, gid) - int(r("TIME")[0]) * 1000 <= SHORT * 1000 + 1000
        watch_until_gone(r, [gid], SHORT + 5 * TIMEOUT_SCALE)
        assert r("EXISTS", hash_key(gid)) == 0
        assert ix_count(r) == 0 and no_exp(r)


def test_unfinished_old_gid_stays_until_it_finished_and_expired(start_dtmd, redis_server):
    """A transaction still unfinished long after its creation (older than
    FinishedDataExpire) stays in the index however often the walk passes it,
    while newer ones behind it that expired are dropped; once it finishes and
    its hash expires, it leaves too."""
    d = start_dtmd(STORE_SHARDS=1, STORE_FINISHED_DATA_EXPIRE=SHORT,
                   STORE_DATA_EXPIRE=600)
    old, newer = new_gid("ret-long"), new_gid("ret-newer")
    prepared_tcc(d, old)
    time.sleep(0.01)
    finished_saga(d, newer)
    key = ix_key(0)
    with redis_server.client() as r:
        assert r("XLEN", key) == 2 and r("EXISTS", "%s{0}:exp" % PREFIX) == 0
        assert [g for _, g in entries(r, 0)] == [old, newer]
        # the newer one, behind the old one in the walk, leaves
        wait_until(lambda: [g for _, g in entries(r, 0)] == [old], timeout=SHORT + 5,
                   msg="the expired newer gid trimmed")
        assert r("EXISTS", "%s{0}:t:%s" % (PREFIX, newer)) == 0
        # the old one stays over several passes of the walk
        time.sleep(2.5)
        assert [g for _, g in entries(r, 0)] == [old]
        ok(d.api("POST", "/submit", body={"gid": old, "trans_type": "tcc",
                                          "wait_result": True}))
        d.wait_status(old, S)
        wait_until(lambda: r("EXISTS", "%s{0}:t:%s" % (PREFIX, old)) == 0, timeout=SHORT + 5,
                   msg="the finished hash expired")
        wait_until(lambda: r("XLEN", key) == 0, timeout=5, msg="the old gid trimmed")
        assert r("EXISTS", "%s{0}:exp" % PREFIX) == 0


def test_gid_stored_again_after_expiry_keeps_its_new_entry(start_dtmd, redis_server):
    """A gid whose hash expired and that is stored again has its new entry
    (Redis' time of the new store) for as long as the new hash lives; its
    first entry, now stale, is deleted by the trimmer (if it did not find
    the hash gone first), and /all lists the gid once meanwhile."""
    d = start_dtmd(STORE_SHARDS=SHARDS, STORE_FINISHED_DATA_EXPIRE=SHORT,
                   STORE_DATA_EXPIRE=600)
    gid = new_gid("ret-again")
    finished_saga(d, gid)
    with redis_server.client() as r:
        first = ix_ms(r, gid)
        wait_until(lambda: r("EXISTS", hash_key(gid)) == 0, timeout=SHORT + 5,
                   msg="the first hash expired")
        prepared_tcc(d, gid)  # stored again, unfinished: its hash lives 600 s
        again = int(r("HGET", hash_key(gid), "ct"))
        new = ix_ms(r, gid)
        assert first < again <= new < again + 1000, (first, again, new)  # one host's clock
        # older than FinishedDataExpire: the walk looks at it on every pass
        deadline = time.monotonic() + SHORT + 3
        while time.monotonic() < deadline:
            assert entry_times(r, gid) in ([first, new], [new])
            assert no_exp(r)
            st, body = d.api("GET", "/all")
            assert st == 200 and [t["gid"] for t in body["transactions"]] == [gid], body
            time.sleep(0.1)
        assert entry_times(r, gid) == [new]
        ok(d.api("POST", "/submit", body={"gid": gid, "trans_type": "tcc",
                                          "wait_result": True}))
        d.wait_status(gid, S)
        watch_until_gone(r, [gid], SHORT + 5 * TIMEOUT_SCALE)
        assert no_exp(r)


def test_stale_entries_skipped_by_all_and_trimmed(start_dtmd, redis_server):
    """A gid stored again after its hash expired has a second entry, the
    first one stale: its ms is earlier than the new hash's creation by more
    than half the shortest TTL. /all lists the gid once, at its new entry;
    the trimmer deletes the stale entry once its walk gets there (entries at
    least the shortest TTL old), never the new one. The stale entries are
    written as an earlier life of the gids left them: one the walk does not
    reach yet (400 s old, TTLs 600 s), one it does (an hour old)."""
    with redis_server.client() as r:
        now = int(r("TIME")[0]) * 1000
        recent, old = new_gid("ret-stale-recent"), new_gid("ret-stale-old")
        r("XADD", ix_key(shard_of(old)), "%d-0" % (now - 3600000), "g", old)
        r("XADD", ix_key(shard_of(recent)), "%d-0" % (now - 400000), "g", recent)
    d = start_dtmd(STORE_SHARDS=SHARDS, STORE_FINISHED_DATA_EXPIRE=600, STORE_DATA_EXPIRE=600)
    prepared_tcc(d, recent)
    time.sleep(0.003)
    prepared_tcc(d, old)
    with redis_server.client() as r:
        assert entry_times(r, recent)[0] == now - 400000 and len(entry_times(r, recent)) == 2
        wait_until(lambda: len(entry_times(r, old)) == 1, timeout=5,
                   msg="the hour-old stale entry trimmed")
        assert entry_times(r, old)[0] >= now
        time.sleep(1.5)  # the walk passes again: the 400 s old one is beyond it
        assert entry_times(r, recent)[0] == now - 400000 and len(entry_times(r, recent)) == 2
    for limit in (1, 100):
        pages = all_gids(d, limit)
        assert pages == [old, recent], (limit, pages)


def old_entries(r, shard, score, gids, with_hash):
    """Index entries of shard at score as an earlier dtmd left them; the gids
    in with_hash get a live hash (600 s), the others have none."""
    args = []
    for g in gids:
        args += [score, g]
    if args:
        r("ZADD", "%s{%d}:idx" % (PREFIX, shard), *args)
    for g in with_hash:
        k = "%s{%d}:t:%s" % (PREFIX, shard, g)
        r("HSET", k, "status", "succeed", "trans_type", "saga")
        r("EXPIRE", k, 600)


def stream_entries(r, shard, ms, gids, with_hash):
    """Index stream entries of shard at one ms (Redis' ids: ms-0, ms-1, ...);
    the gids in with_hash get a live hash (600 s), the others have none."""
    for seq, g in enumerate(gids):
        r("XADD", ix_key(shard), "%d-%d" % (ms, seq), "g", g)
    old_entries(r, shard, 0, [], with_hash)


@pytest.mark.parametrize("where", ["stream", "older zset"])
def test_gids_sharing_a_millisecond_are_all_looked_at(start_dtmd, redis_server, where):
    """Thousands of old entries with one creation time (more than a walk step
    looks at, or a migration step moves): the walk goes on within the
    millisecond, so every one whose hash is gone leaves and those with a hash
    stay, and the entries after them are reached too. Two processes walk (or
    migrate) the same store. In an older dtmd's zset, the entries move into
    the stream with their creation time."""
    put = stream_entries if where == "stream" else old_entries
    with redis_server.client() as r:
        old = (int(r("TIME")[0]) - 3600) * 1000
        same = ["ret-ms-%d" % i for i in range(2500)]  # lengths differ: byte order
        kept = same[::7] + ["ret-ms-later-kept"]
        put(r, 0, old, same, same[::7])
        put(r, 0, old + 1, ["ret-ms-later-gone", "ret-ms-later-kept"], ["ret-ms-later-kept"])
        assert ix_count(r, 1) == 2502
        start_dtmd(STORE_SHARDS=1, STORE_FINISHED_DATA_EXPIRE=600, STORE_DATA_EXPIRE=600)
        start_dtmd(STORE_SHARDS=1, STORE_FINISHED_DATA_EXPIRE=600, STORE_DATA_EXPIRE=600)
        wait_until(lambda: ix_count(r, 1) == len(kept), timeout=10,
                   msg="gids without a hash trimmed: %d left" % ix_count(r, 1))
        want = sorted([(old, g) for g in same[::7]] + [(old + 1, "ret-ms-later-kept")])
        assert sorted(entries(r, 0)) == want and r("EXISTS", idx_key(0)) == 0
        time.sleep(1.5)  # the walks go on: nothing else leaves
        assert sorted(entries(r, 0)) == want


def test_expiry_zset_of_the_previous_dtmd_is_deleted(start_dtmd, redis_server):
    """A store written by the previous dtmd has, per shard, an expiry zset
    (gid -> when its hash expires) besides the index zset. The new dtmd
    deletes it at start; the gids it held are all in the index, whose gids
    with a hash move into the stream at their creation time."""
    with redis_server.client() as r:
        now = int(r("TIME")[0]) * 1000
        names = ["ret-prev-%d" % i for i in range(200)]
        gone = {s: [g for g in names if shard_of(g) == s][:3] for s in range(SHARDS)}
        live = {s: [g for g in names if shard_of(g) == s][3:4] for s in range(SHARDS)}
        for s in range(SHARDS):
            old_entries(r, s, now - 3600 * 1000, gone[s] + live[s], live[s])
            args = []
            for g in gone[s]:
                args += [now - 1000, g]  # expired
            for g in live[s]:
                args += [now + 600000, g]
            r("ZADD", exp_key(s), *args)
        assert not no_exp(r)
        start_dtmd(STORE_SHARDS=SHARDS, STORE_FINISHED_DATA_EXPIRE=600, STORE_DATA_EXPIRE=600)
        wait_until(lambda: no_exp(r), timeout=10, msg="expiry zsets deleted")
        wait_until(lambda: ix_count(r) == SHARDS, timeout=10, msg="gone gids trimmed")
        for s in range(SHARDS):
            assert entries(r, s) == [(now - 3600 * 1000, g) for g in live[s]]
            assert r("EXISTS", idx_key(s)) == 0


def test_entries_of_an_older_dtmd_are_adopted_or_dropped(start_dtmd, redis_server):
    """An index written by an older dtmd: gids in the zset idx with score 0
    (it listed in gid order), and, from the previous one, an expiry zset.
    After a restart, gids whose hash is gone are dropped; the others move into
    the stream at their creation time (so /all lists them newest first), and
    leave once their hash has expired; the zsets are gone; no /all call
    needed. A hash without a create_time gets ms 0: listed last."""
    d = start_dtmd(STORE_SHARDS=SHARDS, STORE_FINISHED_DATA_EXPIRE=600, STORE_DATA_EXPIRE=600)
    short = [new_gid("ret-old-short") for _ in range(3)]
    long_ = [new_gid("ret-old-long") for _ in range(3)] + [new_gid("ret-old-open")]
    recent = [new_gid("ret-old-recent") for _ in range(3)]  # exp, but score 0
    undated = new_gid("ret-old-undated")
    for g in short + long_[:3] + recent + [undated]:
        finished_saga(d, g)
        time.sleep(0.003)  # distinct creation times
    prepared_tcc(d, long_[3])
    d.stop()
    live = short + long_ + recent + [undated]
    # no hash for these any more: in the older dtmd they were left in idx for good
    ghosts = ["ret-ghost-%05d" % i for i in range(5000)]
    by_shard = {}
    for g in ghosts + live:
        by_shard.setdefault(shard_of(g), []).append(g)
    assert min(len(v) for v in by_shard.values()) > 1000  # more than one batch per shard
    with redis_server.client() as r:
        for s in range(SHARDS):  # the older dtmd wrote no stream
            r("DEL", ix_key(s))
        created = {g: int(r("HGET", hash_key(g), "ct")) for g in live if g != undated}
        now = int(r("TIME")[0]) * 1000
        for s in range(SHARDS):
            args = []
            for g in by_shard.get(s, []):
                args += [0, g]
            r("ZADD", idx_key(s), *args)
        for g in recent:  # as the previous dtmd recorded their expiry
            r("ZADD", exp_key(shard_of(g)), now + 600000, g)
        r("HDEL", hash_key(undated), "ct")
        for g in short:
            r("PEXPIRE", hash_key(g), SHORT * 1500)
        n = len(live)
        assert ix_count(r) == len(ghosts) + n and zcard(r, exp_key) == len(recent)
        assert all(r("ZSCORE", idx_key(shard_of(g)), g) == b"0" for g in live)

        # finished transactions now expire SHORT after they finish, so the
        # trimmer looks at entries created more than SHORT ago
        d.env["STORE_FINISHED_DATA_EXPIRE"] = str(SHORT)
        d.start()
        wait_until(lambda: ix_count(r) == n and no_exp(r), timeout=10,
                   msg="ghosts dropped, live gids moved, the expiry zsets deleted")
        assert zcard(r, idx_key) == 0
        for g in created:
            assert entry_times(r, g) == [created[g]], g  # /all lists newest first
        assert entry_times(r, undated) == [0]
        wait_until(lambda: ix_count(r) == n - 3, timeout=10, msg="short-lived gids trimmed")
        assert all(r("EXISTS", hash_key(g)) == 0 for g in short)
        assert all(ix_ms(r, g) is not None for g in long_ + recent + [undated])
        assert no_exp(r)
    listed = []
    for limit in (1, 2, 100):
        listed.append(all_gids(d, limit))
    left = sorted(long_ + recent, key=lambda g: created[g], reverse=True)
    assert listed == [left + [undated]] * 3, listed


# ---- transactions stored in the previous layout -------------------------------

def old_layout_saga(r, gid, stub, status, now_ms, finished):
    """A 2-step saga as the previous dtmd stored it (src/trans_hash.h): long
    field names, "gid", "steps"/"payloads", and per branch "b<i>" (counted
    id, op, URL, then the payload) and "b<i>.s" ("<status> <ct> <ut> <ft>
    <rt>"), with its index entries; written by hand, field by field, as that
    dtmd's trans_hash_fields wrote them."""
    payload = '{"amount":30}'
    steps = [(stub.url("TransOut"), stub.url("TransOutRevert")),
             (stub.url("TransIn"), stub.url("TransInRevert"))]
    fields = {
        "gid": gid, "trans_type": "saga", "status": status,
        "steps": json.dumps([{"action": a, "compensate": c} for a, c in steps],
                            separators=(",", ":")),
        "payloads": json.dumps([payload, payload], separators=(",", ":")),
        "create_time": now_ms - 5000, "update_time": now_ms - 4000,
        "next_cron_time": now_ms - 1000, "next_cron_interval": 10000, "nb": 4,
    }
    if finished:
        fields.update({"finish_time": now_ms - 3000, "rollback_time": now_ms - 3500,
                       "rollback_reason": "stored by the old dtmd"})

    def counted(s):
        return "%d:%s" % (len(s.encode()), s)

    i = 0
    for k, (action, comp) in enumerate(steps):
        for op, url in (("compensate", comp), ("action", action)):
            bid = "%02d" % (k + 1)
            fields["b%d" % i] = counted(bid) + counted(op) + counted(url) + payload
            st = "failed" if finished and op == "action" and k == 1 else \
                "succeed" if finished and op != "action" or finished and k == 0 else "prepared"
            fin = now_ms - 3500 if st != "prepared" else 0
            fields["b%d.s" % i] = "%s %d %d %d 0" % (st, now_ms - 5000,
                                                     fin or now_ms - 5000, fin)
            i += 1
    args = []
    for k, v in fields.items():
        args += [k, v]
    r("HSET", hash_key(gid), *args)
    r("EXPIRE", hash_key(gid), 600)
    s = shard_of(gid)
    r("ZADD", idx_key(s), now_ms - 5000, gid)
    r("ZADD", exp_key(s), now_ms + 600000, gid)
    if not finished:
        r("ZADD", "%s{%d}:due" % (PREFIX, s), now_ms - 1000, gid)
    return steps


def test_previous_layout_read_and_finished(start_dtmd, redis_server, stub):
    """A new dtmd on a Redis holding transactions of the previous layout:
    an unfinished one is finished (its branch states written back in that
    layout, the global fields in the compact names, which win when read), a
    finished one is queried as it was stored."""
    with redis_server.client() as r:
        now = int(r("TIME")[0]) * 1000
        todo, done = new_gid("old-todo"), new_gid("old-done")
        steps = old_layout_saga(r, todo, stub, "submitted", now, finished=False)
        old_layout_saga(r, done, stub, "failed", now, finished=True)
    d = start_dtmd(STORE_SHARDS=SHARDS, STORE_FINISHED_DATA_EXPIRE=600,
                   STORE_DATA_EXPIRE=600)
    wait_until(lambda: d.status(todo) == "succeed", 15, msg="old-layout saga finished")
    assert stub.count("TransOut") == 1 and stub.count("TransIn") == 1
    assert stub.count("TransOutRevert") == 0
    q = d.query(todo)
    t = q["transaction"]
    assert t["gid"] == todo and t["trans_type"] == "saga"
    assert t["steps"] == [{"action": a, "compensate": c} for a, c in steps]
    assert t["payloads"] == ['{"amount":30}', '{"amount":30}']
    assert "finish_time" in t and "create_time" in t
    got = [(b["branch_id"], b["op"], b["url"], b["status"]) for b in q["branches"]]
    assert got == [("01", "compensate", steps[0][1], "prepared"),
                   ("01", "action", steps[0][0], "succeed"),
                   ("02", "compensate", steps[1][1], "prepared"),
                   ("02", "action", steps[1][0], "succeed")], got
    with redis_server.client() as r:
        h = r("HGETALL", hash_key(todo))
        fields = dict(zip(h[::2], h[1::2]))
        assert fields[b"gid"] == todo.encode()  # still the previous layout
        assert fields[b"b1.s"].startswith(b"succeed ") and b"bs" not in fields
        assert fields[b"status"] == b"succeed"

    q = d.query(done)
    t = q["transaction"]
    assert t["status"] == "failed" and t["rollback_reason"] == "stored by the old dtmd"
    assert t["create_time"] and t["finish_time"] and t["rollback_time"]
    assert [(b["op"], b["status"]) for b in q["branches"]] == [
        ("compensate", "succeed"), ("action", "succeed"),
        ("compensate", "succeed"), ("action", "failed")]
    assert [b["bin_data"] for b in q["branches"]] == [b64('{"amount":30}')] * 4
    # both are listed
    st, page = d.api("GET", "/all?limit=10")
    assert st == 200, page
    listed = {x["gid"] for x in page["transactions"]}
    assert {todo, done} <= listed, listed


def test_compact_layout_values_fit_a_listpack(start_dtmd, redis_server, stub):
    """Every value of a stored transaction is at most 64 bytes (Redis keeps
    the hash a listpack), long texts in pieces, and reads back whole."""
    d = start_dtmd(STORE_SHARDS=SHARDS)
    gid = new_gid("compact")
    st, _ = d.submit(saga(gid, [(stub.url("TransOut"), stub.url("TransOutRevert")),
                                (stub.url("TransIn"), stub.url("TransInRevert"))],
                          wait_result=True, custom_data={"pad": "y" * 150}))
    assert st == 200
    assert d.status(gid) == "succeed"
    with redis_server.client() as r:
        h = r("HGETALL", hash_key(gid))
        assert all(len(v) <= 64 for v in h[1::2]), h
        assert r("OBJECT", "ENCODING", hash_key(gid)) == b"listpack"
        assert b"gid" not in h[::2]
    t = d.trans(gid)
    assert json.loads(t["custom_data"]) == {"pad": "y" * 150}


def test_finished_hash_is_packed(start_dtmd, redis_server, stub):
    """A finished 2-step saga keeps no hold, its steps packed behind their
    common URL prefix (each compensate after its action), its payloads
    counted, its times after `ct`, its branch states in one group; the query
    shows exactly what was submitted."""
    d = start_dtmd(STORE_SHARDS=SHARDS)
    gid = new_gid("packed")
    steps = [(stub.url("TransOut"), stub.url("TransOutRevert")),
             (stub.url("TransIn"), stub.url("TransInRevert"))]
    payloads = ['{"amount":30}', 'a "quoted"\nline']
    ok(d.submit(saga(gid, steps, payloads=payloads, wait_result=True)))
    with redis_server.client() as r:
        f = dict(zip(*[iter(r("HGETALL", hash_key(gid)))] * 2))
    assert b"lease_until" not in f and b"lease_owner" not in f, f
    prefix = stub.url("Trans")
    # one piece each: stored as they are, without a piece count
    assert f[b"st"].decode() == "~c%s Out +Revert In +Revert" % prefix, f
    assert f[b"pl"] == b"~13:{\"amount\":30}15:a \"quoted\"\nline", f
    ct = int(f[b"ct"])
    assert 0 <= int(f[b"ut"]) < 60000 and 0 <= int(f[b"ft"]) < 60000, f
    assert f[b"bs"].startswith(b"p0") and b"bs1" not in f, f
    q = d.query(gid)
    t = q["transaction"]
    assert t["steps"] == [{"action": a, "compensate": c} for a, c in steps]
    assert t["payloads"] == payloads
    assert [b["status"] for b in q["branches"]] == ["prepared", "succeed"] * 2
    assert abs(parse_time(t["finish_time"]).timestamp() - (ct + int(f[b"ft"])) / 1000) < 0.002


def test_first_compact_form_read_and_finished(start_dtmd, redis_server, stub):
    """A transaction stored by the dtmd before packing (steps and payloads as
    JSON, all branch states in one `bs` led by their base, times absolute) is
    driven to its end by a new dtmd, which keeps its `bs` in that form."""
    gid = new_gid("form1")
    steps = [(stub.url("TransOut"), stub.url("TransOutRevert")),
             (stub.url("TransIn"), stub.url("TransInRevert"))]
    with redis_server.client() as r:
        now = int(r("TIME")[0]) * 1000
        fields = {
            "trans_type": "saga", "status": "submitted",
            "st": "1:" + json.dumps([{"action": a, "compensate": c} for a, c in steps],
                                    separators=(",", ":")),
            "pl": "1:" + json.dumps(['{"amount":30}'] * 2, separators=(",", ":")),
            "ct": now - 5000, "ut": now - 4000, "nc": now - 1000, "ci": 10000, "nb": 4,
            "bs": "1:%d p0,0,, s0,1000,1000, p0,0,, p0,0,," % (now - 5000),
        }
        # st is longer than 64 bytes: cut it into pieces as that dtmd did
        text = fields["st"][2:]
        n = 1 + (len(text) - 62 + 63) // 64
        fields["st"] = "%d:%s" % (n, text[:62])
        for k in range(1, n):
            fields["st.%d" % k] = text[62 + 64 * (k - 1):62 + 64 * k]
        args = [x for kv in fields.items() for x in kv]
        r("HSET", hash_key(gid), *args)
        r("EXPIRE", hash_key(gid), 600)
        r("ZADD", idx_key(shard_of(gid)), now - 5000, gid)
        r("ZADD", "%s{%d}:due" % (PREFIX, shard_of(gid)), now - 1000, gid)
    d = start_dtmd(STORE_SHARDS=SHARDS)
    wait_until(lambda: d.status(gid) == "succeed", 15, msg="first-form saga finished")
    assert stub.count("TransOut") == 0 and stub.count("TransIn") == 1
    q = d.query(gid)
    assert q["transaction"]["steps"] == [{"action": a, "compensate": c} for a, c in steps]
    assert [b["status"] for b in q["branches"]] == ["prepared", "succeed"] * 2
    with redis_server.client() as r:
        bs = r("HGET", hash_key(gid), "bs").decode()
    assert bs.startswith("%d p0,0 s0,1000,1000 p0,0 s0," % (now - 5000)), bs
