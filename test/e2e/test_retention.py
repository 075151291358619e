"""The shards' gid indexes stay as small as the store, without anyone listing.

Every stored transaction puts its gid in its shard's index zset
`<prefix>{<shard>}:idx` (for /all). The transaction hash expires
(Store.DataExpire, Store.FinishedDataExpire once finished); its time of expiry
is kept in `<prefix>{<shard>}:exp` by the same scripts that set the TTL, and
the retry scanner removes the gids whose time has passed from both
(src/retention.c, lua/index_trim.lua). The index's score is the creation time
(/all lists newest first). Gids stored by an older dtmd (score 0, some in the
index only) are given their creation time and their hash's expiry, or dropped
if the hash is gone, once per dtmd start (src/retention.c, lua/index_adopt.lua).

These tests never call /all until they have checked the indexes: the indexes
are read straight from Redis.
"""

import json
import time
import urllib.parse

from dtmtest import TIMEOUT_SCALE, S, b64, new_gid, saga, wait_until

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


def idx_key(shard):
    return "%s{%d}:idx" % (PREFIX, shard)


def exp_key(shard):
    return "%s{%d}:exp" % (PREFIX, shard)


def hash_key(gid):
    return "%s{%d}:t:%s" % (PREFIX, shard_of(gid), gid)


def zcard(r, key_of):
    return sum(r("ZCARD", key_of(s)) for s in range(SHARDS))


def idx_score(r, gid):
    return r("ZSCORE", idx_key(shard_of(gid)), gid)


def exp_score(r, gid):
    v = r("ZSCORE", exp_key(shard_of(gid)), gid)
    return None if v is None else float(v)


def assert_exp_follows_hash(r, gid):
    """The recorded time is when Redis expires the hash (same clock, ms)."""
    when = r("PEXPIRETIME", hash_key(gid))
    assert when > 0, (gid, when)
    got = exp_score(r, gid)
    assert got is not None and abs(got - when) <= 50, (gid, got, when)
    return got


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
        assert zcard(r, idx_key) == 50
        # the hashes expire (Redis), then their gids leave both indexes (dtmd)
        wait_until(lambda: not redis_server.keys("%s*:t:*" % PREFIX), timeout=10,
                   msg="every transaction hash expired")
        wait_until(lambda: zcard(r, idx_key) == 0 and zcard(r, exp_key) == 0, timeout=5,
                   msg="indexes trimmed: idx %d exp %d" % (zcard(r, idx_key), zcard(r, exp_key)))
        assert redis_server.keys("%s*:idx" % PREFIX) == []
    assert d.api("GET", "/all") == (200, {"transactions": [], "next_position": ""})


def test_entries_live_as_long_as_their_hash(start_dtmd, redis_server):
    """An unfinished transaction keeps its gid while its hash lives (DataExpire);
    one that finishes gets the FinishedDataExpire time, and leaves after it."""
    d = start_dtmd(STORE_SHARDS=SHARDS, STORE_FINISHED_DATA_EXPIRE=SHORT,
                   STORE_DATA_EXPIRE=3 * SHORT)
    stays, finishes = new_gid("ret-stays"), new_gid("ret-finishes")
    prepared_tcc(d, stays)
    prepared_tcc(d, finishes)
    with redis_server.client() as r:
        first = assert_exp_follows_hash(r, finishes)
        assert_exp_follows_hash(r, stays)
        time.sleep(1.5)
        ok(d.api("POST", "/submit", body={"gid": finishes, "trans_type": "tcc",
                                          "wait_result": True}))
        d.wait_status(finishes, S)
        moved = assert_exp_follows_hash(r, finishes)
        assert first - moved > 1000, (first, moved)  # 3 SHORT from creation -> SHORT from now

        # Polled until both are gone: a gid is never missing while its hash
        # exists (index read first: a hash gone later is no contradiction).
        left_at = {}
        deadline = time.monotonic() + 3 * SHORT + 5 * TIMEOUT_SCALE
        while len(left_at) < 2 and time.monotonic() < deadline:
            for g in (stays, finishes):
                if g in left_at:
                    continue
                listed = idx_score(r, g) is not None
                exists = r("EXISTS", hash_key(g)) == 1
                assert listed or not exists, "%s left the index while its hash exists" % g
                if not listed:
                    left_at[g] = time.monotonic()
            time.sleep(0.05)
        assert set(left_at) == {stays, finishes}, left_at
        assert left_at[finishes] < left_at[stays], left_at
        assert exp_score(r, stays) is None and exp_score(r, finishes) is None
        assert zcard(r, idx_key) == 0 and zcard(r, exp_key) == 0


def test_entries_of_an_older_dtmd_are_adopted_or_dropped(start_dtmd, redis_server):
    """An index written by an older dtmd: gids in idx with score 0 (it listed
    in gid order), and, from the oldest, none in exp. After a restart, gids
    whose hash is gone leave the index; the others get their creation time as
    score (so /all lists them newest first) and, if missing, their hash's
    expiry, and leave when it comes; no /all call needed. A hash without a
    create_time keeps score 0: listed last."""
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
    ghosts = ["ret-ghost-%05d" % i for i in range(2600)]
    by_shard = {}
    for g in ghosts + live:
        by_shard.setdefault(shard_of(g), []).append(g)
    assert max(len(v) for v in by_shard.values()) > 500  # more than one batch per shard
    with redis_server.client() as r:
        created = {g: int(r("HGET", hash_key(g), "ct")) for g in live if g != undated}
        recent_exp = {g: exp_score(r, g) for g in recent}
        for s in range(SHARDS):
            args = []
            for g in by_shard.get(s, []):
                args += [0, g]
            r("ZADD", idx_key(s), *args)
        for g in short + long_ + [undated]:
            r("ZREM", exp_key(shard_of(g)), g)
        r("HDEL", hash_key(undated), "ct")
        for g in short:
            r("PEXPIRE", hash_key(g), SHORT * 1500)
        n = len(live)
        assert zcard(r, idx_key) == len(ghosts) + n and zcard(r, exp_key) == len(recent)
        assert all(idx_score(r, g) == b"0" for g in live)

        d.start()
        wait_until(lambda: zcard(r, idx_key) == n and zcard(r, exp_key) == n, timeout=10,
                   msg="ghosts dropped, live gids adopted")
        wait_until(lambda: all(idx_score(r, g) != b"0" for g in created), timeout=10,
                   msg="creation times given")
        for g in created:
            assert int(idx_score(r, g)) == created[g], g  # /all lists newest first
            assert_exp_follows_hash(r, g)
        assert idx_score(r, undated) == b"0"
        assert exp_score(r, undated) is not None
        assert all(exp_score(r, g) == recent_exp[g] for g in recent)  # kept as they were
        wait_until(lambda: zcard(r, idx_key) == n - 3, timeout=10, msg="short-lived gids trimmed")
        assert all(r("EXISTS", hash_key(g)) == 0 for g in short)
        assert all(idx_score(r, g) is not None for g in long_ + recent)
        assert zcard(r, exp_key) == n - 3
    listed = []
    for limit in (1, 2, 100):
        pos, got = "", []
        while True:
            st, body = d.api("GET", "/all?limit=%d&position=%s" % (limit, urllib.parse.quote(pos)))
            assert st == 200, body
            got += [t["gid"] for t in body["transactions"]]
            pos = body["next_position"]
            if not pos:
                break
        listed.append(got)
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
