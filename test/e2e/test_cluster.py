"""dtmd against a real Redis Cluster (three masters; a second one with replicas).

The module starts one cluster (redis-server --cluster-enabled yes, joined with
`redis-cli --cluster create`) shared by its tests; each test starts its own
dtmd with STORE_HOST set to the comma list of the three nodes and its own
key prefix, so tests do not see each other's keys. Checked: sagas in every
shard, keys on every master (each on the master of its slot), msg topic
fan-out (the KV hash lives in the slot of "{kv}"), /all paging across shards
on different masters, resetCronTime and the retry scanner on every shard, a
dtmd restart, a slot migrated between masters while dtmd runs (ASK during
the migration, MOVED after it), and a master that restarts. Then: our slot
arithmetic against CLUSTER KEYSLOT; a subset of the saga and msg end-to-end
tests (test_saga.py, test_msg.py) run unchanged against the cluster; a slot
migrated while sagas stream in; two dtmd, one SIGKILLed mid-stream. A second
module cluster, 3 masters + 3 replicas with cluster-node-timeout 1000 ms,
takes a CLUSTER FAILOVER and a killed master under traffic.
"""

import os
import shutil
import signal
import subprocess
import threading
import time
import urllib.parse
import uuid
from pathlib import Path

import pytest

from dtmtest import (DEFAULT_ENV, ERROR, REDIS_BIN, Dtmd, Resp, RespError, S, free_port,
                     new_gid, parse_time, saga, teardown_problems, wait_until)

REDIS_CLI = "/usr/bin/redis-cli" if os.path.exists("/usr/bin/redis-cli") else (
    shutil.which("redis-cli") or "redis-cli")
SHARDS = 16  # dtmd's default Store.Shards
OK = {"dtm_result": "SUCCESS"}


# --------------------------------------------------------------------------
# Redis Cluster arithmetic, written from the specification (as in dtmd)

def crc16(data):
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def key_slot(key):
    if isinstance(key, str):
        key = key.encode()
    i = key.find(b"{")
    if i >= 0:
        j = key.find(b"}", i + 1)
        if j > i + 1:
            key = key[i + 1:j]
    return crc16(key) % 16384


def shard_of(gid, nshards=SHARDS):
    """dtmd's keys.c: FNV-1a 32 of the gid modulo the shard count."""
    h = 0x811C9DC5
    for b in gid.encode():
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h % nshards


def gid_in_shard(shard, prefix="g"):
    while True:
        g = new_gid(prefix)
        if shard_of(g) == shard:
            return g


# --------------------------------------------------------------------------
# the cluster

def free_cluster_port():
    """A port p with p and its cluster bus port p+10000 both free."""
    import socket
    for _ in range(200):
        p = free_port()
        if p + 10000 > 65535:
            continue
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", p + 10000))
            return p
        except OSError:
            continue
        finally:
            s.close()
    raise AssertionError("no free port pair for a cluster node")


class Cluster:
    def __init__(self, workdir, n=3, replicas=0, node_timeout=None):
        self.dir = Path(workdir)
        self.ports = [free_cluster_port() for _ in range(n * (1 + replicas))]
        self.replicas = replicas
        self.node_timeout = node_timeout  # ms, cluster-node-timeout
        self.procs = {}
        self.password = None  # requirepass currently set on every node

    def _start_node(self, port):
        d = self.dir / str(port)
        d.mkdir(parents=True, exist_ok=True)
        self.procs[port] = subprocess.Popen(
            [REDIS_BIN, "--port", str(port), "--bind", "127.0.0.1",
             "--cluster-enabled", "yes", "--cluster-config-file", "nodes-%d.conf" % port,
             "--dir", str(d), "--save", "", "--appendonly", "no",
             "--logfile", str(d / "redis.log")]
            + (["--cluster-node-timeout", str(self.node_timeout)] if self.node_timeout else []),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

        def ready():
            if self.procs[port].poll() is not None:
                raise AssertionError("redis-server :%d exited; log:\n%s" % (port, self.log(port)))
            try:
                return self.cmd(port, "PING") == "PONG"
            except (OSError, RespError):
                return False
        wait_until(ready, 10, msg="redis-server :%d" % port)

    def start(self):
        for p in self.ports:
            self._start_node(p)
        out = subprocess.run([REDIS_CLI, "--cluster", "create"]
                             + ["127.0.0.1:%d" % p for p in self.ports]
                             + ["--cluster-replicas", str(self.replicas), "--cluster-yes"],
                             stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stdout + out.stderr
        self.wait_ok()

    def wait_ok(self, timeout=20, ports=None):
        def ok():
            for p in ports or self.ports:
                info = self.cmd(p, "CLUSTER", "INFO").decode()
                if "cluster_state:ok" not in info or "cluster_slots_ok:16384" not in info:
                    return False
                if "cluster_known_nodes:%d" % len(self.ports) not in info:
                    return False
            return True
        wait_until(ok, timeout, interval=0.1, msg="cluster_state:ok on every node")

    def stop(self):
        for p, proc in self.procs.items():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def kill(self, port):
        proc = self.procs[port]
        proc.kill()
        proc.wait(10)

    def restart(self, port):
        """Start a killed node again: nodes-<port>.conf brings back its identity and
        slots (not its data: no persistence)."""
        self._start_node(port)

    def log(self, port, n=30):
        try:
            text = (self.dir / str(port) / "redis.log").read_text(errors="replace")
            return "\n".join(text.splitlines()[-n:])
        except OSError:
            return "(no log)"

    def cmd(self, port, *args):
        with Resp("127.0.0.1", port) as r:
            if self.password:
                r("AUTH", self.password)
            return r(*args)

    def node_id(self, port):
        return self.cmd(port, "CLUSTER", "MYID").decode()

    def owner(self, slot):
        """The port of the master serving slot, as the first live node sees it."""
        for p in self.ports:
            try:
                ranges = self.cmd(p, "CLUSTER", "SLOTS")
            except OSError:
                continue
            for r in ranges:
                if r[0] <= slot <= r[1]:
                    return r[2][1]
        raise AssertionError("no node serves slot %d" % slot)

    def keys(self, port, prefix):
        found, cursor = [], b"0"
        with Resp("127.0.0.1", port) as r:
            if self.password:
                r("AUTH", self.password)
            while True:
                cursor, batch = r("SCAN", cursor, "MATCH", prefix + "*", "COUNT", 1000)
                found.extend(k.decode() for k in batch)
                if cursor in (b"0", "0"):
                    return found

    def migrate_start(self, slot, src, dst):
        """The first half of a slot migration: dst importing, src migrating."""
        assert self.cmd(dst, "CLUSTER", "SETSLOT", slot, "IMPORTING", self.node_id(src)) == "OK"
        assert self.cmd(src, "CLUSTER", "SETSLOT", slot, "MIGRATING", self.node_id(dst)) == "OK"

    def migrate_finish(self, slot, src, dst):
        """Move the slot's keys, then give the slot to dst on every node."""
        while True:
            keys = self.cmd(src, "CLUSTER", "GETKEYSINSLOT", slot, 100)
            if not keys:
                break
            assert self.cmd(src, "MIGRATE", "127.0.0.1", dst, "", 0, 5000,
                            "KEYS", *keys) == "OK"
        dst_id = self.node_id(dst)
        for p in [dst, src] + [p for p in self.ports if p not in (src, dst)]:
            assert self.cmd(p, "CLUSTER", "SETSLOT", slot, "NODE", dst_id) == "OK"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        c.start()
        yield c
    finally:
        c.stop()


def _artifact(request, title, fn):
    """Attach fn() to the report if the test fails (conftest.py's report hook)."""
    node = request.node
    if not hasattr(node, "_e2e_artifacts"):
        node._e2e_artifacts = []
    node._e2e_artifacts.append((title, fn))


# --------------------------------------------------------------------------
# dtmd on the cluster

def shard_gids(prefix="probe"):
    return [gid_in_shard(s, prefix) for s in range(SHARDS)]


def store_ready(d, gids):
    """Every shard (and the KV slot) answers: dtmd knows the whole slot map."""
    for g in gids:
        st, body = d.api("GET", "/query?" + urllib.parse.urlencode({"gid": g}))
        if st != 200:
            return False
    st, _ = d.api("GET", "/queryKV?cat=topics")
    return st == 200


@pytest.fixture
def start_cdtmd(cluster, tmp_path, request):
    """start_cdtmd(**env) -> a started Dtmd on the cluster, its store ready. The same
    teardown checks as conftest's start_dtmd: no crash, exit 0 on SIGTERM, no
    sanitizer report. The key prefix is unique per test."""
    started = []
    prefix = "c%s" % uuid.uuid4().hex[:8]
    probes = shard_gids()
    for p in cluster.ports:
        _artifact(request, "redis :%d log tail" % p, lambda p=p: cluster.log(p))

    def start(**overrides):
        env = dict(DEFAULT_ENV)
        env.update({
            "STORE_DRIVER": "redis",
            "STORE_HOST": ",".join("127.0.0.1:%d" % p for p in cluster.ports),
            "STORE_PORT": str(cluster.ports[0]),
            "STORE_REDIS_PREFIX": prefix,
            "HTTP_HOST": "127.0.0.1",
            "HTTP_PORT": str(free_port()),
        })
        env.update({k: str(v) for k, v in overrides.items()})
        d = Dtmd(env, tmp_path, name="dtmd%d" % (len(started) + 1))
        d.prefix = prefix
        started.append(d)
        _artifact(request, "%s log tail (%s)" % (d.log.stem, d.log), lambda d=d: d.log_tail())
        d.start()
        wait_until(lambda: store_ready(d, probes), 10, interval=0.05, msg="dtmd store ready")
        return d

    try:
        yield start
    finally:
        problems = teardown_problems(started)
    # reported as an error at teardown: a crash or a sanitizer finding fails the test
    assert not problems, "\n\n".join(problems)


def submit_ok(d, body, path="/submit"):
    st, resp = d.submit(body, path)
    assert (st, resp) == (200, OK), "%s %s -> %s %r" % (path, body.get("gid"), st, resp)


def two_step_saga(stub, gid, **options):
    return saga(gid, [(stub.url("TransOut"), stub.url("TransOutRevert")),
                      (stub.url("TransIn"), stub.url("TransInRevert"))], **options)


def ranges_of(cluster, port):
    return [(r[0], r[1]) for r in cluster.cmd(port, "CLUSTER", "SLOTS") if r[2][1] == port]


# --------------------------------------------------------------------------
# tests

def test_cluster_sagas_spread_over_masters_and_all_pages(start_cdtmd, stub, cluster):
    d = start_cdtmd()
    # 40 gids, at least two in each of the 16 shards
    gids = [gid_in_shard(i % SHARDS, "spread") for i in range(40)]
    for g in gids:
        submit_ok(d, two_step_saga(stub, g, wait_result=True))
    for g in gids:
        q = d.query(g)
        assert q["transaction"]["status"] == S, q
        assert [b["status"] for b in q["branches"]] == ["prepared", S, "prepared", S], q
    assert stub.count("TransOut") == 40 and stub.count("TransIn") == 40

    # the shards' keys are on all three masters, each key on its slot's master
    per_node = {}
    for p in cluster.ports:
        keys = cluster.keys(p, d.prefix)
        per_node[p] = keys
        mine = ranges_of(cluster, p)
        for k in keys:
            assert any(a <= key_slot(k) <= b for a, b in mine), (k, p, mine)
    assert all(len(v) > 0 for v in per_node.values()), {p: len(v) for p, v in per_node.items()}
    every = [k for v in per_node.values() for k in v]
    assert sorted(k for k in every if ":t:" in k) == \
        sorted("%s{%d}:t:%s" % (d.prefix, shard_of(g), g) for g in gids)
    assert sorted(k for k in every if k.endswith(":ix")) == \
        sorted("%s{%d}:ix" % (d.prefix, s) for s in range(SHARDS))
    # nothing else per transaction: the trimmer walks ix itself (no exp zset)
    assert [k for k in every if k.endswith((":exp", ":idx"))] == []
    # the process's liveness, per shard in the shard's slot (docs/failover.md)
    assert sorted(k for k in every if k.endswith(":live")) == \
        sorted("%s{%d}:live" % (d.prefix, s) for s in range(SHARDS))
    # all finished: the due indexes and the holders' sets are empty, so Redis
    # has deleted them
    assert [k for k in every if ":t:" not in k and
            not k.endswith((":ix", ":live"))] == []

    # /all pages through every shard on every master: each gid once, newest
    # first (creation time, then gid, descending) across them all
    seen, order, pos, pages = [], [], "", 0
    while True:
        st, body = d.api("GET", "/all?" + urllib.parse.urlencode({"limit": 7, "position": pos}))
        assert st == 200, (st, body)
        assert len(body["transactions"]) <= 7
        seen.extend(t["gid"] for t in body["transactions"])
        order.extend((parse_time(t["create_time"]), t["gid"]) for t in body["transactions"])
        pos = body["next_position"]
        pages += 1
        if not pos:
            break
        assert pages < 40, "paging does not end"
    assert sorted(seen) == sorted(gids)
    assert order == sorted(order, reverse=True)
    assert seen[0] == gids[-1] and seen[-1] == gids[0]
    st, body = d.api("GET", "/all?" + urllib.parse.urlencode({"gid": gids[5]}))
    assert st == 200 and [t["gid"] for t in body["transactions"]] == [gids[5]], body


def test_cluster_index_trimmed_on_every_master(start_cdtmd, stub, cluster):
    """The retry scanner keeps every shard's gid index bounded (src/retention.c)
    on every master: expired gids leave the index stream ix without any /all
    (the walk checks each hash in the shard's slot); the index zsets of an
    older dtmd (idx) move into the streams, gids whose hash is gone dropped,
    by scripts reading the hashes in the shard's slot; the previous dtmd's
    expiry zsets are deleted."""
    d = start_cdtmd(STORE_FINISHED_DATA_EXPIRE=1, STORE_DATA_EXPIRE=600)
    d.stop()  # the store as older dtmds left it, then this one starts
    gids = [gid_in_shard(s, "trim") for s in range(SHARDS)]
    kept = [gid_in_shard(s, "kept") for s in (0, 5, 10, 15)]

    def owner_of(key):
        return cluster.owner(key_slot(key))

    def idx(s):
        return "%s{%d}:idx" % (d.prefix, s)

    def ix(s):
        return "%s{%d}:ix" % (d.prefix, s)

    def card(what):
        cmd = "XLEN" if what == "ix" else "ZCARD"
        return sum(cluster.cmd(owner_of(k), cmd, k)
                   for k in ("%s{%d}:%s" % (d.prefix, s, what) for s in range(SHARDS)))

    for i, g in enumerate(kept):  # an older dtmd's: a hash with a TTL and an idx entry only
        key = "%s{%d}:t:%s" % (d.prefix, shard_of(g), g)
        cluster.cmd(owner_of(key), "HSET", key, "status", "succeed", "create_time", 1000 + i)
        cluster.cmd(owner_of(key), "EXPIRE", key, 600)
        cluster.cmd(owner_of(idx(shard_of(g))), "ZADD", idx(shard_of(g)), 0, g)
    for s in range(SHARDS):  # and gids whose hash expired long ago
        cluster.cmd(owner_of(idx(s)), "ZADD", idx(s), 0, "ghost-%d" % s)
        exp = "%s{%d}:exp" % (d.prefix, s)  # the previous dtmd's expiry zset
        cluster.cmd(owner_of(exp), "ZADD", exp, 1, "ghost-%d" % s)
    assert card("idx") == len(kept) + SHARDS and card("exp") == SHARDS and card("ix") == 0
    d.start()
    for g in gids:
        submit_ok(d, saga(g, [("", "")], wait_result=True))  # stored finished
    wait_until(lambda: card("ix") == len(kept) and card("idx") == 0 and card("exp") == 0, 10,
               msg="indexes trimmed on every master")
    for g in kept:
        s = shard_of(g)
        # its creation time as the entry's ms, for /all's newest first
        got = cluster.cmd(owner_of(ix(s)), "XRANGE", ix(s), "-", "+")
        assert [(e[0].split(b"-")[0], e[1]) for e in got] == \
            [(str(1000 + kept.index(g)).encode(), [b"g", g.encode()])]
    # the trimmer's walk keeps them: their hashes live
    time.sleep(1.5)
    assert card("ix") == len(kept)
    assert "index: shard" in d.log.read_text(errors="replace")


def test_cluster_msg_topic_fanout(start_cdtmd, stub, cluster):
    d = start_cdtmd()
    a, b = stub.url("SubA"), stub.url("SubB")
    for url in (a, b):
        st, body = d.api("POST", "/subscribe", body={"topic": "orders", "url": url, "remark": ""})
        assert (st, body) == (200, OK), (st, body)
    # the topic record is one hash in the slot of "{kv}"
    kv_key = "%s{kv}:kv:topics" % d.prefix
    owner = cluster.owner(key_slot(kv_key))
    assert cluster.keys(owner, d.prefix + "{kv}") == [kv_key]

    gids = [gid_in_shard(s, "msg") for s in (0, 1, 3)]  # shards on the three masters
    assert len({cluster.owner(key_slot("%d" % s)) for s in (0, 1, 3)}) == 3
    for g in gids:
        body = {"gid": g, "trans_type": "msg", "query_prepared": stub.url("QueryPrepared"),
                "steps": [{"action": "topic://orders"}, {"action": stub.url("Plain")}],
                "payloads": ['{"n":1}', '{"n":2}']}
        submit_ok(d, body, "/prepare")
        submit_ok(d, body)
    for g in gids:
        q = d.wait_status(g, S)
        assert [x["branch_id"] for x in q["branches"]] == ["01-01", "01-02", "02"], q
        assert [x["url"] for x in q["branches"]] == [a, b, stub.url("Plain")], q
    for name in ("SubA", "SubB", "Plain"):
        assert sorted(c.query["gid"] for c in stub.calls(name)) == sorted(gids), stub.summary()


def test_cluster_scanner_retries_on_every_shard_and_reset_cron(start_cdtmd, stub):
    d = start_cdtmd(RETRY_MAX_INTERVAL=1000)
    # one saga per shard whose first action call fails: the scanner (lease_due on
    # every shard, so on every master) retries each after RETRY_INTERVAL
    quick = [gid_in_shard(s, "retry") for s in range(SHARDS)]
    for g in quick:
        stub.plan("Q-" + g, [ERROR])
        submit_ok(d, saga(g, [(stub.url("Q-" + g), stub.url("QR-" + g))]))
    for g in quick:
        d.wait_status(g, S, timeout=10)
        assert stub.count("Q-" + g) == 2, stub.summary()

    # stalled far in the future (retry_interval 110 s), spread over the shards:
    # resetCronTime makes them due now, across every master
    far = [gid_in_shard(s, "far") for s in (0, 1, 3, 4, 5, 7)]
    for g in far:
        stub.plan("F-" + g, [ERROR])
        submit_ok(d, saga(g, [(stub.url("F-" + g), stub.url("FR-" + g))], retry_interval=110))
    wait_until(lambda: all(stub.count("F-" + g) == 1 for g in far), 5, msg="first calls")
    time.sleep(0.3)
    assert all(d.status(g) == "submitted" for g in far)
    st, body = d.api("POST", "/resetCronTime?timeout=100&limit=4")
    assert (st, body) == (200, {"succeed_count": 4, "has_remaining": True}), (st, body)
    st, body = d.api("POST", "/resetCronTime?timeout=100&limit=10")
    assert (st, body) == (200, {"succeed_count": 2, "has_remaining": False}), (st, body)
    for g in far:
        d.wait_status(g, S, timeout=10)
        assert stub.count("F-" + g) == 2


def test_cluster_dtmd_restart_and_script_flush(start_cdtmd, stub, cluster):
    d = start_cdtmd()
    done = [gid_in_shard(s, "before") for s in range(0, SHARDS, 3)]
    for g in done:
        submit_ok(d, two_step_saga(stub, g, wait_result=True))
    # in flight across the restart: the action keeps failing until dtmd is back
    pending = [gid_in_shard(s, "across") for s in (2, 6, 13)]
    for g in pending:
        stub.set_default("P-" + g, *ERROR)
        submit_ok(d, saga(g, [(stub.url("P-" + g), stub.url("PR-" + g))]))
    wait_until(lambda: all(stub.count("P-" + g) >= 1 for g in pending), 5, msg="first calls")
    d.kill(signal.SIGKILL)
    for g in pending:
        stub.clear_default("P-" + g)
    d.start()
    for g in done:
        assert d.status(g) == S
    for g in pending:
        d.wait_status(g, S, timeout=10)
    g = gid_in_shard(9, "after")
    submit_ok(d, two_step_saga(stub, g, wait_result=True))
    assert d.status(g) == S
    # every master forgets the scripts: NOSCRIPT, sent again as EVAL to that master
    for p in cluster.ports:
        assert cluster.cmd(p, "SCRIPT", "FLUSH") == "OK"
    flushed = [gid_in_shard(s, "flushed") for s in (0, 1, 3)]  # one per master
    for g in flushed:
        submit_ok(d, two_step_saga(stub, g, wait_result=True))
        assert d.status(g) == S


def test_cluster_slot_migration_ask_tryagain_moved(start_cdtmd, stub, cluster):
    d = start_cdtmd()
    shard = 5
    slot = key_slot(str(shard))
    src = cluster.owner(slot)
    dst = next(p for p in cluster.ports if p != src)
    old = gid_in_shard(shard, "old")
    submit_ok(d, two_step_saga(stub, old, wait_result=True))
    trans_key = "%s{%d}:t:%s" % (d.prefix, shard, old)
    assert cluster.cmd(src, "EXISTS", trans_key) == 1

    cluster.migrate_start(slot, src, dst)
    mid, result = gid_in_shard(shard, "mid"), {}
    try:
        # mid-migration: a key still on src is served there; a key src does not
        # have is answered by dst after ASK
        assert d.status(old) == S
        missing = gid_in_shard(shard, "missing")
        assert d.query(missing) == {"transaction": None, "branches": []}
        # a new transaction's script touches a new key and the shard's index,
        # which is still on src: TRYAGAIN until the migration is over
        th = threading.Thread(target=lambda: result.update(
            r=d.submit(two_step_saga(stub, mid, wait_result=True))))
        th.start()
        wait_until(lambda: "TRYAGAIN slot %d" % slot in d.log.read_text(errors="replace"), 3,
                   msg="TRYAGAIN in the dtmd log")
    finally:
        cluster.migrate_finish(slot, src, dst)
    th.join(10)
    assert result.get("r") == (200, OK), result
    assert cluster.cmd(dst, "EXISTS", trans_key) == 1
    assert cluster.owner(slot) == dst

    # dtmd still sends the shard to src: MOVED, then the new master from then on
    new = gid_in_shard(shard, "new")
    submit_ok(d, two_step_saga(stub, new, wait_result=True))
    assert d.status(new) == S and d.status(old) == S and d.status(mid) == S
    assert cluster.cmd(dst, "EXISTS", "%s{%d}:t:%s" % (d.prefix, shard, new)) == 1
    log = d.log.read_text(errors="replace")
    assert "ASK slot %d" % slot in log, d.log_tail()
    assert "MOVED slot %d" % slot in log, d.log_tail()
    # the scanner keeps leasing the moved shard: a failing branch there is retried
    retry = gid_in_shard(shard, "retry")
    stub.plan("M-" + retry, [ERROR])
    submit_ok(d, saga(retry, [(stub.url("M-" + retry), stub.url("MR-" + retry))]))
    d.wait_status(retry, S, timeout=10)
    assert stub.count("M-" + retry) == 2
    # /all still lists the shard's transactions, now read from dst
    st, body = d.api("GET", "/all?limit=1000")
    assert st == 200 and {old, mid, new, retry} <= {t["gid"] for t in body["transactions"]}, body


def test_cluster_auth_and_one_live_seed(start_cdtmd, stub, cluster):
    """Store.Password is sent to every master; one reachable seed is enough (the
    other is down; the live one is given without a port and takes Store.Port)."""
    for p in cluster.ports:
        assert cluster.cmd(p, "CONFIG", "SET", "requirepass", "s3cret") == "OK"
    cluster.password = "s3cret"
    try:
        dead = free_port()
        d = start_cdtmd(STORE_HOST="127.0.0.1:%d, 127.0.0.1" % dead,
                        STORE_PORT=cluster.ports[1], STORE_PASSWORD="s3cret")
        gids = [gid_in_shard(s, "auth") for s in range(SHARDS)]
        for g in gids:
            submit_ok(d, two_step_saga(stub, g, wait_result=True))
        assert all(d.status(g) == S for g in gids)
        assert all(cluster.keys(p, d.prefix) for p in cluster.ports)
        log = d.log.read_text(errors="replace")
        assert "cannot connect to redis 127.0.0.1:%d" % dead in log
        assert "AUTH" not in log  # no AUTH failure on any node
    finally:
        for p in cluster.ports:
            assert cluster.cmd(p, "CONFIG", "SET", "requirepass", "") == "OK"
        cluster.password = None


def test_cluster_flag_with_one_address(start_cdtmd, stub, cluster):
    """Store.Cluster: true with a single address (a managed cluster's one
    endpoint): dtmd reads the slot map from it and reaches every master."""
    d = start_cdtmd(STORE_HOST="127.0.0.1:%d" % cluster.ports[1], STORE_CLUSTER="true")
    gids = [gid_in_shard(s, "flag") for s in range(SHARDS)]
    for g in gids:
        submit_ok(d, two_step_saga(stub, g, wait_result=True))
    assert all(d.status(g) == S for g in gids)
    assert all(cluster.keys(p, d.prefix) for p in cluster.ports)
    assert "store: cluster slot map from 127.0.0.1:%d" % cluster.ports[1] in d.log.read_text(errors="replace")


def test_cluster_master_restart(start_cdtmd, stub, cluster):
    """A master goes away and comes back (same identity and slots, data lost): dtmd
    answers 503 for its shards meanwhile, serves the other shards, reconnects."""
    d = start_cdtmd()
    victim = cluster.owner(key_slot("0"))
    down = next(s for s in range(SHARDS) if cluster.owner(key_slot(str(s))) == victim)
    up = next(s for s in range(SHARDS) if cluster.owner(key_slot(str(s))) != victim)
    cluster.kill(victim)
    try:
        g = gid_in_shard(down, "down")
        wait_until(lambda: d.api("GET", "/query?gid=" + g)[0] == 503, 5, msg="503 while down")
        st, body = d.submit(two_step_saga(stub, g))
        assert st == 503, (st, body)
        other = gid_in_shard(up, "up")
        submit_ok(d, two_step_saga(stub, other, wait_result=True))
    finally:
        cluster.restart(victim)
    cluster.wait_ok()
    g = gid_in_shard(down, "back")
    wait_until(lambda: d.api("GET", "/query?gid=" + g)[0] == 200, 10, msg="reconnected")
    submit_ok(d, two_step_saga(stub, g, wait_result=True))
    assert d.status(g) == S


def test_cluster_queue_bound_is_per_node(start_cdtmd, stub, cluster):
    """Commands for a node that is down wait (up to 2 s) for it to come back,
    at most Store.MaxQueued of them per node: the backlog of one dead master
    turns away its own overflow at once, not the commands that wait for
    another one."""
    d = start_cdtmd(STORE_MAX_QUEUED=5)
    owner = {s: cluster.owner(key_slot(str(s))) for s in range(SHARDS)}
    masters = sorted(set(owner.values()))
    assert len(masters) == 3
    a, b = masters[0], masters[1]
    sa = [s for s in range(SHARDS) if owner[s] == a]
    sb = [s for s in range(SHARDS) if owner[s] == b]
    cluster.kill(a)
    cluster.kill(b)
    try:
        probe = gid_in_shard(sa[0], "probe")
        wait_until(lambda: d.api("GET", "/query?gid=" + probe)[0] == 503, 10, msg="503 while down")
        results = {}

        def send(key, gid):
            t0 = time.monotonic()
            st, _ = d.api("POST", "/submit", body=two_step_saga(stub, gid), timeout=10)
            results[key] = (st, time.monotonic() - t0)
        threads = [threading.Thread(target=send, args=(("a", i), gid_in_shard(sa[i % len(sa)], "qa")))
                   for i in range(20)]
        for t in threads:
            t.start()
        time.sleep(0.3)  # a's queue is full now
        more = [threading.Thread(target=send, args=(("b", i), gid_in_shard(sb[i % len(sb)], "qb")))
                for i in range(3)]
        for t in more:
            t.start()
        for t in threads + more:
            t.join(15)
    finally:
        cluster.restart(a)
        cluster.restart(b)
    cluster.wait_ok()
    assert len(results) == 23, results
    assert all(st == 503 for st, _ in results.values()), results
    fast_a = [s for (k, _), (st, s) in results.items() if k == "a" and s < 1.0]
    assert len(fast_a) >= 10, "a's overflow beyond 5 queued must be turned away at once: %r" % results
    slow_b = [s for (k, _), (st, s) in results.items() if k == "b" and s >= 1.5]
    assert len(slow_b) == 3, "b's commands must have waited for b, not been refused: %r" % results
    g = gid_in_shard(sa[0], "back")
    wait_until(lambda: d.api("GET", "/query?gid=" + g)[0] == 200, 10, msg="reconnected")
    submit_ok(d, two_step_saga(stub, g, wait_result=True))


# --------------------------------------------------------------------------
# CRC16 slots against Redis' own answers

def test_cluster_wait_replicas_without_replicas_is_503(start_cdtmd, stub, cluster):
    """Store.WaitReplicas on a cluster: the WAIT goes to the master of the
    slot written (store.c sends it on that node's connection); these masters
    have no replica, so every submit is 503 naming replication, never 200,
    whatever master its shard lives on; reads need no WAIT."""
    d = start_cdtmd(STORE_WAIT_REPLICAS="1", STORE_WAIT_TIMEOUT="0.2")
    for g in shard_gids("wr")[:6]:
        st, resp = d.submit(two_step_saga(stub, g))
        assert st == 503, (g, st, resp)
        assert "replicas" in resp["message"] and "Store.WaitReplicas" in resp["message"], resp
        st, q = d.api("GET", "/query?gid=" + g)
        assert st == 200, (st, q)


def test_cluster_keyslot_matches_redis(cluster):
    """The slot arithmetic (the same as cluster_slot.c; the unit test checks the C
    code against a table of Redis answers) against CLUSTER KEYSLOT for many keys:
    dtmd's key names for every shard, odd hash tags, random bytes."""
    import random
    rnd = random.Random(16384)
    keys = []
    for prefix in ("dtmd", "c1a2b3c4", "", "{x}", "a{b"):
        for s in range(SHARDS):
            keys += ["%s{%d}:due" % (prefix, s), "%s{%d}:idx" % (prefix, s), "%s{%d}:ix" % (prefix, s),
                     "%s{%d}:exp" % (prefix, s),
                     "%s{%d}:t:%s" % (prefix, s, new_gid("k"))]
        keys.append("%s{kv}:kv:topics" % prefix)
    keys += ["", "{}", "{", "}", "}{a}", "a{}b{c}", "{{}}", "foo{{bar}}zap", "\u00e9t\u00e9"]
    for _ in range(300):
        n = rnd.randrange(0, 24)
        keys.append(bytes(rnd.choice(b"ab{}:-_x\\x00\\xff0123") for _ in range(n)))
    port = cluster.ports[0]
    with Resp("127.0.0.1", port) as r:
        wrong = []
        for k in keys:
            want = r("CLUSTER", "KEYSLOT", k)
            if key_slot(k) != want:
                wrong.append((k, key_slot(k), want))
    assert not wrong, wrong[:10]


# --------------------------------------------------------------------------
# the saga and msg end-to-end flows, on the cluster (a representative subset)

import test_msg as _tm  # noqa: E402
import test_saga as _ts  # noqa: E402

FLOWS = [
    (_ts, "test_saga_failure_compensates_in_reverse", {"reply": _ts.FAIL_409}),
    (_ts, "test_saga_ongoing_then_success", {"reply": (425, "", 0)}),
    (_ts, "test_saga_http_error_retried_with_backoff", {}),
    (_ts, "test_saga_timeout_to_fail", {}),
    (_ts, "test_saga_retry_limit_exceeded", {}),
    (_ts, "test_concurrent_saga_orders_parallel_then_dependent", {}),
    (_ts, "test_concurrent_rollback_order", {}),
    (_ts, "test_wait_result_failure", {}),
    (_ts, "test_duplicate_submit", {}),
    (_ts, "test_concurrent_duplicate_submits", {}),
    (_ts, "test_query_shape", {}),
    (_ts, "test_dtmd_sigkill_mid_saga", {"mode": "hang"}),
    (_ts, "test_two_dtmd_share_one_redis", {}),
    (_tm, "test_msg_concurrent", {}),
    (_tm, "test_msg_concurrent_only_failed_branch_retried", {}),
    (_tm, "test_msg_abort_submitted_is_409", {}),
    (_tm, "test_msg_prepare_idempotent_then_conflicts", {}),
    (_tm, "test_msg_delay", {}),
    (_tm, "test_msg_second_branch_retried_first_not_repeated", {}),
    (_tm, "test_msg_wait_result_success", {"prepare_first": True}),
    (_tm, "test_msg_check_back_intervals", {}),
    (_tm, "test_msg_abort_during_check_back", {}),
    (_tm, "test_topic_fanout", {}),
    (_tm, "test_topic_concurrent", {}),
]


@pytest.mark.parametrize("mod,name,extra", FLOWS, ids=[f[1][5:] for f in FLOWS])
def test_cluster_flow(start_cdtmd, stub, request, mod, name, extra):
    import inspect
    fn = getattr(mod, name)
    args = {}
    params = inspect.signature(fn).parameters
    if "dtmd" in params:
        args["dtmd"] = start_cdtmd()
    if "start_dtmd" in params:
        args["start_dtmd"] = start_cdtmd
    if "stub" in params:
        args["stub"] = stub
    if "gid" in params:
        args["gid"] = new_gid(name[5:])
    args.update(extra)
    fn(**args)


# --------------------------------------------------------------------------
# traffic while the cluster changes

def run_traffic(d, stub, gids, stop, errors, pause=0.01, gate=None):
    """Submit two-step sagas until stop is set; a 503 (store briefly
    unavailable) is retried, as a client would. Accepted gids go to gids.
    While gate (an Event) is clear, no new submit starts."""
    i = 0
    try:
        while not stop.is_set():
            if gate is not None:
                gate.wait()
            g = gid_in_shard(i % SHARDS, "traffic")
            i += 1
            body = two_step_saga(stub, g)
            deadline = time.monotonic() + 20
            while True:
                st, resp = d.submit(body)
                if (st, resp) == (200, OK):
                    gids.append(g)
                    break
                if st == 503:
                    run_traffic.retried_503 = getattr(run_traffic, "retried_503", 0) + 1
                if st != 503 or time.monotonic() > deadline:
                    errors.append((g, st, resp))
                    return
                time.sleep(0.05)
            time.sleep(pause)
    except Exception as e:  # noqa: BLE001
        errors.append(e)


def check_all_done(d, stub, gids):
    import test_faults as tf
    for g in gids:
        q = d.wait_status(g, S, timeout=30)
        assert [b["status"] for b in q["branches"]] == ["prepared", S, "prepared", S], q
    calls = [c for c in stub.calls() if c.query.get("gid") in set(gids)]
    for g in gids:
        for name in ("TransOut", "TransIn"):
            assert [c for c in calls if c.query["gid"] == g and c.name == name], (g, name)
    tf.check_no_call_after_success(d, gids, calls)
    assert not [c for c in calls if c.name.endswith("Revert")], "compensations ran"


def test_cluster_slot_migration_during_traffic(start_cdtmd, stub, cluster):
    d = start_cdtmd()
    shard = 11
    slot = key_slot(str(shard))
    src = cluster.owner(slot)
    dst = next(p for p in cluster.ports if p != src)
    stub.set_default("TransOut", 200, '{"dtm_result":"SUCCESS"}', 0.02)
    gids, errors, stop = [], [], threading.Event()
    th = threading.Thread(target=run_traffic, args=(d, stub, gids, stop, errors))
    th.start()
    try:
        wait_until(lambda: len(gids) >= 20, 10, msg="traffic")
        cluster.migrate_start(slot, src, dst)
        # move the keys a few at a time while sagas keep arriving
        for _ in range(20):
            keys = cluster.cmd(src, "CLUSTER", "GETKEYSINSLOT", slot, 3)
            if keys:
                assert cluster.cmd(src, "MIGRATE", "127.0.0.1", dst, "", 0, 5000,
                                   "KEYS", *keys) == "OK"
            time.sleep(0.05)
        cluster.migrate_finish(slot, src, dst)
        n = len(gids)
        wait_until(lambda: len(gids) >= n + 20, 10, msg="traffic after the migration")
    finally:
        stop.set()
        th.join(30)
    assert not errors, errors
    assert cluster.owner(slot) == dst
    in_shard = [g for g in gids if shard_of(g) == shard]
    assert len(in_shard) >= 3, len(in_shard)
    check_all_done(d, stub, gids)
    # give the slot back for the following tests
    cluster.migrate_start(slot, dst, src)
    cluster.migrate_finish(slot, dst, src)


def test_cluster_two_dtmd_one_killed_mid_stream(start_cdtmd, stub):
    import test_faults as tf
    d1 = start_cdtmd(TIMEOUT_TO_FAIL=60)
    d2 = start_cdtmd(TIMEOUT_TO_FAIL=60)
    import random
    rnd = random.Random(3)
    for n in ("TransOut", "TransIn"):
        stub.plan(n, [lambda c: (200, '{"dtm_result":"SUCCESS"}', rnd.random() * 0.15)] * 200)
    gids, kill_at = [], None
    for i in range(64):
        g = gid_in_shard(i % SHARDS, "two")
        d = d1 if i % 2 == 0 and kill_at is None else d2
        submit_ok(d, two_step_saga(stub, g))
        gids.append(g)
        if i == 32:
            kill_at = time.monotonic()
            d1.kill(signal.SIGKILL)
        time.sleep(0.02)
    check_all_done(d2, stub, gids)
    calls = [c for c in stub.calls() if c.query.get("gid") in set(gids)]
    tf.check_no_overlap(calls, exclude=lambda c: c.start <= kill_at and
                        (c.end is None or c.end >= kill_at))


# --------------------------------------------------------------------------
# master failover (a cluster with replicas)

@pytest.fixture(scope="module")
def rcluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("rcluster"), n=3, replicas=1, node_timeout=1000)
    try:
        c.start()
        yield c
    finally:
        c.stop()


def masters_and_replicas(c):
    """{master port: replica port} from CLUSTER NODES of a live node."""
    for p in c.ports:
        if c.procs[p].poll() is None:
            text = c.cmd(p, "CLUSTER", "NODES").decode()
            break
    by_id, rows = {}, []
    for line in text.splitlines():
        f = line.split()
        port = int(f[1].split("@")[0].rsplit(":", 1)[1])
        by_id[f[0]] = port
        rows.append((f, port))
    out = {}
    for f, port in rows:
        if "slave" in f[2] and "fail" not in f[2]:
            out[by_id[f[3]]] = port
    return out


def replica_synced(c, replica):
    """The replica has finished its initial sync: a manual CLUSTER FAILOVER
    issued before that waits for an offset it never reaches, and Redis
    abandons it after twice cluster-node-timeout."""
    info = c.cmd(replica, "INFO", "replication").decode()
    return "master_link_status:up" in info and "master_sync_in_progress:0" in info


def test_cluster_wait_replicas_with_replicas(rcluster, stub, tmp_path, request):
    """Store.WaitReplicas 1 on a cluster whose masters each have a replica:
    every shard's saga is acknowledged (its WAIT on its own master) and
    finishes. Runs before the failover test, which kills a master."""
    c = rcluster
    from test_store_robust import write_confirmed
    for master, replica in masters_and_replicas(c).items():
        wait_until(lambda r=replica: replica_synced(c, r), 20, msg="replica in sync")
        # a key of a slot this master serves, written and confirmed by WAIT
        ranges = [(int(e[0]), int(e[1])) for e in c.cmd(master, "CLUSTER", "SLOTS")
                  if int(e[2][1]) == master]
        key = next(k for k in ("wrprobe-%d" % i for i in range(100000))
                   if any(a <= key_slot(k) <= b for a, b in ranges))

        def confirmed(m=master, k=key):
            with Resp("127.0.0.1", m) as r:
                return write_confirmed(r, k)
        wait_until(confirmed, 20, msg="master :%d: a write confirmed by its replica" % master)
    env = dict(DEFAULT_ENV)
    env.update({
        "STORE_DRIVER": "redis",
        "STORE_HOST": ",".join("127.0.0.1:%d" % p for p in c.ports),
        "STORE_PORT": str(c.ports[0]),
        "STORE_REDIS_PREFIX": "wr%s" % uuid.uuid4().hex[:6],
        "HTTP_HOST": "127.0.0.1",
        "HTTP_PORT": str(free_port()),
        "STORE_WAIT_REPLICAS": "1",
        "STORE_WAIT_TIMEOUT": "1.5",  # slack for a loaded machine, below CommandTimeout (2 s)
    })
    d = Dtmd(env, tmp_path, name="dtmd1")
    _artifact(request, "dtmd1 log tail", lambda: d.log_tail(150))
    try:
        d.start()
        gids = shard_gids("wr")
        wait_until(lambda: store_ready(d, gids), 10, interval=0.05, msg="store ready")
        for g in gids:
            submit_ok(d, two_step_saga(stub, g))
        for g in gids:
            d.wait_status(g, S, timeout=15)
    finally:
        problems = teardown_problems([d])
    assert not problems, "\n\n".join(problems)


def test_cluster_master_failover_under_traffic(rcluster, stub, tmp_path, request):
    c = rcluster
    started = []
    env = dict(DEFAULT_ENV)
    env.update({
        "STORE_DRIVER": "redis",
        "STORE_HOST": ",".join("127.0.0.1:%d" % p for p in c.ports),
        "STORE_PORT": str(c.ports[0]),
        "STORE_REDIS_PREFIX": "fo%s" % uuid.uuid4().hex[:6],
        "HTTP_HOST": "127.0.0.1",
        "HTTP_PORT": str(free_port()),
        "TIMEOUT_TO_FAIL": "60",
    })
    d = Dtmd(env, tmp_path, name="dtmd1")
    started.append(d)
    _artifact(request, "dtmd1 log tail", lambda: d.log_tail(150))
    for p in c.ports:
        _artifact(request, "redis :%d log tail" % p, lambda p=p: c.log(p))
    try:
        d.start()
        wait_until(lambda: store_ready(d, shard_gids()), 10, interval=0.05, msg="store ready")
        gids, errors, stop, gate = [], [], threading.Event(), threading.Event()
        gate.set()
        th = threading.Thread(target=run_traffic, args=(d, stub, gids, stop, errors, 0.005, gate))
        th.start()
        try:
            wait_until(lambda: len(gids) >= 20, 10, msg="traffic")
            # 1. a manual failover: the replica takes over, the old master becomes its replica
            pairs = masters_and_replicas(c)
            master, replica = sorted(pairs.items())[0]
            wait_until(lambda: replica_synced(c, replica), 20, msg="replica in sync")
            assert c.cmd(replica, "CLUSTER", "FAILOVER") == "OK"
            wait_until(lambda: "role:master" in c.cmd(replica, "INFO", "replication").decode(),
                       10, msg="replica promoted")
            n = len(gids)
            wait_until(lambda: len(gids) >= n + 20, 15, msg="traffic after CLUSTER FAILOVER")
            # 2. a master killed: its replica is elected after cluster-node-timeout
            # Redis replication is asynchronous: a submit acknowledged in the
            # master's last moment could die with it (a Redis limit, docs/durability.md).
            # So new submits pause while the replica catches up; the passes
            # already running go on writing and are killed mid-flight.
            pairs = masters_and_replicas(c)
            victim, heir = sorted(pairs.items())[-1]
            gate.clear()
            time.sleep(0.1)  # a submit under way finishes

            def offset(port, field):
                info = c.cmd(port, "INFO", "replication").decode()
                return int(info.split(field + ":")[1].split()[0])
            wait_until(lambda: offset(heir, "slave_repl_offset") >=
                       offset(victim, "master_repl_offset"), 5, interval=0.01,
                       msg="replica caught up")
            c.kill(victim)
            gate.set()
            wait_until(lambda: "role:master" in c.cmd(heir, "INFO", "replication").decode(),
                       20, msg="replica elected after the master died")
            c.wait_ok(ports=[p for p in c.ports if p != victim])
            n = len(gids)
            wait_until(lambda: len(gids) >= n + 20, 15, msg="traffic after the master died")
        finally:
            stop.set()
            th.join(30)
        assert not errors, errors
        check_all_done(d, stub, gids)
        log = d.log.read_text(errors="replace")
        assert "connection lost" in log, d.log_tail()
    finally:
        problems = teardown_problems(started)
    assert not problems, "\n\n".join(problems)
