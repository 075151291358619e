"""Faults dtmd must survive (issue 5, "Faults survived"): real processes only.

* dtmd SIGKILLed at random points during a stream of 200 mixed transactions
  (saga, msg, tcc), restarted each time: every transaction reaches its right
  final state; no branch is called again after its success was recorded; no
  compensation runs for an action that never started.
* Redis stopped for 5 s: submits meanwhile get 503 with a clear message,
  nothing accepted is lost, processing resumes; a Redis back within the 2 s
  grace does not surface as an error at all.
* Branch services that hang, reset the connection, answer garbage or answer
  slowly: timeouts apply, back-off grows, other transactions are not slowed.
* Two dtmd processes on one Redis, one SIGKILLed mid-stream: the other
  finishes everything; no branch is driven by both at once.
* SIGTERM: stops accepting, exits 0, hands back the leases of what it was
  driving, so the other process takes over at once.
* Upgrade: a transaction a killed process left in the hash layout of an
  earlier dtmd is recovered and finished.

The call log checks work on the stub's record of every call (wall-clock start
time) against the success times dtmd stored (branch finish_time, ms).
"""

import json
import os
import random
import signal
import socket
import threading
import time
import urllib.parse

import pytest

from dtmtest import (F, P, S, SUCCESS_BODY, http_request, new_gid, parse_time, saga,
                     wait_until)

OK = {"dtm_result": "SUCCESS"}


# --------------------------------------------------------------------------
# helpers

def submit_ok(d, body, path="/submit"):
    st, resp = d.submit(body, path)
    assert (st, resp) == (200, OK), "%s %s -> %s %r" % (path, body.get("gid"), st, resp)


def ms_of(t):
    return parse_time(t).timestamp() * 1000.0


def call_key(c):
    return (c.query.get("gid"), c.name, c.query.get("branch_id"), c.query.get("op"))


def check_no_call_after_success(d, gids, calls, slack_ms=2.0):
    """No call of a branch starts after the branch's success was stored."""
    by_branch = {}
    for c in calls:
        by_branch.setdefault((c.query.get("gid"), c.query.get("branch_id"), c.query.get("op")),
                             []).append(c)
    bad = []
    for g in gids:
        for b in d.query(g)["branches"]:
            if b["status"] != S or not b.get("finish_time"):
                continue
            done = ms_of(b["finish_time"])
            for c in by_branch.get((g, b["branch_id"], b["op"]), []):
                if c.wall * 1000.0 > done + slack_ms:
                    bad.append("%s %s %s called at %.3f, success stored at %.3f"
                               % (g, b["branch_id"], b["op"], c.wall, done / 1000))
    assert not bad, "calls after the recorded success:\n" + "\n".join(bad[:20])


def check_no_overlap(calls, exclude=lambda c: False):
    """No two calls of one branch (gid, branch, op) in flight at the same time."""
    by = {}
    for c in calls:
        if not exclude(c):
            by.setdefault(call_key(c), []).append(c)
    bad = []
    for k, cs in by.items():
        cs.sort(key=lambda c: c.start)
        for a, b in zip(cs, cs[1:]):
            if a.end is None or b.start < a.end:
                bad.append("%s: %r overlaps %r" % (k, a, b))
    assert not bad, "overlapping calls:\n" + "\n".join(bad[:20])


def retrying(d, method, path, body, ok=(200,), timeout=30):
    """Send until dtmd answers one of ok (it may be restarting: connection
    refused, or 503 while its store reconnects). Returns (status, body)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            st, resp = d.api(method, path, body=body, timeout=10)
            last = (st, resp)
            if st in ok:
                return st, resp
        except OSError as e:
            last = e
        time.sleep(0.05)
    raise AssertionError("%s %s: no answer in %s within %ds; last %r" % (method, path, ok, timeout, last))


# --------------------------------------------------------------------------
# 1. SIGKILL at random points during 200 mixed transactions

def test_sigkill_at_random_points_during_200_mixed(start_dtmd, stub):
    rnd = random.Random(5)
    # a long timeout: restarts must not turn a good saga into a rolled back one
    d = start_dtmd(TIMEOUT_TO_FAIL=120, LOG_LEVEL="info")

    def reply(call):
        fail = call.name == "SA2" and call.query.get("gid", "").startswith("sf")
        delay = rnd.random() * 0.06
        return (409, '{"dtm_result":"FAILURE"}', delay) if fail else (200, SUCCESS_BODY, delay)
    # every reply goes through reply() (set_default takes a fixed tuple)
    for name in ("SA1", "SC1", "SA2", "SC2", "MA1", "MA2", "TC1", "TC2", "TX1", "TX2"):
        stub.plan(name, [reply] * 400)

    kinds = ["saga_ok", "saga_fail", "msg", "tcc_commit", "tcc_abort"]
    plan = [(kinds[i % len(kinds)], i) for i in range(200)]
    expected = {}
    lock = threading.Lock()
    errors = []

    def run_one(kind, i):
        prefix = {"saga_ok": "so", "saga_fail": "sf", "msg": "mm", "tcc_commit": "tc",
                  "tcc_abort": "ta"}[kind]
        g = "%s%03d-%s" % (prefix, i, new_gid("k")[-6:])
        if kind.startswith("saga"):
            body = saga(g, [(stub.url("SA1"), stub.url("SC1")), (stub.url("SA2"), stub.url("SC2"))])
            retrying(d, "POST", "/submit", body)
            want = S if kind == "saga_ok" else F
        elif kind == "msg":
            body = {"gid": g, "trans_type": "msg", "query_prepared": stub.url("QP"),
                    "steps": [{"action": stub.url("MA1")}, {"action": stub.url("MA2")}],
                    "payloads": ['{"n":1}', '{"n":2}']}
            retrying(d, "POST", "/prepare", body)
            retrying(d, "POST", "/submit", body)
            want = S
        else:
            retrying(d, "POST", "/prepare", {"gid": g, "trans_type": "tcc"})
            for bid, n in (("01", "1"), ("02", "2")):
                retrying(d, "POST", "/registerBranch", {
                    "gid": g, "trans_type": "tcc", "branch_id": bid, "data": '{"x":%s}' % n,
                    "confirm": stub.url("TC" + n), "cancel": stub.url("TX" + n)})
            if kind == "tcc_commit":
                retrying(d, "POST", "/submit", {"gid": g, "trans_type": "tcc"})
                want = S
            else:
                retrying(d, "POST", "/abort", {"gid": g, "trans_type": "tcc"})
                want = F
        with lock:
            expected[g] = (kind, want)

    def client(items):
        try:
            for kind, i in items:
                run_one(kind, i)
                time.sleep(0.03)  # a stream, not a burst: kills land all along it
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=client, args=(plan[k::4],)) for k in range(4)]
    for t in threads:
        t.start()
    kills, kill_times = 0, []
    while any(t.is_alive() for t in threads):
        time.sleep(0.1 + rnd.random() * 0.3)
        if not any(t.is_alive() for t in threads):
            break
        d.kill(signal.SIGKILL)
        kill_times.append(time.monotonic())
        kills += 1
        d.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert len(expected) == 200
    assert kills >= 3, "the stream ended before dtmd was killed a few times (%d)" % kills
    print("sigkill stream: %d kills" % kills)

    # every transaction reaches its right final state
    for g, (kind, want) in expected.items():
        q = d.wait_status(g, (S, F), timeout=30)
        assert q["transaction"]["status"] == want, (kind, q)
    calls = [c for c in stub.calls() if c.query.get("gid") in expected]
    check_no_call_after_success(d, list(expected), calls)
    # saga: every compensate has an action of its step that started before it
    starts = {}
    for c in calls:
        starts.setdefault((c.query["gid"], c.name), []).append(c.start)
    for c in calls:
        if c.name in ("SC1", "SC2"):
            act = "SA" + c.name[-1]
            assert any(s <= c.start for s in starts.get((c.query["gid"], act), [])), \
                "compensation %r without its action" % (c,)
    for g, (kind, want) in expected.items():
        names = {c.name for c in calls if c.query["gid"] == g}
        if kind == "saga_ok":
            assert names == {"SA1", "SA2"}, (g, names)
        elif kind == "saga_fail":
            assert names == {"SA1", "SA2", "SC1", "SC2"}, (g, names)
        elif kind == "msg":
            assert names == {"MA1", "MA2"}, (g, names)
        elif kind == "tcc_commit":
            assert names == {"TC1", "TC2"}, (g, names)
        else:
            assert names == {"TX1", "TX2"}, (g, names)
    repeated = len(calls) - len({call_key(c) for c in calls})
    # repeats are calls in flight at a kill, or answered before their result was stored
    print("sigkill stream: %d calls, %d repeated (at-least-once across kills)"
          % (len(calls), repeated))


# --------------------------------------------------------------------------
# 2. Redis down

def test_redis_down_5s_503_then_resumes(dtmd, stub, redis_server):
    # accepted before the outage, still running when Redis goes away
    before = [new_gid("before") for _ in range(5)]
    stub.set_default("Slow", 200, SUCCESS_BODY, 0.3)
    for g in before:
        submit_ok(dtmd, saga(g, [(stub.url("Slow"), ""), (stub.url("After"), "")]))
    stub.wait_calls("Slow", 1)
    redis_server.stop(signal.SIGKILL)
    t0 = time.monotonic()
    during = new_gid("during")
    st, resp = dtmd.submit(saga(during, [(stub.url("Other"), "")]))
    took = time.monotonic() - t0
    assert st == 503, (st, resp)
    assert isinstance(resp, dict) and "store unavailable" in resp.get("message", ""), resp
    assert took < 4, "the 503 took %.1fs" % took
    st, resp = dtmd.api("GET", "/query?gid=" + before[0])
    assert st == 503 and "store unavailable" in resp.get("message", ""), (st, resp)
    time.sleep(max(0, 5 - (time.monotonic() - t0)))
    assert dtmd.running
    redis_server.start()
    for g in before:
        q = dtmd.wait_status(g, S, timeout=30)
        assert [b["status"] for b in q["branches"]] == [P, S, P, S], q
        assert len([c for c in stub.calls("After") if c.query["gid"] == g]) == 1
    # nothing half-stored for the refused submit; a new one goes through
    assert dtmd.query(during)["transaction"] is None
    after = new_gid("after")
    submit_ok(dtmd, saga(after, [(stub.url("Other"), "")], wait_result=True))
    assert dtmd.status(after) == S


def test_redis_brief_restart_is_not_an_error(dtmd, stub, redis_server):
    """A Redis that is back within the grace (2 s) costs latency, not a 503:
    requests wait for the reconnection."""
    g0 = new_gid("warm")
    submit_ok(dtmd, saga(g0, [(stub.url("A"), "")], wait_result=True))
    redis_server.stop(signal.SIGKILL)
    results = {}

    def submit(i):
        g = new_gid("brief%d" % i)
        results[g] = dtmd.submit(saga(g, [(stub.url("A"), "")], wait_result=True))
    threads = [threading.Thread(target=submit, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    redis_server.start()
    for t in threads:
        t.join(15)
    assert all(r == (200, OK) for r in results.values()), results
    for g in results:
        assert dtmd.status(g) == S


# --------------------------------------------------------------------------
# 3. misbehaving branch services

class BadServer:
    """A TCP server whose behaviour is chosen by the request path:
    /hang (read the request, never answer), /reset (close at once, RST),
    /garbage (non-HTTP bytes, then close), /slow (a proper 200 after 0.5 s),
    /idle_close (200 with keep-alive; the connection is closed by the server
    once idle for 0.3 s, as services' idle timeouts do).
    Records (path, gid, monotonic time) of every request."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(256)
        self.port = self.sock.getsockname()[1]
        self.log = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.held = []
        self.accepted = 0
        self.idle_closed = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, what):
        return "http://127.0.0.1:%d/%s" % (self.port, what)

    def hits(self, what, gid=None):
        with self.lock:
            return [t for p, g, t in self.log if p == what and (gid is None or g == gid)]

    def _accept(self):
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.accepted += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            if self._path_only(conn) == "reset":
                return
            data = b""
            conn.settimeout(5)
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            line = data.split(b"\r\n", 1)[0].decode("latin-1")
            target = line.split(" ")[1] if " " in line else "/"
            u = urllib.parse.urlsplit(target)
            what = u.path.strip("/")
            gid = urllib.parse.parse_qs(u.query).get("gid", [""])[0]
            with self.lock:
                self.log.append((what, gid, time.monotonic()))
            if what == "hang":
                self.held.append(conn)
                self.stopping.wait(60)
            elif what == "garbage":
                conn.sendall(b"\x00\xff\xfegarbage garbage\r\n\r\n\x01\x02")
            elif what == "idle_close":
                self._serve_keep_alive(conn, data)
            elif what == "slow":
                time.sleep(0.5)
                body = SUCCESS_BODY.encode()
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
        except OSError:
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def _serve_keep_alive(self, conn, data):
        body = SUCCESS_BODY.encode()
        while True:
            head, _, rest = data.partition(b"\r\n\r\n")
            n = 0
            for h in head.split(b"\r\n")[1:]:
                k, _, v = h.partition(b":")
                if k.strip().lower() == b"content-length":
                    n = int(v)
            while len(rest) < n:  # the request's body
                chunk = conn.recv(65536)
                if not chunk:
                    return
                rest += chunk
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            data = rest[n:]
            conn.settimeout(0.3)
            try:
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
            except socket.timeout:
                with self.lock:
                    self.idle_closed += 1
                return  # idle: closed by the caller
            with self.lock:
                self.log.append(("idle_close", "", time.monotonic()))

    def _path_only(self, conn):
        """Peek at the request line; for /reset, log it and close with an RST."""
        conn.settimeout(5)
        try:
            head = conn.recv(4096, socket.MSG_PEEK)
        except OSError:
            return None
        line = head.split(b"\r\n", 1)[0].decode("latin-1")
        target = line.split(" ")[1] if line.count(" ") >= 2 else "/"
        u = urllib.parse.urlsplit(target)
        if u.path.strip("/") != "reset":
            return None
        gid = urllib.parse.parse_qs(u.query).get("gid", [""])[0]
        with self.lock:
            self.log.append(("reset", gid, time.monotonic()))
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        return "reset"

    def close(self):
        self.stopping.set()
        try:
            self.sock.close()
        except OSError:
            pass


@pytest.fixture
def bad_server():
    s = BadServer()
    yield s
    s.close()


@pytest.mark.parametrize("what", ["hang", "reset", "garbage"])
def test_bad_branch_is_retried_with_growing_backoff(start_dtmd, stub, bad_server, what):
    d = start_dtmd(REQUEST_TIMEOUT=0.5, RETRY_INTERVAL=0.2, RETRY_MAX_INTERVAL=1.6,
                   TIMEOUT_TO_FAIL=60)
    g = new_gid(what)
    submit_ok(d, saga(g, [(bad_server.url(what), stub.url("Comp"))]))
    wait_until(lambda: len(bad_server.hits(what, g)) >= 5, 15, msg="5 attempts")
    hits = bad_server.hits(what, g)
    gaps = [b - a for a, b in zip(hits, hits[1:])]
    if what == "hang":
        # every attempt ends by the request timeout, not earlier
        assert all(gap >= 0.5 for gap in gaps), gaps
    # back-off grows: 0.2, 0.4, 0.8, 1.6 (+ the attempt itself); compare ends
    assert gaps[3] > gaps[0] * 1.8, gaps
    assert d.status(g) == "submitted"
    assert stub.count("Comp") == 0
    q = d.query(g)
    assert q["transaction"]["next_cron_interval"] >= 1, q["transaction"]
    assert d.running


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_service_closing_an_idle_connection(start_dtmd, bad_server):
    """dtmd keeps watching a keep-alive connection between calls
    (branch_call.c); when the service closes it while idle, dtmd stops
    watching it instead of waking up for it again and again, and the next
    call opens a new connection."""
    d = start_dtmd()
    g1 = new_gid("idle1")
    submit_ok(d, saga(g1, [(bad_server.url("idle_close"), "")]))
    d.wait_status(g1, S)
    wait_until(lambda: bad_server.idle_closed == 1, 5, msg="the service closed the idle connection")
    time.sleep(0.1)
    c0 = cpu_seconds(d.proc.pid)
    time.sleep(1.0)
    busy = cpu_seconds(d.proc.pid) - c0
    assert busy < 0.3, "dtmd used %.2f s of CPU in 1 s after a peer closed an idle connection" % busy
    g2 = new_gid("idle2")
    submit_ok(d, saga(g2, [(bad_server.url("idle_close"), "")]))
    d.wait_status(g2, S)
    assert bad_server.accepted == 2
    assert len(bad_server.hits("idle_close")) == 2


def test_slow_branch_within_timeout_succeeds_once(dtmd, bad_server):
    g = new_gid("slow")
    submit_ok(dtmd, saga(g, [(bad_server.url("slow"), "")], wait_result=True))
    assert dtmd.status(g) == S
    assert len(bad_server.hits("slow", g)) == 1


def test_hanging_calls_do_not_slow_other_transactions(start_dtmd, stub, bad_server):
    d = start_dtmd(REQUEST_TIMEOUT=5, TIMEOUT_TO_FAIL=60, RETRY_INTERVAL=10)
    hung = [new_gid("hung") for _ in range(50)]
    for g in hung:
        submit_ok(d, saga(g, [(bad_server.url("hang"), "")]))
    wait_until(lambda: len(bad_server.hits("hang")) >= 50, 10, msg="50 hanging calls")
    st, m = d.api("GET", "/api/metrics")
    lat = []
    for i in range(10):
        g = new_gid("quick%d" % i)
        t0 = time.monotonic()
        submit_ok(d, saga(g, [(stub.url("Q1"), ""), (stub.url("Q2"), "")], wait_result=True))
        lat.append(time.monotonic() - t0)
    lat.sort()
    # 50 calls hang for 5 s; an unrelated two-step saga still takes milliseconds
    assert lat[len(lat) // 2] < 0.2 and lat[-1] < 0.5, lat
    assert len(bad_server.hits("hang")) == 50  # none timed out yet
    if st == 200 and isinstance(m, str):
        assert "dtmd_branch_calls_in_flight" in m


# --------------------------------------------------------------------------
# 4. two dtmd processes on one Redis, one SIGKILLed

def test_two_dtmd_one_killed_mid_stream(start_dtmd, stub):
    d1 = start_dtmd(TIMEOUT_TO_FAIL=60)
    d2 = start_dtmd(TIMEOUT_TO_FAIL=60)
    rnd = random.Random(7)
    for n in ("A1", "A2", "C1", "C2"):
        stub.plan(n, [lambda c: (200, SUCCESS_BODY, rnd.random() * 0.15)] * 200)
    gids, kill_at = [], []
    for i in range(60):
        g = new_gid("two%02d" % i)
        d = d1 if i % 2 == 0 and not kill_at else d2
        submit_ok(d, saga(g, [(stub.url("A1"), stub.url("C1")), (stub.url("A2"), stub.url("C2"))]))
        gids.append(g)
        if i == 30:
            kill_at.append(time.monotonic())
            d1.kill(signal.SIGKILL)
        time.sleep(0.02)
    for g in gids:
        q = d2.wait_status(g, S, timeout=30)
        assert [b["status"] for b in q["branches"]] == [P, S, P, S], q
    calls = [c for c in stub.calls() if c.query.get("gid") in set(gids)]
    check_no_call_after_success(d2, gids, calls)
    t = kill_at[0]
    # a call the killed process had in flight may overlap its retry by the survivor
    check_no_overlap(calls, exclude=lambda c: c.start <= t and (c.end is None or c.end >= t))
    assert not [c for c in calls if c.name.startswith("C")], "compensations ran"


def test_two_dtmd_slow_branch_not_called_twice_at_once(start_dtmd, stub):
    """The branch call (0.9 s) outlasts RetryInterval (0.3 s) but not RequestTimeout (1 s)."""
    d1 = start_dtmd()
    start_dtmd()
    gids = [new_gid("slow2") for _ in range(20)]
    stub.set_default("Slow", 200, SUCCESS_BODY, 0.9)
    for g in gids:
        submit_ok(d1, saga(g, [(stub.url("Slow"), "")]))
        time.sleep(0.03)
    for g in gids:
        d1.wait_status(g, S, timeout=20)
    check_no_overlap(stub.calls("Slow"))


def test_two_dtmd_resubmit_elsewhere_does_not_call_twice_at_once(start_dtmd, stub):
    d1 = start_dtmd(RETRY_INTERVAL=5, RETRY_MAX_INTERVAL=10)
    d2 = start_dtmd(RETRY_INTERVAL=5, RETRY_MAX_INTERVAL=10)
    g = new_gid("resub")
    body = saga(g, [(stub.url("Slow"), "")])
    stub.set_default("Slow", 200, SUCCESS_BODY, 0.8)
    submit_ok(d1, body)
    stub.wait_calls("Slow", 1)
    # a client retrying its submit (e.g. after a timeout) reaches the other
    # process: d1 holds the transaction, so d2 answers from the stored state
    st, resp = d2.submit(dict(body, wait_result=True))
    assert st == 425, (st, resp)
    assert "another dtmd process" in resp.get("message", str(resp)), resp
    submit_ok(d2, body)  # without wait_result: accepted, it is in progress
    d1.wait_status(g, S, timeout=10)
    time.sleep(0.2)
    check_no_overlap(stub.calls("Slow"))
    assert stub.count("Slow") == 1, stub.summary()


def test_two_dtmd_reabort_elsewhere_does_not_cancel_twice_at_once(start_dtmd, stub):
    """The same for a repeated abort of a TCC whose cancel runs in d1."""
    d1 = start_dtmd(RETRY_INTERVAL=5, RETRY_MAX_INTERVAL=10)
    d2 = start_dtmd(RETRY_INTERVAL=5, RETRY_MAX_INTERVAL=10)
    g = new_gid("reabort")
    assert d1.api("POST", "/prepare", body={"gid": g, "trans_type": "tcc"}) == (200, OK)
    branch = {"gid": g, "trans_type": "tcc", "branch_id": "01", "data": "{}",
              "confirm": stub.url("AConfirm"), "cancel": stub.url("ACancel")}
    assert d1.api("POST", "/registerBranch", body=branch) == (200, OK)
    stub.set_default("ACancel", 200, SUCCESS_BODY, 0.8)
    abort = {"gid": g, "trans_type": "tcc"}
    assert d1.api("POST", "/abort", body=abort) == (200, OK)
    stub.wait_calls("ACancel", 1)
    st, resp = d2.api("POST", "/abort", body=dict(abort, wait_result=True))
    assert st == 425, (st, resp)
    assert d2.api("POST", "/abort", body=abort) == (200, OK)
    d1.wait_status(g, F, timeout=10)
    time.sleep(0.2)
    check_no_overlap(stub.calls("ACancel"))
    assert stub.count("ACancel") == 1 and stub.count("AConfirm") == 0, stub.summary()


def test_two_dtmd_resubmit_elsewhere_waiting_for_retry_drives_at_once(start_dtmd, stub):
    """Nobody holds a transaction that waits for its next retry (the pass
    that scheduled it gave its hold back): a repeated submit on any process
    drives it at once, as dtm does, not after the back-off."""
    d1 = start_dtmd(RETRY_INTERVAL=10, RETRY_MAX_INTERVAL=60)
    d2 = start_dtmd(RETRY_INTERVAL=10, RETRY_MAX_INTERVAL=60)
    g = new_gid("redrive")
    body = saga(g, [(stub.url("Flaky"), "")])
    stub.plan("Flaky", [(500, "not yet", 0)])
    submit_ok(d1, body)
    stub.wait_calls("Flaky", 1)
    wait_until(lambda: d1.trans(g)["next_cron_interval"] >= 20, timeout=5,
               msg="the failed call to schedule a retry")
    t0 = time.monotonic()
    st, resp = d2.submit(dict(body, wait_result=True))
    assert (st, resp) == (200, OK), (st, resp)
    assert time.monotonic() - t0 < 2
    assert d2.query(g)["transaction"]["status"] == S
    assert stub.count("Flaky") == 2, stub.summary()


# --------------------------------------------------------------------------
# 5. graceful shutdown

def test_sigterm_stops_accepting_exits_0_and_other_takes_over(start_dtmd, stub):
    d1 = start_dtmd(REQUEST_TIMEOUT=20, TIMEOUT_TO_FAIL=60)
    d2 = start_dtmd(REQUEST_TIMEOUT=20, TIMEOUT_TO_FAIL=60)
    g = new_gid("term")
    stub.plan("Long", [(200, SUCCESS_BODY, 10)])
    submit_ok(d1, saga(g, [(stub.url("Long"), ""), (stub.url("Next"), "")]))
    # and a client waiting for a result when SIGTERM comes
    w, waited = new_gid("waiting"), {}
    stub.plan("Long2", [(200, SUCCESS_BODY, 10)])

    def wait_client():
        try:
            waited["r"] = d1.submit(saga(w, [(stub.url("Long2"), "")], wait_result=True))
        except OSError as e:
            waited["r"] = e
    th = threading.Thread(target=wait_client)
    th.start()
    stub.wait_calls("Long", 1)
    stub.wait_calls("Long2", 1)
    t0 = time.monotonic()
    rc = d1.stop(timeout=5)
    assert rc == 0
    assert time.monotonic() - t0 < 2, "SIGTERM with a call in flight took %.1fs" % (time.monotonic() - t0)
    with pytest.raises(OSError):
        http_request("GET", d1.host + "/api/ping", timeout=1)
    # the survivor calls the branch again (the first call was cut) and finishes
    q = d2.wait_status(g, S, timeout=15)
    assert [b["status"] for b in q["branches"]] == [P, S, P, S]
    assert stub.count("Long") == 2 and stub.count("Next") == 1
    th.join(5)
    # the waiting client got an error answer or a closed connection, not a hang
    assert "r" in waited and (isinstance(waited["r"], OSError) or waited["r"][0] != 200), waited
    d2.wait_status(w, S, timeout=15)


def test_sigterm_releases_leases_for_prompt_takeover(start_dtmd, stub):
    """cron_shutdown hands the leases of the transactions in progress back
    (due time = now): the other process does not wait for RetryInterval (4 s)."""
    d1 = start_dtmd(REQUEST_TIMEOUT=20, TIMEOUT_TO_FAIL=60, RETRY_INTERVAL=4, RETRY_MAX_INTERVAL=10)
    d2 = start_dtmd(REQUEST_TIMEOUT=20, TIMEOUT_TO_FAIL=60, RETRY_INTERVAL=4, RETRY_MAX_INTERVAL=10)
    g = new_gid("release")
    stub.plan("Long", [(200, SUCCESS_BODY, 10)])
    submit_ok(d1, saga(g, [(stub.url("Long"), "")]))
    stub.wait_calls("Long", 1)
    t0 = time.monotonic()
    assert d1.stop(timeout=5) == 0
    # the lease given back: the survivor's next scan (0.1 s) picks it up
    second = stub.wait_calls("Long", 2, timeout=10)[1]
    assert second.start - t0 < 1.5, "taken over after %.1fs" % (second.start - t0)
    d2.wait_status(g, S, timeout=10)
    assert "handed back 1 transaction" in d1.log.read_text(errors="replace")

