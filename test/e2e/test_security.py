"""Security and limits (docs/security.md): bearer-token auth, the
branch URL allow-list (SSRF defence), request limits and hostile input.

Every hostile request gets a 4xx or a closed connection, never a crash, a
hang or stored garbage; dtmd answers /api/ping afterwards (and the fixtures
check at teardown that it did not die and logged no sanitizer report).
"""

import json
import os
import socket
import subprocess
import threading
import time

import pytest

from dtmtest import DTMD_BIN, free_port, http_request, new_gid, parse_metrics

TOKEN = "s3cret-api-token"
ADMIN = "adm1n-token"


def bearer(t):
    return {"Authorization": "Bearer " + t}


def assert_4xx_json(st, body, code=400):
    assert st == code, (st, body)
    assert isinstance(body, dict) and isinstance(body.get("message"), str) and body["message"], body


def assert_nothing_stored(d, redis_server, gid, headers=None):
    st, q = d.api("GET", "/query?gid=" + gid, headers=headers)
    assert (st, q) == (200, {"transaction": None, "branches": []}), (st, q)
    assert redis_server.mentions(gid) == []


def empty_saga(gid):
    return {"gid": gid, "trans_type": "saga", "steps": [{"action": "", "compensate": ""}],
            "payloads": ["{}"]}


# ---- auth -----------------------------------------------------------------

def test_auth_api_and_admin_tokens(start_dtmd, redis_server):
    d = start_dtmd(AUTH_TOKEN=TOKEN, AUTH_ADMIN_TOKEN=ADMIN)
    # liveness stays open (load balancers, the test harness)
    assert d.api("GET", "/api/ping") == (200, {"msg": "pong"})
    assert d.api("GET", "/api/dtmsvr/ping") == (200, {"msg": "pong"})
    # no token, a wrong one, a malformed header: 401 + WWW-Authenticate
    for hdrs in (None, bearer("nope"), bearer(TOKEN + "x"), bearer(TOKEN[:-1]),
                 {"Authorization": TOKEN}, {"Authorization": "Basic " + TOKEN},
                 {"Authorization": "Bearer"}):
        st, body, rh = http_request("GET", d.url("/newGid"), headers=hdrs)
        assert_4xx_json(st, body, 401)
        assert rh.get("www-authenticate", "").startswith("Bearer"), rh
    # the right token (scheme case-insensitive), and the admin token, open the API
    for hdrs in (bearer(TOKEN), {"Authorization": "bearer  " + TOKEN + " "}, bearer(ADMIN)):
        st, body = d.api("GET", "/newGid", headers=hdrs)
        assert st == 200 and body["dtm_result"] == "SUCCESS", (st, body)
    # metrics is part of the API
    assert d.api("GET", "/api/metrics")[0] == 401
    assert d.api("GET", "/api/metrics", headers=bearer(TOKEN))[0] == 200
    # a submit without a token is refused before anything is stored
    gid = new_gid("auth")
    st, body = d.api("POST", "/submit", body=empty_saga(gid))
    assert_4xx_json(st, body, 401)
    assert redis_server.mentions(gid) == []
    assert d.api("POST", "/submit", body=empty_saga(gid), headers=bearer(TOKEN)) == \
        (200, {"dtm_result": "SUCCESS"})
    wait = time.time() + 10
    while d.api("GET", "/query?gid=" + gid, headers=bearer(TOKEN))[1]["transaction"]["status"] \
            != "succeed":
        assert time.time() < wait
        time.sleep(0.05)
    # management routes need the admin token; the API token is not enough
    for method, path, body in (("POST", "/forceStop", {"gid": gid}),
                               ("POST", "/resetCronTime", {}),
                               ("POST", "/resetNextCronTime", {"gid": gid}),
                               ("POST", "/subscribe", {"topic": "t", "url": "http://h/x",
                                                       "remark": ""}),
                               ("POST", "/unsubscribe", {"topic": "t", "url": "http://h/x"}),
                               ("DELETE", "/topic/t", None),
                               ("POST", "/api/dtms/forceStop", {"gid": gid})):
        for hdrs in (None, bearer(TOKEN)):
            st, resp = d.api(method, path, body=body, headers=hdrs)
            assert_4xx_json(st, resp, 401)
        st, resp = d.api(method, path, body=body, headers=bearer(ADMIN))
        assert st != 401, (method, path, st, resp)
    # tokens never reach the log
    log = d.log.read_text(errors="replace")
    assert TOKEN not in log and ADMIN not in log


def test_auth_admin_token_only(start_dtmd):
    """Only Auth.AdminToken: the API stays open, management routes are locked."""
    d = start_dtmd(AUTH_ADMIN_TOKEN=ADMIN)
    assert d.api("GET", "/newGid")[0] == 200
    st, body = d.api("POST", "/subscribe", body={"topic": "t", "url": "http://h/x", "remark": ""})
    assert_4xx_json(st, body, 401)
    assert d.api("POST", "/subscribe", body={"topic": "t", "url": "http://h/x", "remark": ""},
                 headers=bearer(ADMIN)) == (200, {"dtm_result": "SUCCESS"})


# ---- outgoing allow-list ------------------------------------------------------

def test_branch_allow_list(start_dtmd, redis_server, stub):
    good = "http://127.0.0.1:%d/api/busi/" % stub.port
    d = start_dtmd(BRANCH_ALLOW="%s, allowed.example:8443" % good)
    # allowed: the stub's prefix; also the empty URL (no call)
    gid = new_gid("allow-ok")
    body = {"gid": gid, "trans_type": "saga",
            "steps": [{"action": stub.url("A"), "compensate": stub.url("AR")},
                      {"action": "", "compensate": ""}],
            "payloads": ["{}", "{}"]}
    assert d.submit(body) == (200, {"dtm_result": "SUCCESS"})
    d.wait_status(gid, "succeed")
    p = stub.port
    bad_urls = [
        "http://127.0.0.1:%d@evil.example/api/busi/A" % p,        # userinfo trick
        "http://127.0.0.1.evil.example:%d/api/busi/A" % p,        # suffix trick
        "http://127.0.0.1:%d/api/busiX" % p,                       # not on a segment boundary
        "http://127.0.0.1:%d/api/other/A" % p,                     # other path
        "http://127.0.0.1:%d/api/busi/../../admin" % p,            # dot segments
        "http://127.0.0.1:%d/api/busi/A" % (p + 1 if p < 65535 else p - 1),  # other port
        "https://127.0.0.1:%d/api/busi/A" % p,                     # other scheme
        "http://localhost:%d/api/busi/A" % p,                      # other host name
        "http://allowed.example:8444/x",                           # host entry, other port
        "http://169.254.169.254/latest/meta-data/",               # the classic SSRF target
    ]
    for i, url in enumerate(bad_urls):
        for field in ("action", "compensate"):
            gid = new_gid("allow-bad-%d" % i)
            step = {"action": stub.url("A"), "compensate": stub.url("AR")}
            step[field] = url
            st, resp = d.submit({"gid": gid, "trans_type": "saga", "steps": [step],
                                 "payloads": ["{}"]})
            assert_4xx_json(st, resp)
            assert "BranchAllow" in resp["message"] and url in resp["message"], resp
            assert_nothing_stored(d, redis_server, gid)
    # a host[:port] entry allows any path and either scheme on that host and port
    gid = new_gid("allow-host")
    st, resp = d.api("POST", "/prepare", body={"gid": gid, "trans_type": "tcc"})
    assert st == 200, resp
    for i, url in enumerate(("http://allowed.example:8443/a", "https://allowed.example:8443/b/c")):
        st, resp = d.api("POST", "/registerBranch", body={
            "gid": gid, "trans_type": "tcc", "branch_id": "0%d" % (i + 1),
            "data": "{}", "confirm": url, "cancel": url})
        assert st == 200, (url, resp)
    # registerBranch (tcc confirm/cancel, xa url), msg query_prepared, subscribe
    st, resp = d.api("POST", "/registerBranch", body={
        "gid": gid, "trans_type": "tcc", "branch_id": "09", "data": "{}",
        "confirm": stub.url("C"), "cancel": "http://evil.example/cancel"})
    assert_4xx_json(st, resp)
    assert "http://evil.example/cancel" in resp["message"]
    xgid = new_gid("allow-xa")
    assert d.api("POST", "/prepare", body={"gid": xgid, "trans_type": "xa"})[0] == 200
    st, resp = d.api("POST", "/registerBranch", body={
        "gid": xgid, "trans_type": "xa", "branch_id": "01", "url": "http://evil.example/xa"})
    assert_4xx_json(st, resp)
    mgid = new_gid("allow-msg")
    st, resp = d.api("POST", "/prepare", body={
        "gid": mgid, "trans_type": "msg", "query_prepared": "http://evil.example/q",
        "steps": [{"action": stub.url("M")}], "payloads": ["{}"]})
    assert_4xx_json(st, resp)
    assert "query_prepared" in resp["message"]
    assert_nothing_stored(d, redis_server, mgid)
    st, resp = d.api("POST", "/subscribe", body={"topic": "t1", "url": "http://evil.example/s",
                                                 "remark": ""})
    assert_4xx_json(st, resp)
    assert d.api("POST", "/subscribe", body={"topic": "t1", "url": stub.url("S"),
                                             "remark": ""})[0] == 200


def test_branch_allow_bad_entry_refused_at_start(tmp_path):
    env = dict(os.environ, BRANCH_ALLOW="http://ok/, ftp://x/", HTTP_PORT=str(free_port()))
    p = subprocess.run([str(DTMD_BIN)], env=env, cwd=str(tmp_path), capture_output=True,
                       timeout=10, stdin=subprocess.DEVNULL)
    assert p.returncode != 0
    assert b"BranchAllow" in p.stderr and b"ftp://x/" in p.stderr, p.stderr


# ---- limits -------------------------------------------------------------------

def most_at_once(calls):
    """The most stub calls that were in progress at the same time."""
    events = sorted([(c.start, 1) for c in calls] + [(c.end, -1) for c in calls])
    peak = cur = 0
    for _, k in events:
        cur += k
        peak = max(peak, cur)
    return peak


def test_max_inflight_calls_queue_not_drop(start_dtmd, stub):
    """Limits.MaxInflightCalls=2: a 6-step concurrent saga never has more than
    2 calls at the stub at once, and every step still runs."""
    d = start_dtmd(LIMITS_MAX_INFLIGHT_CALLS=2, REQUEST_TIMEOUT=3)
    stub.set_default("Slow", 200, '{"dtm_result":"SUCCESS"}', 0.3)
    gid = new_gid("inflight")
    n = 6
    body = {"gid": gid, "trans_type": "saga", "concurrent": True,
            "steps": [{"action": stub.url("Slow"), "compensate": stub.url("SlowR")}] * n,
            "payloads": ["{}"] * n}
    assert d.submit(body) == (200, {"dtm_result": "SUCCESS"})
    d.wait_status(gid, "succeed", timeout=20)
    calls = stub.calls("Slow")
    assert len(calls) == n
    assert most_at_once(calls) <= 2, calls


def gauges(d):
    st, body, _ = http_request("GET", d.url("/api/metrics"))
    assert st == 200
    v = parse_metrics(body)
    return int(v["dtmd_active_passes"]), int(v["dtmd_parked_total"])


class Sampler(threading.Thread):
    """Reads dtmd_active_passes every 20 ms until stopped; .peak is the most seen."""

    def __init__(self, d):
        super().__init__(daemon=True)
        self.d, self.peak, self.stop_now = d, 0, False

    def run(self):
        while not self.stop_now:
            self.peak = max(self.peak, gauges(self.d)[0])
            time.sleep(0.02)

    def stop(self):
        self.stop_now = True
        self.join()
        return self.peak


def slow_saga(stub, gid, steps=2):
    return {"gid": gid, "trans_type": "saga",
            "steps": [{"action": stub.url("Slow"), "compensate": stub.url("SlowR")}] * steps,
            "payloads": ["{}"] * steps}


def test_max_active_passes_parks_and_resumes(start_dtmd, stub):
    """Limits.MaxActivePasses=2: submits beyond it are accepted and parked in
    Redis, never more than 2 passes run, and every parked saga is driven as
    soon as a pass ends - well before the scanner's next tick (60 s here)."""
    d = start_dtmd(LIMITS_MAX_ACTIVE_PASSES=2, TRANS_CRON_INTERVAL=60, REQUEST_TIMEOUT=5,
                   TIMEOUT_TO_FAIL=60)
    stub.set_default("Slow", 200, '{"dtm_result":"SUCCESS"}', 0.2)
    sampler = Sampler(d)
    sampler.start()
    gids = [new_gid("park%d" % i) for i in range(8)]
    for g in gids:
        assert d.submit(slow_saga(stub, g)) == (200, {"dtm_result": "SUCCESS"})
    assert gauges(d)[1] >= 5  # at most 2 driven, the rest parked (one may have ended)
    for g in gids:
        d.wait_status(g, "succeed", timeout=20)
    assert sampler.stop() <= 2
    calls = stub.calls("Slow")
    assert len(calls) == 2 * len(gids)
    assert most_at_once(calls) <= 2, calls
    assert gauges(d)[0] == 0


def test_max_active_passes_wait_result_not_parked(start_dtmd, stub):
    """A wait_result submit is driven at once even at the limit: its client waits."""
    d = start_dtmd(LIMITS_MAX_ACTIVE_PASSES=1, TRANS_CRON_INTERVAL=60, REQUEST_TIMEOUT=5,
                   TIMEOUT_TO_FAIL=60)
    stub.set_default("Slow", 200, '{"dtm_result":"SUCCESS"}', 2.0)
    busy = new_gid("busy")
    assert d.submit(slow_saga(stub, busy, 1))[0] == 200
    stub.wait_calls("Slow", 1)
    g = new_gid("waiter")
    t0 = time.monotonic()
    st, body = d.submit({"gid": g, "trans_type": "saga", "wait_result": True,
                         "steps": [{"action": stub.url("Quick"), "compensate": stub.url("QuickR")}],
                         "payloads": ["{}"]})
    assert (st, body) == (200, {"dtm_result": "SUCCESS"})
    assert time.monotonic() - t0 < 1.5
    assert d.status(g) == "succeed"
    assert gauges(d)[1] == 0
    d.wait_status(busy, "succeed", timeout=10)


def test_max_active_passes_parked_work_goes_to_another_process(start_dtmd, stub):
    """Parked transactions are due at once and held by nobody: another dtmd
    sharing the store, with room, drives them at its next scan while the
    parking one stays busy."""
    d1 = start_dtmd(LIMITS_MAX_ACTIVE_PASSES=1, TRANS_CRON_INTERVAL=60, REQUEST_TIMEOUT=30,
                    TIMEOUT_TO_FAIL=120)
    stub.set_default("Hang", 200, '{"dtm_result":"SUCCESS"}', 8.0)
    busy = new_gid("hang")
    assert d1.submit({"gid": busy, "trans_type": "saga",
                      "steps": [{"action": stub.url("Hang"), "compensate": stub.url("HangR")}],
                      "payloads": ["{}"]})[0] == 200
    stub.wait_calls("Hang", 1)
    gids = [new_gid("moved%d" % i) for i in range(4)]
    for g in gids:
        body = {"gid": g, "trans_type": "saga",
                "steps": [{"action": stub.url("Quick"), "compensate": stub.url("QuickR")}],
                "payloads": ["{}"]}
        assert d1.submit(body)[0] == 200
    assert gauges(d1)[1] == 4
    time.sleep(0.5)
    assert stub.count("Quick") == 0  # d1 is full and its scanner sleeps
    d2 = start_dtmd(TRANS_CRON_INTERVAL=0.2)
    for g in gids:
        d2.wait_status(g, "succeed", timeout=5)
    assert stub.count("Hang") == 1


def test_oversized_headers(start_dtmd):
    d = start_dtmd(LIMITS_MAX_HEADER_BYTES=4096)
    try:
        st, _ = d.api("GET", "/newGid", headers={"X-Big": "a" * 8000})
        assert 400 <= st < 500, st
    except OSError:
        pass  # a closed connection is an acceptable answer too
    assert d.api("GET", "/newGid", headers={"X-Small": "a" * 1000})[0] == 200


def read_until_closed(sock, timeout):
    sock.settimeout(timeout)
    data = b""
    try:
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                return data, True
            data += chunk
    except socket.timeout:
        return data, False
    except OSError:
        return data, True


def test_slowloris_connection_is_closed(start_dtmd):
    d = start_dtmd(LIMITS_IDLE_TIMEOUT=1)
    socks = []
    for _ in range(5):
        s = socket.create_connection(("127.0.0.1", d.port))
        s.sendall(b"POST /api/dtmsvr/submit HTTP/1.1\r\nHost: x\r\nX-A: ")
        socks.append(s)
    # meanwhile the server serves others
    assert d.api("GET", "/api/ping") == (200, {"msg": "pong"})
    t0 = time.monotonic()
    for s in socks:
        data, closed = read_until_closed(s, 5)
        assert closed, data
        s.close()
    assert time.monotonic() - t0 < 5
    # a client that stops mid-body is closed as well
    s = socket.create_connection(("127.0.0.1", d.port))
    s.sendall(b"POST /api/dtmsvr/submit HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"gid\"")
    _, closed = read_until_closed(s, 5)
    s.close()
    assert closed
    assert d.api("GET", "/api/ping") == (200, {"msg": "pong"})


def ping_on(sock, timeout):
    """Send GET /api/ping on an open keep-alive socket; the reply's status
    line, or None when nothing arrives within timeout."""
    sock.sendall(b"GET /api/ping HTTP/1.1\r\nHost: x\r\n\r\n")
    sock.settimeout(timeout)
    data = b""
    try:
        while b"pong" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        return None
    return data.split(b"\r\n", 1)[0] if data else None


def test_max_connections_waits_in_backlog(start_dtmd):
    """Limits.MaxConnections=5 with Limits.CloseIdleAtLimit off: with 5 client
    connections open (4 that did a request and stay idle, 1 that never sent a
    byte) a 6th is not served; closing one of the 5 lets the waiting one
    through. (The default closes the longest idle instead: test_hostile.py.)"""
    limit = 5
    d = start_dtmd(LIMITS_MAX_CONNECTIONS=limit, LIMITS_CLOSE_IDLE_AT_LIMIT="false")
    time.sleep(0.3)  # start()'s readiness probe connection is gone
    socks = []
    try:
        for _ in range(limit - 1):
            s = socket.create_connection(("127.0.0.1", d.port))
            socks.append(s)
            assert ping_on(s, 5) == b"HTTP/1.1 200 OK"  # accepted and counted
        silent = socket.create_connection(("127.0.0.1", d.port))
        socks.append(silent)
        time.sleep(0.3)
        waiting = socket.create_connection(("127.0.0.1", d.port))  # kernel backlog
        socks.append(waiting)
        assert ping_on(waiting, 1.0) is None, "connection over the limit was served"
        socks[0].close()
        t0 = time.monotonic()
        assert ping_on(waiting, 5) == b"HTTP/1.1 200 OK"
        assert time.monotonic() - t0 < 3
        # the silent one counted too: close it, and a fresh client is served
        silent.close()
        assert d.api("GET", "/api/ping") == (200, {"msg": "pong"})
    finally:
        for s in socks:
            s.close()


def test_max_connections_zero_is_unlimited(start_dtmd):
    d = start_dtmd(LIMITS_MAX_CONNECTIONS=0)
    socks = [socket.create_connection(("127.0.0.1", d.port)) for _ in range(20)]
    try:
        for s in socks:
            assert ping_on(s, 5) == b"HTTP/1.1 200 OK"
    finally:
        for s in socks:
            s.close()


# ---- hostile bodies ---------------------------------------------------------------

def hostile_cases(gid):
    base = empty_saga(gid)

    def with_(**kw):
        b = dict(base)
        b.update(kw)
        return json.dumps(b).encode()
    deep = ("[" * 10000) + ("]" * 10000)
    very_deep = ("[" * 400000) + ("]" * 400000)
    return {
        "huge-int-timeout": with_(timeout_to_fail=2 ** 63 - 1),
        "huge-int-retry": with_(retry_interval=10 ** 12),
        "huge-int-request-timeout": with_(request_timeout=9223372036854775),
        "int-overflow": ('{"gid":"%s","trans_type":"saga","retry_interval":%s}'
                         % (gid, "9" * 400)).encode(),
        "float-overflow": ('{"gid":"%s","trans_type":"saga","retry_interval":1e999}' % gid).encode(),
        "deep-nesting-10000": ('{"gid":"%s","trans_type":"saga","x":%s}' % (gid, deep)).encode(),
        "deep-nesting-400000": ('{"gid":"%s","trans_type":"saga","x":%s}'
                                % (gid, very_deep)).encode(),
        "deep-custom-data": with_(custom_data=deep),
        "invalid-utf8-gid": b'{"gid":"' + gid.encode() + b'\xff\xfe","trans_type":"saga"}',
        "invalid-utf8-payload": with_().replace(b'["{}"]', b'["\xc3\x28"]'),
        "overlong-utf8": b'{"gid":"' + gid.encode() + b'\xc0\xaf","trans_type":"saga"}',
        "thousands-of-steps": with_(steps=[{"action": "", "compensate": ""}] * 5000,
                                    payloads=["{}"] * 5000),
        "gid-control-char": with_(gid=gid + "\u0001x"),
        "gid-del-char": with_(gid=gid + "\u007f"),
        "gid-129-bytes": with_(gid=gid + "x" * (129 - len(gid))),
        "nul-in-body": with_()[:10] + b"\x00" + with_()[10:],
        "duplicate-keys": ('{"gid":"%s","gid":1,"trans_type":"saga"}' % gid).encode(),
    }


@pytest.mark.parametrize("case", sorted(hostile_cases("x").keys()))
def test_hostile_body(start_dtmd, redis_server, case):
    d = start_dtmd(LIMITS_MAX_BODY_BYTES=2000000)
    gid = new_gid("hostile")
    raw = hostile_cases(gid)[case]
    st, resp = d.api("POST", "/submit", raw=raw, timeout=20)
    assert_4xx_json(st, resp)
    assert_nothing_stored(d, redis_server, gid)
    assert d.api("GET", "/api/ping") == (200, {"msg": "pong"})
