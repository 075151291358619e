"""Hostile clients (issue 20 "Hardening"): no request, connection or label
value can stall dtmd's loop, exhaust its memory or forge what operators read.

Each test drives one abuse and checks the bound that stops it: log lines
cannot be forged, numbers are range-checked, validation stays linear, odd
HTTP framing is refused, metric labels are bounded, the allow-list sees the
normalised URL, /all answers are bounded, fd exhaustion does not spin.
"""

import json
import os
import re
import socket
import threading
import time
import urllib.parse

import pytest

from dtmtest import http_request, new_gid, saga, wait_until
from test_security import ping_on

FORGED = "2026-01-01 00:00:00.000 error FORGED-LINE by a client"


def forged_lines(d):
    text = d.log.read_text(errors="replace")
    return [ln for ln in text.splitlines() if ln.startswith(FORGED[:10]) or "FORGED" in ln[:40]]


# ---- (1) log forgery --------------------------------------------------------

def test_log_lines_cannot_be_forged(start_dtmd, stub, gid):
    d = start_dtmd(LOG_LEVEL="debug")
    # a branch answer body (logged when the branch fails) carrying a newline
    stub.set_default("Evil", 500, "oops\n" + FORGED + "\x1b[31m")
    st, body = d.submit({"gid": gid, "trans_type": "msg",
                         "steps": [{"action": stub.url("Evil")}], "payloads": ["{}"]})
    assert st == 200, body
    stub.wait_calls("Evil", 1, timeout=10)
    # a TCC branch id (logged when its confirm is called)
    g2 = new_gid("tcc")
    assert d.api("POST", "/prepare", body={"gid": g2, "trans_type": "tcc"})[0] == 200
    st, body = d.api("POST", "/registerBranch", body={
        "gid": g2, "trans_type": "tcc", "branch_id": "01\n" + FORGED, "data": "{}",
        "confirm": stub.url("Ok"), "cancel": stub.url("Ok")})
    assert st == 200, body
    assert d.api("POST", "/submit", body={"gid": g2, "trans_type": "tcc"})[0] == 200
    stub.wait_calls("Ok", 1, timeout=10)
    time.sleep(0.3)
    text = d.log.read_text(errors="replace")
    assert "FORGED-LINE" in text  # the values were logged ...
    assert forged_lines(d) == []  # ... but never as a line of their own
    assert "\x1b" not in text
    assert "\\n" + FORGED in text


# ---- (2) numbers and store errors -------------------------------------------

def assert_400(st, body, *words):
    assert st == 400, (st, body)
    assert isinstance(body, dict) and isinstance(body.get("message"), str), body
    for w in words:
        assert w in body["message"], body


@pytest.mark.parametrize("query,words", [
    ("timeout=9223372036854775807", ["timeout"]),
    ("timeout=9223372036854776", ["timeout"]),
    ("timeout=1000000001", ["timeout"]),
    ("limit=9223372036854775807", ["limit"]),
    ("limit=10001", ["limit"]),
])
def test_reset_cron_time_numbers_range_checked(dtmd, query, words):
    st, body = dtmd.api("POST", "/resetCronTime?" + query)
    assert_400(st, body, *words)
    # in range: fine
    st, body = dtmd.api("POST", "/resetCronTime?timeout=1000000000&limit=10000")
    assert st == 200 and body == {"has_remaining": False, "succeed_count": 0}, (st, body)


@pytest.mark.parametrize("limit", ["10001", "9223372036854775807"])
def test_scan_kv_limit_range_checked(dtmd, limit):
    assert_400(*dtmd.api("GET", "/scanKV?cat=topics&limit=" + limit), "limit")
    st, body = dtmd.api("GET", "/scanKV?cat=topics&limit=10000")
    assert st == 200, body


@pytest.mark.parametrize("field,key,cap", [
    ("request_timeout", "Limits.MaxRequestTimeout", 3600),
    ("timeout_to_fail", "Limits.MaxTimeoutToFail", 604800),
    ("retry_interval", "Limits.MaxRetryInterval", 86400),
])
def test_per_transaction_durations_capped(start_dtmd, redis_server, stub, field, key, cap):
    d = start_dtmd()
    gid = new_gid(field)
    body = {"gid": gid, "trans_type": "msg", "steps": [{"action": stub.url("Ok")}],
            "payloads": ["{}"], field: cap + 1}
    st, resp = d.submit(body)
    assert_400(st, resp, field, key)
    assert redis_server.mentions(gid) == []
    body[field] = cap
    assert d.submit(body)[0] == 200
    # the cap is configurable
    env_name = {"request_timeout": "LIMITS_MAX_REQUEST_TIMEOUT",
                "timeout_to_fail": "LIMITS_MAX_TIMEOUT_TO_FAIL",
                "retry_interval": "LIMITS_MAX_RETRY_INTERVAL"}[field]
    d2 = start_dtmd(**{env_name: "10"})
    body.update(gid=new_gid(field), **{field: 11})
    assert_400(*d2.submit(body), key)
    body.update(gid=new_gid(field), **{field: 10})
    assert d2.submit(body)[0] == 200


def test_store_errors_never_reach_clients(dtmd, redis_server, stub, gid):
    # Redis refuses every write: its raw text (OOM ..., script SHA) stays in the log
    redis_server.cmd("CONFIG", "SET", "maxmemory-policy", "noeviction")
    redis_server.cmd("CONFIG", "SET", "maxmemory", "1")
    try:
        st, body = dtmd.submit({"gid": gid, "trans_type": "msg",
                                "steps": [{"action": stub.url("Ok")}], "payloads": ["{}"]})
    finally:
        redis_server.cmd("CONFIG", "SET", "maxmemory", "0")
    assert st == 500, (st, body)
    msg = body["message"]
    assert "OOM" not in msg and "maxmemory" not in msg and "script" not in msg, msg
    assert not re.search(r"[0-9a-f]{40}", msg), msg
    assert "store" in msg, msg
    assert "OOM" in dtmd.log.read_text(errors="replace")  # the details are logged


# ---- (3) validation stays linear ---------------------------------------------

class PingProbe:
    """Pings dtmd every 50 ms in a thread; .worst is the slowest answer."""

    def __init__(self, d):
        self.d, self.worst, self.count = d, 0.0, 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            t0 = time.monotonic()
            st, _ = self.d.api("GET", "/api/ping", timeout=30)
            assert st == 200
            self.worst = max(self.worst, time.monotonic() - t0)
            self.count += 1
            self._stop.wait(0.05)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join(60)


def orders_body(gid, nsteps, entries, budget=600_000):
    """A saga whose custom_data.orders is given as raw JSON entries
    (duplicates allowed), padded with copies of the first entry up to budget."""
    pad = []
    size = sum(len(e) for e in entries)
    while size < budget - 4096 - 60 * nsteps:
        pad.append(entries[0])
        size += len(entries[0]) + 1
    custom = '{"concurrent":true,"orders":{%s}}' % ",".join(pad + entries)
    return {"gid": gid, "trans_type": "saga",
            "steps": [{"action": "", "compensate": ""} for _ in range(nsteps)],
            "payloads": ["" for _ in range(nsteps)], "custom_data": custom}


def redis_input_bytes(r):
    info = r.cmd("INFO", "stats").decode()
    return int(re.search(r"total_net_input_bytes:(\d+)", info).group(1))


def test_store_writes_stay_linear_in_branches(dtmd, redis_server, stub, gid):
    """A branch's result rewrites only the stored states of its group of 8
    branches, not those of all: 300 sequential steps (600 branches, each
    result one write, with its hold and due time) send Redis about 2 kB per
    step. Writing every state each time sent 2.3 MB (7.7 kB per step,
    growing with the steps: quadratic)."""
    nsteps = 300
    before = redis_input_bytes(redis_server)
    body = saga(gid, [(stub.url("a%d" % i), stub.url("c%d" % i)) for i in range(nsteps)],
                payloads=["" for _ in range(nsteps)], wait_result=True)
    st, resp = dtmd.api("POST", "/submit", body, timeout=120)
    assert st == 200, (st, resp)
    wait_until(lambda: dtmd.query(gid)["transaction"]["status"] == "succeed", timeout=60)
    sent = redis_input_bytes(redis_server) - before
    assert len(stub.calls()) == nsteps
    assert sent < 4000 * nsteps, sent


@pytest.mark.no_valgrind("measures how fast dtmd answers /api/ping")
@pytest.mark.parametrize("shape", ["chain", "chain-cycle"])
def test_orders_validation_does_not_stall_the_loop(start_dtmd, redis_server, shape):
    nsteps = 500  # 1000 branches: Limits.MaxBranches' default
    d = start_dtmd()
    gid = new_gid(shape)
    # step i waits for i+1: a pass over the steps in index order finishes one
    # at a time; orders_body repeats the first key thousands of times
    entries = ['"%d":[%d]' % (i, i + 1) for i in range(nsteps - 1)]
    if shape == "chain-cycle":
        entries.append('"%d":[0]' % (nsteps - 1))
    body = orders_body(gid, nsteps, entries)
    raw = json.dumps(body)
    assert len(raw) < 1_000_000
    with PingProbe(d) as probe:
        t0 = time.monotonic()
        st, resp = d.api("POST", "/submit", raw=raw, timeout=120)
        took = time.monotonic() - t0
        time.sleep(0.2)
    if shape == "chain-cycle":
        assert_400(st, resp, "cycle")
        assert redis_server.mentions(gid) == []
    else:
        assert st == 200, (st, resp)
    assert took < 5, took
    assert probe.count >= 2 and probe.worst < 1.0, (probe.worst, probe.count)


# ---- (4) HTTP framing ---------------------------------------------------------

def raw_exchange(d, data, timeout=3.0):
    """Send data on one connection; return everything read until the server
    closes it (or timeout)."""
    s = socket.create_connection(("127.0.0.1", d.port), timeout=timeout)
    out = b""
    try:
        s.sendall(data)
        while True:
            b = s.recv(65536)
            if not b:
                break
            out += b
    except socket.timeout:
        pass
    finally:
        s.close()
    return out


def responses(data):
    """Split a byte stream into (status, headers, body) HTTP responses
    (Content-Length framing; a HEAD answer has to be told apart by the caller)."""
    out = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        assert sep, data
        lines = head.decode("latin1").split("\r\n")
        status = int(lines[0].split()[1])
        hdrs = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
        n = int(hdrs.get("content-length", "0"))
        out.append((status, hdrs, rest[:n]))
        data = rest[n:]
    return out


PING = b"GET /api/ping HTTP/1.1\r\nHost: x\r\n\r\n"

SMUGGLE = {
    "two-content-lengths": b"POST /api/dtmsvr/prepare HTTP/1.1\r\nHost: x\r\n"
                           b"Content-Length: 2\r\nContent-Length: 41\r\n\r\n{}" + PING,
    "same-content-length-twice": b"POST /api/dtmsvr/prepare HTTP/1.1\r\nHost: x\r\n"
                                 b"Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}" + PING,
    "content-length-plus": b"POST /api/dtmsvr/prepare HTTP/1.1\r\nHost: x\r\n"
                           b"Content-Length: +2\r\n\r\n{}" + PING,
    "te-space-before-colon": b"POST /api/dtmsvr/prepare HTTP/1.1\r\nHost: x\r\n"
                             b"Transfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n" + PING,
    "te-tab-in-name": b"POST /api/dtmsvr/prepare HTTP/1.1\r\nHost: x\r\n"
                      b"Transfer-Encoding\t: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n" + PING,
    "te-chunked-identity": b"POST /api/dtmsvr/prepare HTTP/1.1\r\nHost: x\r\n"
                           b"Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n" + PING,
    "te-identity": b"POST /api/dtmsvr/prepare HTTP/1.1\r\nHost: x\r\n"
                   b"Transfer-Encoding: identity\r\nContent-Length: 2\r\n\r\n{}" + PING,
    "te-and-cl": b"POST /api/dtmsvr/prepare HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                 b"Content-Length: 5\r\n\r\n0\r\n\r\n" + PING,
}


@pytest.mark.parametrize("case", sorted(SMUGGLE))
def test_ambiguous_framing_refused_and_connection_closed(dtmd, case):
    got = responses(raw_exchange(dtmd, SMUGGLE[case]))
    # one 400 and the connection closed: the bytes after the body are never
    # taken for a second request
    assert [st for st, _, _ in got] == [400], got
    assert dtmd.api("GET", "/api/ping") == (200, {"msg": "pong"})


def test_chunked_body_still_accepted(dtmd, gid):
    body = json.dumps({"gid": gid, "trans_type": "tcc"}).encode()
    req = (b"POST /api/dtmsvr/prepare HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
           b"Connection: close\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
    got = responses(raw_exchange(dtmd, req))
    assert [st for st, _, _ in got] == [200], got


@pytest.mark.parametrize("path", ["/api/ping", "/api/dtmsvr/version", "/api/dtmsvr/nope",
                                  "/admin/", "/admin/nope"])
def test_head_answers_without_body(dtmd, path):
    req = (b"HEAD %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode()) + \
          b"GET /api/ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    data = raw_exchange(dtmd, req)
    head, sep, rest = data.partition(b"\r\n\r\n")
    assert sep and head.startswith(b"HTTP/1.1 "), data
    # right after the HEAD answer's headers comes the next answer, no body between
    assert rest.startswith(b"HTTP/1.1 200"), data
    st, hdrs, body = responses(rest)[0]
    assert body == b'{"msg":"pong"}'


# ---- (5) metric label values bounded -----------------------------------------

def keepalive_api(d):
    """A POST helper over one keep-alive connection (thousands of requests)."""
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)

    def post(path, body):
        conn.request("POST", "/api/dtmsvr" + path, body=json.dumps(body),
                     headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        return r.status, r.read()
    return conn, post


def test_metric_label_values_bounded(start_dtmd, stub):
    d = start_dtmd(LOG_LEVEL="info")
    conn, post = keepalive_api(d)
    nids, per_trans = 3000, 300
    gids = []
    try:
        for t in range(nids // per_trans):
            g = new_gid("labels")
            gids.append(g)
            assert post("/prepare", {"gid": g, "trans_type": "tcc"})[0] == 200
            for i in range(per_trans):
                st, body = post("/registerBranch", {
                    "gid": g, "trans_type": "tcc", "branch_id": "client-id-%d-%d" % (t, i),
                    "data": "{}", "confirm": stub.url("Ok"), "cancel": stub.url("Ok")})
                assert st == 200, body
            assert post("/submit", {"gid": g, "trans_type": "tcc"})[0] == 200
    finally:
        conn.close()
    stub.wait_calls("Ok", nids, timeout=120)

    def metrics():
        st, text, _ = http_request("GET", d.host + "/api/metrics")
        assert st == 200
        total = sum(int(n) for n in re.findall(
            r'dtm_branch_process_total\{model="tcc",branchid="[^"]*",'
            r'branchtype="confirm",status="ok"\} (\d+)', text))
        return total == nids and text
    text = wait_until(metrics, 30, msg="every confirm counted")
    ids = set(re.findall(r'branchid="([^"]*)"', text))
    assert len(ids) <= 101 and "other" in ids, len(ids)
    m = re.search(r'dtm_branch_process_total\{model="tcc",branchid="other",'
                  r'branchtype="confirm",status="ok"\} (\d+)', text)
    assert m and int(m.group(1)) == nids - 100, m
    assert len(text) < 100_000, len(text)


# ---- (6) allow-list on the normalised path -------------------------------------

@pytest.mark.parametrize("tail", ["%2e%2e/x", "..%2fx", ".%2E/x", "..%5cx", "..;/x", "%2E%2E%2Fx"])
def test_allow_list_path_tricks(start_dtmd, redis_server, stub, tail):
    base = "http://127.0.0.1:%d/ok/" % stub.port
    d = start_dtmd(BRANCH_ALLOW=base)
    gid = new_gid("trick")
    st, body = d.submit({"gid": gid, "trans_type": "msg", "steps": [{"action": base + tail}],
                         "payloads": ["{}"]})
    assert_400(st, body, "BranchAllow")
    assert redis_server.mentions(gid) == []
    # a plain URL under the prefix (also with a harmless "." segment) passes
    for ok in (base + "x", base + "%2e/x"):
        st, body = d.submit({"gid": new_gid("fine"), "trans_type": "msg",
                             "steps": [{"action": ok}], "payloads": ["{}"]})
        assert st == 200, (ok, body)


# ---- (7) /all answers bounded ----------------------------------------------------

def vm_kb(d, field):
    for ln in open("/proc/%d/status" % d.proc.pid):
        if ln.startswith(field + ":"):
            return int(ln.split()[1])
    raise AssertionError("no %s" % field)


@pytest.mark.no_valgrind("measures dtmd's peak RSS")
def test_all_answer_bounded(start_dtmd, redis_server):
    d = start_dtmd(LIMITS_MAX_ALL_BYTES=str(1 << 20), LOG_LEVEL="info")
    pad = "x" * 900_000
    gids = set()
    for i in range(30):
        g = new_gid("big%02d" % i)
        gids.add(g)
        st, body = d.submit({"gid": g, "trans_type": "msg", "steps": [{"action": ""}],
                             "payloads": ["{}"], "custom_data": json.dumps({"pad": pad})})
        assert st == 200, body
    base_hwm = vm_kb(d, "VmHWM")
    results = []

    def reader():
        st, body, _ = http_request("GET", d.url("/all?limit=60"), timeout=60)
        results.append((st, body))
    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    grew_mb = (vm_kb(d, "VmHWM") - base_hwm) / 1024
    assert len(results) == 4
    for st, body in results:
        assert st == 200, body
        # stopped at the budget (one record past it at most), with a cursor
        assert 1 <= len(body["transactions"]) <= 2, len(body["transactions"])
        assert body["next_position"], body["next_position"]
    assert grew_mb < 60, grew_mb
    # paging on with the cursor lists every transaction exactly once
    seen, pos = [], ""
    for _ in range(100):
        st, body = d.api("GET", "/all?limit=60&position=" + urllib.parse.quote(pos))
        assert st == 200, body
        seen += [t["gid"] for t in body["transactions"]]
        pos = body["next_position"]
        if not pos:
            break
    assert sorted(seen) == sorted(gids)



# ---- (8) descriptor exhaustion -----------------------------------------------------

def cpu_seconds(d):
    with open("/proc/%d/stat" % d.proc.pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def open_many(d, n):
    """n non-blocking connects (those beyond the backlog just stay pending)."""
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", d.port))
        socks.append(s)
    return socks


@pytest.fixture
def nofile(monkeypatch):
    """start dtmd with `ulimit -n` soft:hard (prlimit in front of the binary)."""
    import dtmtest

    def use(soft, hard):
        monkeypatch.setattr(dtmtest, "DTMD_WRAPPER",
                            ["prlimit", "--nofile=%d:%d" % (soft, hard), "--"]
                            + list(dtmtest.DTMD_WRAPPER))
    return use


def hold_and_measure(d, nconns, seconds=2.0):
    socks = open_many(d, nconns)
    try:
        time.sleep(0.5)
        c0 = cpu_seconds(d)
        time.sleep(seconds)
        return cpu_seconds(d) - c0
    finally:
        for s in socks:
            s.close()


@pytest.mark.no_valgrind("measures dtmd's CPU time")
def test_fd_limit_lowers_max_connections(start_dtmd, nofile):
    nofile(256, 256)
    d = start_dtmd(LOG_LEVEL="info")
    text = d.log.read_text(errors="replace")
    m = re.search(r"MaxConnections lowered to (\d+)", text)
    assert m and int(m.group(1)) < 256, text[-2000:]
    used = hold_and_measure(d, 400)
    assert used < 0.5, "dtmd spent %.2f s CPU in 2 s holding 400 connections" % used
    assert "accept failed" not in d.log.read_text(errors="replace")
    wait_until(lambda: d.api("GET", "/api/ping", timeout=2) == (200, {"msg": "pong"}), 10)


@pytest.mark.no_valgrind("measures dtmd's CPU time")
def test_fd_limit_raised_toward_hard_limit(start_dtmd, nofile):
    nofile(256, 20000)
    d = start_dtmd(LOG_LEVEL="info", LIMITS_MAX_CONNECTIONS="1000")
    text = d.log.read_text(errors="replace")
    assert "file descriptor limit raised from 256" in text, text[-2000:]
    assert "lowered" not in text
    limits = open("/proc/%d/limits" % d.proc.pid).read()
    soft = int(re.search(r"Max open files\s+(\d+)", limits).group(1))
    assert soft >= 1000 + 1024, limits


@pytest.mark.no_valgrind("measures dtmd's CPU time")
def test_accept_emfile_does_not_spin(start_dtmd, nofile):
    nofile(256, 256)
    d = start_dtmd(LOG_LEVEL="info", LIMITS_MAX_CONNECTIONS="0")  # no limit: accept hits EMFILE
    used = hold_and_measure(d, 400, seconds=3.0)
    text = d.log.read_text(errors="replace")
    accept_lines = [ln for ln in text.splitlines() if "accept" in ln.lower()]
    assert 1 <= len(accept_lines) <= 6, accept_lines[:10]
    assert "Too many open files" in accept_lines[0]
    assert used < 0.5, "dtmd spent %.2f s CPU in 3 s out of descriptors" % used
    # the descriptors are back: new clients are served again
    wait_until(lambda: d.api("GET", "/api/ping", timeout=2) == (200, {"msg": "pong"}), 10)


def read_closed(sock, timeout):
    """True when the server closed sock within timeout."""
    sock.settimeout(timeout)
    try:
        while True:
            if not sock.recv(4096):
                return True
    except socket.timeout:
        return False
    except OSError:
        return True


@pytest.mark.no_valgrind("expects answers within 2 s")
def test_close_idle_at_connection_limit(start_dtmd, stub):
    """Limits.CloseIdleAtLimit (the default): at MaxConnections a new client is
    served at once; the connection idle the longest makes room, never one
    whose request is still being answered."""
    limit = 5
    d = start_dtmd(LIMITS_MAX_CONNECTIONS=limit, REQUEST_TIMEOUT="5")
    time.sleep(0.3)  # start()'s readiness probe connection is gone
    stub.plan("Slow", [(200, '{"dtm_result":"SUCCESS"}', 2.0)])
    socks = []
    try:
        # the oldest connection has a request in flight (wait_result, slow branch)
        busy = socket.create_connection(("127.0.0.1", d.port))
        socks.append(busy)
        body = json.dumps({"gid": new_gid("busy"), "trans_type": "msg", "wait_result": True,
                           "steps": [{"action": stub.url("Slow")}], "payloads": ["{}"]}).encode()
        busy.sendall(b"POST /api/dtmsvr/submit HTTP/1.1\r\nHost: x\r\nContent-Type: "
                     b"application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        stub.wait_calls("Slow", 1, timeout=5)
        idle = []
        for _ in range(limit - 2):
            s = socket.create_connection(("127.0.0.1", d.port))
            socks.append(s)
            idle.append(s)
            assert ping_on(s, 5) == b"HTTP/1.1 200 OK"
            time.sleep(0.05)
        silent = socket.create_connection(("127.0.0.1", d.port))  # the 5th, never sends
        socks.append(silent)
        time.sleep(0.2)
        # at the limit: a new client is served at once, the longest-idle one is closed
        new = socket.create_connection(("127.0.0.1", d.port))
        socks.append(new)
        assert ping_on(new, 2.0) == b"HTTP/1.1 200 OK"
        assert read_closed(idle[0], 2.0)
        for s in idle[1:]:
            assert ping_on(s, 2.0) == b"HTTP/1.1 200 OK"
        # the busy connection gets its answer
        busy.settimeout(10)
        data = b""
        while b"SUCCESS" not in data:
            chunk = busy.recv(4096)
            assert chunk, data
            data += chunk
        assert data.startswith(b"HTTP/1.1 200"), data
    finally:
        for s in socks:
            s.close()
