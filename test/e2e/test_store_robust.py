"""The store when Redis misbehaves: Store.CommandTimeout (a paused Redis),
Store.WaitReplicas / Store.WaitTimeout (acknowledged means replicated) and
Redis Sentinel (a failover followed without a restart). See docs/durability.md.

Every server is a real process on loopback: redis-server, replicas started
with --replicaof, sentinels as `redis-server <conf> --sentinel`.
"""

import os
import signal
import threading
import time

import pytest

from dtmtest import (REDIS_BIN, S, TIMEOUT_SCALE, RedisServer, free_port, new_gid, saga,
                     wait_until)


def timed(fn, *a, **kw):
    t0 = time.monotonic()
    out = fn(*a, **kw)
    return out, time.monotonic() - t0


def two_steps(stub, gid):
    return saga(gid, [(stub.url("TransOut"), stub.url("TransOutRevert")),
                      (stub.url("TransIn"), stub.url("TransInRevert"))])


def start_replica(tmp_path, name, master):
    """A replica of master (a RedisServer), synced at once (no 5 s diskless
    sync delay); it may become a master itself, so it syncs its own
    replicas at once too."""
    master.cmd("CONFIG", "SET", "repl-diskless-sync-delay", "0")
    r = RedisServer(tmp_path / name, ["--replicaof", "127.0.0.1", master.port,
                                      "--repl-diskless-sync-delay", "0"])
    r.start()
    return r


def write_confirmed(client, key, n=1):
    """A write on this connection that WAIT confirms n replicas have: the
    replicas are really streaming (after a diskless sync a master streams to
    a replica only from its first REPLCONF ACK)."""
    client("SET", key, "1")
    return client("WAIT", n, 200) >= n


def wait_replica_synced(master, n=1, timeout=10.0):
    """n replicas of master confirm writes."""
    def ok():
        with master.client() as r:
            return write_confirmed(r, "probe:replicated", n)
    wait_until(ok, timeout, msg="%d replica(s) confirming writes on port %d" % (n, master.port))


# ---- Store.CommandTimeout ---------------------------------------------------

@pytest.mark.no_valgrind("asserts answers within a wall-clock bound while Redis is paused")
def test_paused_redis_gets_503_within_command_timeout(redis_server, start_dtmd, stub):
    """SIGSTOP on Redis: query and submit answer 503 naming the timeout within
    about Store.CommandTimeout (not after the pause); after SIGCONT everything
    works and a saga that was running when Redis stopped finishes."""
    d = start_dtmd(STORE_COMMAND_TIMEOUT="0.5")
    before = new_gid("pre")
    stub.plan("TransIn", [(200, {"dtm_result": "SUCCESS"}, 0.8)])  # in flight during the pause
    st, resp = d.submit(two_steps(stub, before))
    assert st == 200, resp
    stub.wait_calls("TransIn", 1, timeout=5)
    redis_server.proc.send_signal(signal.SIGSTOP)
    try:
        (st, resp), took = timed(d.api, "GET", "/query?gid=" + before, timeout=30)
        assert st == 503, (st, resp)
        assert "Store.CommandTimeout" in resp["message"], resp
        assert took < 3.0, took
        # Later requests, once the stuck connection was dropped and opened
        # again (to a Redis that still does not answer), fail the same way.
        for _ in range(3):
            (st, resp), took = timed(d.submit, two_steps(stub, new_gid("during")))
            assert st == 503, (st, resp)
            assert "store unavailable" in resp["message"], resp
            assert took < 3.0, took
        time.sleep(1.0)  # the branch call's result comes back while Redis is paused
    finally:
        redis_server.proc.send_signal(signal.SIGCONT)
    d.wait_status(before, S, timeout=15)
    after = new_gid("post")
    wait_until(lambda: d.submit(two_steps(stub, after))[0] == 200, 10,
               msg="submit accepted after SIGCONT")
    d.wait_status(after, S, timeout=15)
    assert d.running


def test_store_that_lost_its_data_is_driven_again(redis_server, start_dtmd, stub):
    """Redis loses everything (FLUSHALL here; a restart without its data or a
    failover to a replica behind do the same) after this process's liveness
    had lapsed once (so it was in a later epoch than the first): the store's
    epoch counter starts again, yet the process must take up new
    transactions at once. It ignored the lower epoch as a late answer and
    stopped driving anything, for good."""
    d = start_dtmd()
    first = new_gid("first")
    assert d.submit(two_steps(stub, first))[0] == 200
    d.wait_status(first, S, timeout=15)
    d.proc.send_signal(signal.SIGSTOP)  # past the 2 s liveness TTL: a lapse
    time.sleep(2.5)
    d.proc.send_signal(signal.SIGCONT)
    lapsed = new_gid("lapsed")
    wait_until(lambda: d.submit(two_steps(stub, lapsed))[0] == 200, 10)
    d.wait_status(lapsed, S, timeout=15)
    with redis_server.client() as r:
        r("FLUSHALL")
    after = new_gid("after")
    wait_until(lambda: d.submit(two_steps(stub, after))[0] == 200, 10)
    d.wait_status(after, S, timeout=15)
    assert d.running


# ---- Store.WaitReplicas ------------------------------------------------------

def test_wait_replicas_without_replica_is_503_never_200(redis_server, start_dtmd, stub):
    """WaitReplicas 1 with no replica: the write happens on the master but is
    not confirmed: 503 naming replication, within WaitTimeout (+ margin)."""
    d = start_dtmd(STORE_WAIT_REPLICAS="1", STORE_WAIT_TIMEOUT="0.3")
    for _ in range(3):
        gid = new_gid("norep")
        (st, resp), took = timed(d.submit, two_steps(stub, gid))
        assert st == 503, (st, resp)
        assert "replicas" in resp["message"] and "Store.WaitReplicas" in resp["message"], resp
        assert took < 3.0 * TIMEOUT_SCALE, took
        # Reads need no WAIT: query answers (the saga is stored on the master).
        st, q = d.api("GET", "/query?gid=" + gid)
        assert st == 200, (st, q)


def test_wait_replicas_with_replica_succeeds(redis_server, start_dtmd, stub, tmp_path):
    """With a replica attached, WaitReplicas 1 acknowledges and the saga finishes;
    the replica holds the finished transaction when dtmd reports it."""
    rep = start_replica(tmp_path, "replica", redis_server)
    try:
        wait_replica_synced(redis_server)
        # WaitTimeout: slack for a loaded machine, below CommandTimeout (2 s)
        d = start_dtmd(STORE_WAIT_REPLICAS="1", STORE_WAIT_TIMEOUT="1.5")
        gid = new_gid("rep")
        st, resp = d.submit(two_steps(stub, gid))
        assert st == 200, resp
        d.wait_status(gid, S, timeout=15)
        # WAIT confirmed every write before dtmd went on: the replica has them.
        assert any(gid in k for k in rep.keys()), rep.keys()
    finally:
        rep.stop()


# ---- Redis Sentinel -----------------------------------------------------------

class Sentinel:
    """A sentinel: `redis-server sentinel.conf --sentinel` (the Debian
    redis-sentinel package need not be installed)."""

    def __init__(self, workdir, master_port, quorum=2):
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.conf = self.dir / "sentinel.conf"
        self.log = self.dir / "sentinel.log"
        self.conf.write_text(
            "port %d\nbind 127.0.0.1\nprotected-mode no\ndaemonize no\n"
            "logfile %s\ndir %s\n"
            "sentinel monitor mymaster 127.0.0.1 %d %d\n"
            "sentinel down-after-milliseconds mymaster 1000\n"
            "sentinel failover-timeout mymaster 3000\n"
            "sentinel parallel-syncs mymaster 1\n"
            % (self.port, self.log, self.dir, master_port, quorum))
        self.proc = None

    def start(self):
        import subprocess
        self.proc = subprocess.Popen([REDIS_BIN, str(self.conf), "--sentinel"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.STDOUT)
        probe = RedisServer.__new__(RedisServer)
        probe.port = self.port
        self.client = probe.client
        wait_until(self._ready, 10, msg="sentinel on port %d" % self.port)
        return self

    def _ready(self):
        try:
            return self.cmd("PING") == "PONG"
        except OSError:
            return False

    def cmd(self, *args):
        with self.client() as r:
            return r(*args)

    def master_port(self):
        addr = self.cmd("SENTINEL", "get-master-addr-by-name", "mymaster")
        return int(addr[1])

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


@pytest.mark.no_valgrind("a failover within a few seconds while sagas stream in")
def test_sentinel_failover_loses_no_acknowledged_saga(redis_server, start_dtmd, stub, tmp_path):
    """Master + replica + 3 sentinels; dtmd finds the master through them
    (Store.SentinelAddrs; Store.Host points nowhere). Sagas stream in with
    WaitReplicas 1; the master is SIGKILLed; the sentinels promote the replica
    and dtmd follows without a restart. Every saga answered 200 ends succeed."""
    rep = start_replica(tmp_path, "replica", redis_server)
    sentinels, extra = [], []
    try:
        wait_replica_synced(redis_server)
        for i in range(3):
            sentinels.append(Sentinel(tmp_path / ("sentinel%d" % i), redis_server.port).start())

        def sentinels_ready():  # each knows the replica and the two other sentinels
            for s in sentinels:
                if len(s.cmd("SENTINEL", "replicas", "mymaster")) < 1:
                    return False
                if len(s.cmd("SENTINEL", "sentinels", "mymaster")) < 2:
                    return False
            return True
        wait_until(sentinels_ready, 15, msg="sentinels discovered each other and the replica")

        d = start_dtmd(STORE_HOST="127.0.0.1", STORE_PORT=str(free_port()),
                       STORE_SENTINEL_ADDRS=",".join("127.0.0.1:%d" % s.port for s in sentinels),
                       STORE_SENTINEL_MASTER="mymaster",
                       STORE_WAIT_REPLICAS="1", STORE_WAIT_TIMEOUT="0.5")
        pid = d.proc.pid
        acked, statuses, stop = [], {}, threading.Event()

        def stream():
            while not stop.is_set():
                gid = new_gid("sn")
                try:
                    st, _ = d.submit(two_steps(stub, gid))
                except OSError:
                    st = None
                statuses[st] = statuses.get(st, 0) + 1
                if st == 200:
                    acked.append((time.monotonic(), gid))
                time.sleep(0.02)
        t = threading.Thread(target=stream, daemon=True)
        t.start()
        wait_until(lambda: len(acked) >= 10, 10, msg="sagas acknowledged before the failover")
        old_master = redis_server.port
        redis_server.stop(signal.SIGKILL)
        killed_at = time.monotonic()
        wait_until(lambda: sentinels[0].master_port() == rep.port, 20,
                   msg="the sentinels promoted the replica")
        # The new master has no replica yet: WaitReplicas 1 needs one.
        extra.append(start_replica(tmp_path, "replica2", rep))
        wait_until(lambda: any(ts > killed_at + 1 for ts, _ in acked), 20,
                   msg="a saga acknowledged after the failover (dtmd follows the new master)")
        time.sleep(1.0)
        stop.set()
        t.join(10)
        assert d.running and d.proc.pid == pid, "dtmd was restarted or died"
        assert old_master != rep.port
        for _, gid in list(acked):
            d.wait_status(gid, S, timeout=20)
        assert statuses.get(500, 0) == 0, statuses
    finally:
        for s in sentinels:
            s.stop()
        for r in extra:
            r.stop()
        rep.stop()


def test_sentinel_and_cluster_exclude_each_other(tmp_path):
    import subprocess
    from dtmtest import DTMD_BIN
    env = dict(os.environ, STORE_HOST="127.0.0.1:7000,127.0.0.1:7001",
               STORE_SENTINEL_ADDRS="127.0.0.1:26379")
    p = subprocess.run([str(DTMD_BIN), "--check-config"], env=env, capture_output=True,
                       text=True, timeout=30)
    assert p.returncode != 0
    assert "exclude each other" in p.stderr, p.stderr
