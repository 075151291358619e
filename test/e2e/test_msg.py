"""MSG (two-phase message), topics and the KV endpoints, end to end.

Spec: docs/protocol.md (endpoints, branches, calling a branch, topics),
docs/modes.md#msg and docs/requests.md. A msg has one `action` branch per step (per
subscriber for `topic://<name>` steps), ids "%02d" or "%02d-%02d"; the
check-back call is GET query_prepared?branch_id=00&gid=..&op=msg&trans_type=msg.
Branch statuses P/S = prepared/succeed (msg branches never fail).
"""

import json
import signal
import threading
import time
import urllib.parse

import pytest

from dtmtest import (ERROR, ONGOING, P, S, F, SUCCESS_BODY, Stub, b64, free_port, new_gid,
                     parse_time, scripts_run, wait_until)

OK = (200, SUCCESS_BODY, 0)
FAIL_409 = (409, '{"error":"reason:Insufficient balance. FAILURE"}', 0)
FAIL_200 = (200, '{"dtm_result":"FAILURE","message":"Insufficient balance"}', 0)
ONGOING_200 = (200, '{"dtm_result":"ONGOING"}', 0)
SUCCESS = {"dtm_result": "SUCCESS"}
# For the interval tests: base interval 0.15 s, scanner tick <= 0.05 s.
FAST = {"TRANS_CRON_INTERVAL": 0.05, "RETRY_INTERVAL": 0.15}


# --------------------------------------------------------------------------
# helpers

def msg(gid, actions, payloads=None, **options):
    """A msg request body: one step per action URL; options copied as top-level keys
    (custom_data given as a dict is serialised to the JSON string dtm expects)."""
    body = {
        "gid": gid,
        "trans_type": "msg",
        "steps": [{"action": a} for a in actions],
        "payloads": list(payloads) if payloads is not None
        else ['{"amount":%d}' % (30 + i) for i in range(len(actions))],
    }
    for k, v in options.items():
        if k == "custom_data" and not isinstance(v, str):
            v = json.dumps(v)
        body[k] = v
    return body


def default_msg(stub, gid, **options):
    """TransOut + TransIn, query_prepared = the stub's QueryPrepared."""
    options.setdefault("query_prepared", stub.url("QueryPrepared"))
    return msg(gid, [stub.url("TransOut"), stub.url("TransIn")], **options)


def post_ok(dtmd, path, body):
    st, resp = dtmd.api("POST", path, body=body)
    assert (st, resp) == (200, SUCCESS), "%s -> %s %r" % (path, st, resp)


def names(calls):
    return [c.name for c in calls]


def statuses(q):
    return [b["status"] for b in q["branches"]]


def layout(q):
    return [(b["branch_id"], b["op"], b["url"]) for b in q["branches"]]


def assert_409(st, body):
    assert st == 409, "expected 409, got %s %r" % (st, body)
    assert isinstance(body, dict) and body.get("dtm_result") == "FAILURE", body
    assert isinstance(body.get("message"), str) and body["message"], body


def assert_400(st, body, contains=None):
    assert st == 400, "expected 400, got %s %r" % (st, body)
    assert isinstance(body, dict) and isinstance(body.get("message"), str) \
        and body["message"].strip(), body
    assert "SUCCESS" not in json.dumps(body), body
    if contains:
        assert contains in body["message"], body


def assert_nothing_stored(dtmd, redis_server, gid):
    st, q = dtmd.api("GET", "/query?gid=" + urllib.parse.quote(gid))
    assert (st, q) == (200, {"transaction": None, "branches": []}), (st, q)
    assert redis_server.mentions(gid) == [], redis_server.keys()


def assert_branch_call(c, gid, branch_id, payload):
    assert c.method == "POST", c
    assert c.raw_query == "branch_id=%s&gid=%s&op=action&trans_type=msg" % (branch_id, gid), c
    assert c.body == payload.encode(), (c, c.body)
    ct = c.headers.get("content-type", "")
    assert ct.split(";")[0].strip().lower() == "application/json", c.headers


def assert_qp_call(c, gid):
    """The check-back: GET, no body, the four parameters with branch_id 00 and op msg."""
    assert c.method == "GET", c
    assert c.body == b"", c.body
    assert c.raw_query == "branch_id=00&gid=%s&op=msg&trans_type=msg" % gid, c
    assert c.query == {"branch_id": "00", "gid": gid, "op": "msg", "trans_type": "msg"}


def due_index_entries(redis_server, gid):
    """Where gid sits in a due/schedule index (finished transactions must not)."""
    return [m for m in redis_server.mentions(gid) if m.startswith("zset") and "due" in m]


def gaps(calls):
    return [b.start - a.start for a, b in zip(calls, calls[1:])]


# topics ---------------------------------------------------------------------

def subscribe(dtmd, topic, url, remark="", how="get"):
    if how == "get":
        return dtmd.api("GET", "/subscribe?" + urllib.parse.urlencode(
            {"topic": topic, "url": url, "remark": remark}))
    return dtmd.api("POST", "/subscribe", body={"topic": topic, "url": url, "remark": remark})


def unsubscribe(dtmd, topic, url):
    return dtmd.api("GET", "/unsubscribe?" + urllib.parse.urlencode({"topic": topic, "url": url}))


def subscribe_ok(dtmd, topic, url, remark="", how="get"):
    assert subscribe(dtmd, topic, url, remark, how) == (200, SUCCESS), (topic, url)


def topic_kv(dtmd, topic):
    """The topic's KV record ({"cat","k","v","version",...}) or None."""
    st, body = dtmd.api("GET", "/queryKV?" + urllib.parse.urlencode({"cat": "topics", "key": topic}))
    assert st == 200 and isinstance(body, dict) and isinstance(body.get("kv"), list), (st, body)
    assert len(body["kv"]) <= 1, body
    return body["kv"][0] if body["kv"] else None


def topic_subscribers(dtmd, topic):
    rec = topic_kv(dtmd, topic)
    assert rec is not None, "topic %s not found" % topic
    return json.loads(rec["v"])


# --------------------------------------------------------------------------
# 1-2: delivery

@pytest.mark.parametrize("prepare_first", [True, False], ids=["prepare-submit", "submit-only"])
def test_msg_success_sequential(dtmd, stub, redis_server, gid, prepare_first):
    payloads = ['{"amount":30}', '{"amount":31,"note":"x y&z"}']
    stub.plan("TransOut", [(200, SUCCESS_BODY, 0.3)])  # a TransIn started early would overlap
    body = default_msg(stub, gid, payloads=payloads)
    if prepare_first:
        post_ok(dtmd, "/prepare", body)
        q = dtmd.query(gid)
        t = q["transaction"]
        assert t["status"] == P and t["trans_type"] == "msg", t
        assert t["query_prepared"] == stub.url("QueryPrepared")
        # branches exist from prepare on: one action per step, ids 01, 02
        assert layout(q) == [("01", "action", stub.url("TransOut")),
                             ("02", "action", stub.url("TransIn"))]
        assert statuses(q) == [P, P]
        assert [b["bin_data"] for b in q["branches"]] == [b64(p) for p in payloads]
        time.sleep(0.3)
        assert stub.calls() == [], stub.summary()  # a prepared msg is not delivered
    post_ok(dtmd, "/submit", body)
    # dtm "Normal": submitted right after submit, while TransOut is in flight
    t = dtmd.trans(gid)
    assert t["status"] == "submitted", t
    q = dtmd.wait_status(gid, S)
    assert statuses(q) == [S, S]
    assert layout(q) == [("01", "action", stub.url("TransOut")),
                         ("02", "action", stub.url("TransIn"))]
    t = q["transaction"]
    assert not t.get("rollback_reason"), t
    assert t.get("finish_time") and parse_time(t["finish_time"]) >= parse_time(t["create_time"])
    for b in q["branches"]:
        assert b.get("finish_time"), b

    calls = stub.calls()
    assert names(calls) == ["TransOut", "TransIn"], stub.summary()
    assert_branch_call(calls[0], gid, "01", payloads[0])
    assert_branch_call(calls[1], gid, "02", payloads[1])
    assert calls[1].start >= calls[0].end, stub.summary()  # sequential
    assert stub.count("QueryPrepared") == 0
    assert redis_server.mentions(gid)
    assert due_index_entries(redis_server, gid) == []  # finished: no longer scheduled


def test_msg_concurrent(dtmd, stub, gid):
    for n in ("TransOut", "TransIn"):
        stub.plan(n, [(200, SUCCESS_BODY, 0.5)])
    post_ok(dtmd, "/submit", default_msg(stub, gid, concurrent=True))
    q = dtmd.wait_status(gid, S)
    assert statuses(q) == [S, S]
    assert q["transaction"].get("concurrent") is True, q["transaction"]
    out, inn = stub.calls("TransOut"), stub.calls("TransIn")
    assert len(out) == 1 and len(inn) == 1, stub.summary()
    assert_branch_call(out[0], gid, "01", '{"amount":30}')
    assert_branch_call(inn[0], gid, "02", '{"amount":31}')
    # both were in flight at the same time
    assert max(out[0].start, inn[0].start) < min(out[0].end, inn[0].end), stub.summary()


def test_msg_concurrent_only_failed_branch_retried(dtmd, stub, gid):
    stub.plan("TransOut", [ERROR])
    post_ok(dtmd, "/submit", default_msg(stub, gid, concurrent=True))
    q = dtmd.wait_status(gid, S, timeout=15)
    assert statuses(q) == [S, S]
    assert stub.count("TransOut") == 2, stub.summary()
    assert stub.count("TransIn") == 1, stub.summary()  # succeeded at once: not called again


@pytest.mark.parametrize("custom_data", ['{"delay":0}', "{}", '{"other":"x"}', '{"delay":null}'],
                         ids=["delay-0", "empty-object", "other-key", "delay-null"])
def test_msg_custom_data_without_delay_delivers_at_once(dtmd, stub, gid, custom_data):
    t0 = time.monotonic()
    post_ok(dtmd, "/submit", default_msg(stub, gid, custom_data=custom_data))
    q = dtmd.wait_status(gid, S)
    assert statuses(q) == [S, S]
    assert q["transaction"]["custom_data"] == custom_data
    assert stub.calls("TransOut")[0].start - t0 < 0.5, stub.summary()


# --------------------------------------------------------------------------
# 3-4: check-back (query_prepared)

QP_CASES = {
    # name: (replies of the check-back URL, final status, number of check-back calls)
    "success": ([OK], S, 1),
    "success-null-body": ([(200, "null", 0)], S, 1),
    "failure-409": ([(409, '{"error":"local tx rolled back. FAILURE"}', 0)], F, 1),
    "failure-200-body": ([(200, '{"dtm_result":"FAILURE"}', 0)], F, 1),
    "ongoing-then-success": ([ONGOING, OK], S, 2),
    "ongoing-200-body-then-success": ([ONGOING_200, OK], S, 2),
    "error-then-success": ([ERROR, OK], S, 2),
    "error-then-failure": ([ERROR, (409, "no", 0)], F, 2),
    # no query_prepared at all: counts as SUCCESS once timed out (4.3)
    "no-query-prepared": ([], S, 0),
}


def run_side_by_side(cases, check):
    """Run check(name) for every case; report every failing case, not just the first."""
    failed = []
    for name in cases:
        try:
            check(name)
        except AssertionError as e:
            failed.append("[%s] %s" % (name, e))
    assert not failed, "\n\n".join(failed)


def test_msg_check_back(dtmd, stub, redis_server):
    """Every check-back answer (4.3), each case a msg of its own, all in one dtmd."""
    gids, t0 = {}, {}
    for name, (replies, _, _) in QP_CASES.items():
        gids[name] = new_gid("qp-" + name)
        stub.plan("QP-" + name, replies)
        t0[name] = time.monotonic()
        body = msg(gids[name], [stub.url("Out-" + name), stub.url("In-" + name)],
                   query_prepared=stub.url("QP-" + name), timeout_to_fail=1)
        if not replies:
            del body["query_prepared"]
        post_ok(dtmd, "/prepare", body)

    def check(name):
        _, final, n_qp = QP_CASES[name]
        gid = gids[name]
        q = dtmd.wait_status(gid, final, timeout=15)
        qp = stub.calls("QP-" + name)
        assert len(qp) == n_qp, stub.summary()
        for c in qp:
            assert_qp_call(c, gid)
        t = q["transaction"]
        out, inn = stub.calls("Out-" + name), stub.calls("In-" + name)
        # asked (or, without query_prepared, delivered) only once the msg is older
        # than timeout_to_fail (1 s), and soon after
        first = (qp or out)[0]
        assert 0.95 <= first.start - t0[name] < 3.0, first.start - t0[name]
        if final == S:
            assert statuses(q) == [S, S]
            assert len(out) == 1 and len(inn) == 1, stub.summary()
            assert_branch_call(out[0], gid, "01", '{"amount":30}')
            assert_branch_call(inn[0], gid, "02", '{"amount":31}')
            assert (not qp or out[0].start >= qp[-1].end) and inn[0].start >= out[0].end
            assert not t.get("rollback_reason"), t
        else:
            assert statuses(q) == [P, P]  # dtm TimeoutFailed: failed, [P,P]
            assert out == [] and inn == [], stub.summary()
            reason = t.get("rollback_reason") or ""
            assert "FAILURE" in reason and "query_prepared" in reason, reason
            assert t.get("rollback_time"), t
        assert due_index_entries(redis_server, gid) == []
    run_side_by_side(QP_CASES, check)
    time.sleep(0.4)  # finished: never asked or delivered again
    for name, (_, final, n_qp) in QP_CASES.items():
        assert stub.count("QP-" + name) == n_qp, (name, stub.summary())
        assert dtmd.status(gids[name]) == final, name
    assert stub.count("QueryPrepared") == 0


def test_msg_check_back_intervals(start_dtmd, stub):
    """ONGOING: asked again after the base interval (0.15 s), no back-off; ERROR (5xx):
    the interval doubles. Config TimeoutToFail 0.3 s applies (no timeout_to_fail)."""
    d = start_dtmd(TIMEOUT_TO_FAIL=0.3, **FAST)
    g_on, g_err = new_gid("qp-ongoing"), new_gid("qp-error")
    stub.plan("QP-ongoing", [ONGOING] * 3)
    stub.plan("QP-error", [ERROR, ERROR])
    for g, name in ((g_on, "ongoing"), (g_err, "error")):
        post_ok(d, "/prepare", msg(g, [stub.url("Out-" + name)],
                                   query_prepared=stub.url("QP-" + name)))
    stub.wait_calls("QP-ongoing", 1, timeout=5)
    assert d.status(g_on) == P  # still prepared while the answer is ONGOING
    for g in (g_on, g_err):
        assert statuses(d.wait_status(g, S, timeout=15)) == [S]
    qp = stub.calls("QP-ongoing")
    assert len(qp) == 4, stub.summary()
    g = gaps(qp)
    # back-off would give 0.3, 0.6, 1.2 s; a kept interval stays ~0.15-0.2 s
    assert max(g) < 0.45 and max(g) < 2 * min(g), ("ongoing", g)
    qp = stub.calls("QP-error")
    assert len(qp) == 3, stub.summary()
    g = gaps(qp)
    # base 0.15 s doubled per error: ~0.3 s, then ~0.6 s
    assert g[0] >= 0.27 and g[1] > 1.5 * g[0], ("error", g)
    for c in qp:
        assert_qp_call(c, g_err)


def test_msg_check_back_ongoing_resets_interval(start_dtmd, stub, gid):
    """docs/modes.md#msg (as dtm): a check-back answering ONGOING is asked
    again after the *base* interval, even after errors had doubled it."""
    d = start_dtmd(TIMEOUT_TO_FAIL=0.3, **FAST)
    stub.plan("QueryPrepared", [ERROR, ERROR, ONGOING])
    post_ok(d, "/prepare", default_msg(stub, gid))
    d.wait_status(gid, S, timeout=15)
    qp = stub.calls("QueryPrepared")
    assert len(qp) == 4, stub.summary()
    g = gaps(qp)
    # ~0.3 and ~0.6 s of back-off, then the base 0.15 s (0.6 s or more if kept)
    assert g[1] > 1.5 * g[0], g
    assert g[2] < 0.4, g


def test_msg_check_back_unreachable_then_up(start_dtmd, stub, gid):
    d = start_dtmd(TIMEOUT_TO_FAIL=0.5)
    port = free_port()  # nothing listens there yet
    qp_url = "http://127.0.0.1:%d/api/busi/QueryPrepared" % port
    post_ok(d, "/prepare", default_msg(stub, gid, query_prepared=qp_url))
    time.sleep(1.2)  # timed out and asked at least once: connection refused
    q = d.query(gid)
    assert q["transaction"]["status"] == P and statuses(q) == [P, P], q
    assert stub.calls() == []
    late = Stub(port)
    try:
        q = d.wait_status(gid, S, timeout=15)
        assert statuses(q) == [S, S]
        calls = late.calls("QueryPrepared")
        assert len(calls) == 1, late.summary()
        assert_qp_call(calls[0], gid)
    finally:
        late.close()
    assert names(stub.calls()) == ["TransOut", "TransIn"]


@pytest.mark.parametrize("where", ["trans", "config"])
def test_msg_not_checked_back_before_timeout(start_dtmd, stub, gid, where):
    if where == "trans":  # timeout_to_fail of the request (config default is 3 s)
        d = start_dtmd()
        timeout, body = 1, default_msg(stub, gid, timeout_to_fail=1)
    else:  # no timeout_to_fail: config TimeoutToFail applies to msg
        d = start_dtmd(TIMEOUT_TO_FAIL=0.8)
        timeout, body = 0.8, default_msg(stub, gid)
    t0 = time.monotonic()
    post_ok(d, "/prepare", body)
    time.sleep(timeout - 0.35)
    assert stub.calls() == [], stub.summary()
    assert d.status(gid) == P
    first = stub.wait_calls("QueryPrepared", 1, timeout=5)[0]
    assert first.start - t0 >= timeout - 0.05, (first.start - t0, timeout)
    assert first.start - t0 < timeout + 1.5, (first.start - t0, timeout)
    q = d.wait_status(gid, S)
    assert statuses(q) == [S, S]
    assert stub.count("QueryPrepared") == 1


def test_msg_abort_during_check_back(start_dtmd, stub, gid):
    """The application aborts while the check-back is in flight: the late SUCCESS of the
    check-back must not resurrect the msg (status CAS)."""
    d = start_dtmd(TIMEOUT_TO_FAIL=0.5)
    stub.plan("QueryPrepared", [(200, SUCCESS_BODY, 0.6)])
    post_ok(d, "/prepare", default_msg(stub, gid))
    call = stub.wait_calls("QueryPrepared", 1, timeout=5)[0]
    post_ok(d, "/abort", {"gid": gid, "trans_type": "msg"})
    wait_until(lambda: call.end is not None, timeout=3, msg="check-back to answer")
    time.sleep(0.5)
    q = d.query(gid)
    assert q["transaction"]["status"] == F and statuses(q) == [P, P], q
    assert names(stub.calls()) == ["QueryPrepared"], stub.summary()


def test_msg_submit_during_check_back(start_dtmd, stub, gid):
    """The application commits and submits (wait_result) while the server's check-back is
    in flight: dtm runs the submit's own pass -> branches delivered, 200."""
    d = start_dtmd(TIMEOUT_TO_FAIL=0.5)
    stub.plan("QueryPrepared", [(200, SUCCESS_BODY, 0.8)])
    body = default_msg(stub, gid)
    post_ok(d, "/prepare", body)
    stub.wait_calls("QueryPrepared", 1, timeout=5)
    st, resp = d.api("POST", "/submit", body=dict(body, wait_result=True))
    q = d.query(gid)
    assert (st, resp) == (200, SUCCESS), (st, resp, q["transaction"]["status"])
    assert q["transaction"]["status"] == S and statuses(q) == [S, S], q
    assert names(stub.calls()) == ["QueryPrepared", "TransOut", "TransIn"], stub.summary()


def test_msg_check_back_then_delay(start_dtmd, stub, gid):
    """A prepared msg with a delay, confirmed by the check-back before the delay is
    over, is delivered at create_time + delay. The check-back keeps an existing query
    string and carries branch_headers, like the branch calls."""
    d = start_dtmd(TIMEOUT_TO_FAIL=0.5)
    t0 = time.monotonic()
    body = default_msg(stub, gid, custom_data='{"delay":1}',
                       query_prepared=stub.url("QueryPrepared") + "?tenant=a%20b",
                       branch_headers={"X-Tenant": "t-1"})
    post_ok(d, "/prepare", body)
    qp = stub.wait_calls("QueryPrepared", 1, timeout=5)[0]
    assert qp.method == "GET" and qp.body == b""
    assert qp.raw_query == "tenant=a%20b&branch_id=00&gid=" + gid + "&op=msg&trans_type=msg", qp
    assert qp.headers.get("x-tenant") == "t-1", qp.headers
    wait_until(lambda: d.status(gid) in ("submitted", S), timeout=2, msg="submitted")
    if time.monotonic() - t0 < 0.9:
        assert names(stub.calls()) == ["QueryPrepared"], stub.summary()  # still delayed
        assert d.status(gid) == "submitted"
    q = d.wait_status(gid, S, timeout=10)
    assert statuses(q) == [S, S]
    calls = stub.calls()
    assert names(calls) == ["QueryPrepared", "TransOut", "TransIn"], stub.summary()
    assert 0.95 <= calls[1].start - t0 < 2.5, calls[1].start - t0
    for c in calls[1:]:
        assert c.headers.get("x-tenant") == "t-1", c.headers


def test_msg_empty_url_and_empty_payload(dtmd, stub, gid):
    """An empty action URL is an instant success (no call); an empty payload is sent
    as GET without a body (docs/protocol.md#calling-a-branch)."""
    post_ok(dtmd, "/submit", msg(gid, ["", stub.url("TransIn")], payloads=['{"a":1}', ""]))
    q = dtmd.wait_status(gid, S)
    assert statuses(q) == [S, S]
    assert [b["branch_id"] for b in q["branches"]] == ["01", "02"]
    calls = stub.calls()
    assert names(calls) == ["TransIn"], stub.summary()
    assert calls[0].method == "GET" and calls[0].body == b""
    assert calls[0].raw_query == "branch_id=02&gid=%s&op=action&trans_type=msg" % gid


def test_msg_empty_urls_settle_in_one_write(dtmd, stub, redis_server, gid):
    """Every action URL empty, no delay: delivering would succeed at once without a
    call, so the submit stores the msg succeed in its one script."""
    with redis_server.monitor() as seen:
        post_ok(dtmd, "/submit", msg(gid, ["", ""], wait_result=True))
        q = dtmd.query(gid)
    assert q["transaction"]["status"] == S, q
    assert statuses(q) == [S, S]
    assert scripts_run(seen, gid) == ["save_new"]
    assert stub.calls() == [], stub.summary()


def test_msg_empty_urls_with_delay_wait_for_it(dtmd, stub, gid):
    """A delay still holds an empty-URL msg back: it is not settled at submit."""
    t0 = time.monotonic()
    post_ok(dtmd, "/submit", msg(gid, ["", ""], custom_data={"delay": 1}))
    assert dtmd.status(gid) == "submitted"
    dtmd.wait_status(gid, S, timeout=10)
    assert time.monotonic() - t0 >= 0.95
    assert statuses(dtmd.query(gid)) == [S, S]


# --------------------------------------------------------------------------
# 5: endpoints vs state (docs/requests.md)

def test_msg_abort_prepared(dtmd, stub, redis_server, gid):
    body = default_msg(stub, gid, timeout_to_fail=1)
    post_ok(dtmd, "/prepare", body)
    g_stop = new_gid("forcestop")
    post_ok(dtmd, "/prepare", default_msg(stub, g_stop, timeout_to_fail=1))
    post_ok(dtmd, "/forceStop", {"gid": g_stop})
    post_ok(dtmd, "/abort", {"gid": gid, "trans_type": "msg"})
    q = dtmd.query(gid)
    t = q["transaction"]
    assert t["status"] == F, t
    assert t.get("rollback_time"), t
    assert statuses(q) == [P, P]
    time.sleep(1.2)  # past timeout_to_fail: a failed msg is never checked back
    assert stub.calls() == [], stub.summary()
    assert dtmd.status(gid) == F
    assert dtmd.status(g_stop) == F
    assert due_index_entries(redis_server, gid) == []
    assert due_index_entries(redis_server, g_stop) == []
    # everything after that is a conflict
    assert_409(*dtmd.api("POST", "/submit", body=body))
    assert_409(*dtmd.api("POST", "/prepare", body=body))
    assert_409(*dtmd.api("POST", "/abort", body={"gid": gid, "trans_type": "msg"}))
    time.sleep(0.3)
    assert stub.calls() == [], stub.summary()
    q = dtmd.query(gid)
    assert q["transaction"]["status"] == F and statuses(q) == [P, P]


def test_msg_abort_submitted_is_409(dtmd, stub, gid):
    stub.set_default("TransOut", *ONGOING)
    body = default_msg(stub, gid)
    post_ok(dtmd, "/submit", body)
    stub.wait_calls("TransOut", 1)
    assert_409(*dtmd.api("POST", "/abort", body={"gid": gid, "trans_type": "msg"}))
    assert dtmd.status(gid) == "submitted"
    stub.clear_default("TransOut")
    q = dtmd.wait_status(gid, S)
    assert statuses(q) == [S, S]
    assert_409(*dtmd.api("POST", "/abort", body={"gid": gid, "trans_type": "msg"}))
    assert_409(*dtmd.api("POST", "/submit", body=body))
    assert dtmd.status(gid) == S


def test_msg_abort_unknown_gid(dtmd, redis_server, gid):
    st, body = dtmd.api("POST", "/abort", body={"gid": gid, "trans_type": "msg"})
    assert st in (404, 500), (st, body)  # dtm 500; dtmd 404
    assert isinstance(body, dict) and body.get("message"), body
    assert_nothing_stored(dtmd, redis_server, gid)


def test_msg_prepare_idempotent_then_conflicts(dtmd, stub, gid):
    first = default_msg(stub, gid, payloads=['{"amount":1}', '{"amount":2}'])
    post_ok(dtmd, "/prepare", first)
    # prepare again (another payload): 200, nothing duplicated or overwritten
    post_ok(dtmd, "/prepare", default_msg(stub, gid, payloads=['{"amount":8}', '{"amount":9}']))
    q = dtmd.query(gid)
    assert q["transaction"]["status"] == P
    assert [b["bin_data"] for b in q["branches"]] == [b64('{"amount":1}'), b64('{"amount":2}')]
    # submit a body with other steps: the branches generated at prepare are delivered
    stub.set_default("TransOut", *ONGOING)
    post_ok(dtmd, "/submit", msg(gid, [stub.url("Other")], payloads=['{"amount":7}']))
    stub.wait_calls("TransOut", 1)
    assert_409(*dtmd.api("POST", "/prepare", body=first))  # prepare while submitted
    stub.clear_default("TransOut")
    q = dtmd.wait_status(gid, S)
    assert layout(q) == [("01", "action", stub.url("TransOut")),
                         ("02", "action", stub.url("TransIn"))]
    assert statuses(q) == [S, S]
    assert stub.count("Other") == 0, stub.summary()
    assert stub.calls("TransOut")[-1].body == b'{"amount":1}'
    assert stub.calls("TransIn")[0].body == b'{"amount":2}'
    assert_409(*dtmd.api("POST", "/prepare", body=first))  # prepare after success
    assert_409(*dtmd.api("POST", "/submit", body=first))   # submit after success
    assert dtmd.status(gid) == S
    assert stub.count("TransIn") == 1


def test_msg_resubmit_while_submitted_is_idempotent(dtmd, stub, gid):
    stub.set_default("TransOut", *ONGOING)
    body = default_msg(stub, gid)
    post_ok(dtmd, "/submit", body)
    stub.wait_calls("TransOut", 1)
    post_ok(dtmd, "/submit", body)
    stub.clear_default("TransOut")
    q = dtmd.wait_status(gid, S)
    assert statuses(q) == [S, S]  # no duplicate branch records
    assert stub.count("TransIn") == 1, stub.summary()


# --------------------------------------------------------------------------
# 6: delay

def test_msg_delay(dtmd, stub, gid):
    t0 = time.monotonic()
    post_ok(dtmd, "/submit", default_msg(stub, gid, custom_data={"delay": 2}))
    q = dtmd.query(gid)
    assert q["transaction"]["status"] == "submitted", q
    assert statuses(q) == [P, P]

    def moved():
        t = dtmd.trans(gid)
        d = (parse_time(t["next_cron_time"]) - parse_time(t["create_time"])).total_seconds()
        return d if d >= 1.9 else None
    # the first pass pushes the due time to create_time + delay
    d = wait_until(moved, timeout=1.5, msg="next_cron_time to move to create_time + 2 s")
    assert d <= 2.2, d
    time.sleep(max(0.0, t0 + 1.6 - time.monotonic()))
    assert stub.calls() == [], stub.summary()
    assert dtmd.status(gid) == "submitted"
    q = dtmd.wait_status(gid, S, timeout=10)
    assert statuses(q) == [S, S]
    calls = stub.calls()
    assert names(calls) == ["TransOut", "TransIn"], stub.summary()
    assert 1.95 <= calls[0].start - t0 < 3.5, calls[0].start - t0


def test_msg_delay_survives_sigkill(dtmd, stub, gid):
    t0 = time.monotonic()
    # wait_result does not wait for the delay: the pass ends with the msg submitted -> 409
    st, resp = dtmd.api("POST", "/submit",
                        body=default_msg(stub, gid, custom_data='{"delay":1}', wait_result=True))
    assert_409(st, resp)
    assert time.monotonic() - t0 < 0.6
    assert dtmd.status(gid) == "submitted"
    time.sleep(0.2)
    dtmd.kill(signal.SIGKILL)
    dtmd.start()
    time.sleep(max(0.0, t0 + 0.85 - time.monotonic()))
    assert stub.calls() == [], stub.summary()  # the restarted dtmd still waits
    q = dtmd.wait_status(gid, S, timeout=10)
    assert statuses(q) == [S, S]
    calls = stub.calls()
    assert names(calls) == ["TransOut", "TransIn"], stub.summary()
    assert 0.95 <= calls[0].start - t0 < 2.5, calls[0].start - t0


def test_msg_delay_longer_than_data_expire(start_dtmd, stub, redis_server, gid):
    """A delayed msg must not be lost: either the delay is refused (400, nothing stored)
    or the record lives until delivery."""
    d = start_dtmd(STORE_DATA_EXPIRE=1)
    st, resp = d.api("POST", "/submit", body=default_msg(stub, gid, custom_data='{"delay":2}'))
    if st == 400:
        assert_400(st, resp)
        assert_nothing_stored(d, redis_server, gid)
        return
    assert (st, resp) == (200, SUCCESS)
    deadline = time.monotonic() + 6
    while True:
        t = d.trans(gid)
        assert t is not None, "the msg record vanished before delivery; calls: " + stub.summary()
        if t["status"] == S:
            break
        assert time.monotonic() < deadline, t
        time.sleep(0.1)
    assert names(stub.calls()) == ["TransOut", "TransIn"]


def test_msg_huge_delay(dtmd, stub, redis_server, gid):
    """delay 9.3e15 s fits an int64 but not in ms: refuse it (400) or never deliver it."""
    st, resp = dtmd.api("POST", "/submit",
                        body=default_msg(stub, gid, custom_data='{"delay":9300000000000000}'))
    if st == 400:
        assert_400(st, resp)
        assert_nothing_stored(dtmd, redis_server, gid)
        return
    assert (st, resp) == (200, SUCCESS)
    time.sleep(0.5)
    assert stub.calls() == [], stub.summary()
    assert dtmd.status(gid) == "submitted"


# --------------------------------------------------------------------------
# 7: branch answers during delivery

RETRY_CASES = {
    # name: (reply given twice, extra request options)
    "409": (FAIL_409, {}),
    "200-FAILURE": (FAIL_200, {}),
    "500": (ERROR, {}),
    "425": (ONGOING, {}),
    "200-ONGOING": (ONGOING_200, {}),
    # retry_limit is a saga option (docs/protocol.md#transaction-requests): a msg keeps retrying
    "500-retry-limit-1": (ERROR, {"retry_limit": 1}),
    # timeout_to_fail only concerns a prepared msg: a submitted one never times out
    "425-timeout-to-fail-1": ((425, "", 0.6), {"timeout_to_fail": 1}),
}


def test_msg_branch_retried_until_success(start_dtmd, stub):
    """FAILURE, ERROR and ONGOING of the first branch: retried until it succeeds, the
    second branch only called after that, the msg never fails (one msg per case)."""
    d = start_dtmd(RETRY_MAX_INTERVAL=0.6)  # keep the back-off short
    gids = {}
    for name, (reply, opts) in RETRY_CASES.items():
        gids[name] = new_gid("retry-" + name)
        stub.plan("Out-" + name, [reply, reply])
        post_ok(d, "/submit", msg(gids[name], [stub.url("Out-" + name), stub.url("In-" + name)],
                                  **opts))
    for name in RETRY_CASES:
        stub.wait_calls("Out-" + name, 1)
        q = d.query(gids[name])
        if stub.count("Out-" + name) == 1:  # not retried yet
            assert q["transaction"]["status"] == "submitted", (name, q)
            assert statuses(q) == [P, P], (name, q)

    def check(name):
        gid = gids[name]
        q = d.wait_status(gid, S, timeout=15)  # msg delivery never fails
        assert statuses(q) == [S, S]
        assert not q["transaction"].get("rollback_reason"), q["transaction"]
        out, inn = stub.calls("Out-" + name), stub.calls("In-" + name)
        assert len(out) == 3 and len(inn) == 1, stub.summary()
        for c in out:
            assert_branch_call(c, gid, "01", '{"amount":30}')
        # sequential: the second branch only after the first finally succeeded
        assert inn[0].start >= out[-1].end, stub.summary()
    run_side_by_side(RETRY_CASES, check)


def test_msg_second_branch_retried_first_not_repeated(dtmd, stub, gid):
    stub.plan("TransIn", [FAIL_409])
    post_ok(dtmd, "/submit", default_msg(stub, gid))
    q = dtmd.wait_status(gid, S, timeout=15)
    assert statuses(q) == [S, S]
    assert names(stub.calls()) == ["TransOut", "TransIn", "TransIn"], stub.summary()


# --------------------------------------------------------------------------
# 8: wait_result

@pytest.mark.parametrize("prepare_first", [False, True], ids=["submit", "prepare-submit"])
def test_msg_wait_result_success(dtmd, stub, gid, prepare_first):
    body = default_msg(stub, gid, wait_result=True)
    if prepare_first:
        post_ok(dtmd, "/prepare", default_msg(stub, gid))
    st, resp = dtmd.api("POST", "/submit", body=body)
    assert (st, resp) == (200, SUCCESS), (st, resp)
    q = dtmd.query(gid)  # done when submit answered
    assert q["transaction"]["status"] == S and statuses(q) == [S, S], q
    assert names(stub.calls()) == ["TransOut", "TransIn"]


@pytest.mark.parametrize("reply,status", [(ONGOING, 409), (ONGOING_200, 409), (FAIL_409, 409),
                                          (ERROR, 500)],
                         ids=["ongoing-409", "ongoing-200-body", "failure", "error"])
def test_msg_wait_result_branch_not_done(dtmd, stub, gid, reply, status):
    stub.plan("TransOut", [reply])
    st, resp = dtmd.api("POST", "/submit", body=default_msg(stub, gid, wait_result=True))
    if status == 409:  # dtm: 409 FAILURE even for ONGOING (docs/protocol.md#wait_result)
        assert_409(st, resp)
    else:
        assert st == 500, (st, resp)
        assert isinstance(resp, dict) and resp.get("message"), resp
        assert "dtm_result" not in resp, resp
    assert "SUCCESS" not in json.dumps(resp)
    q = dtmd.query(gid)
    if stub.count("TransOut") == 1:
        assert q["transaction"]["status"] == "submitted", q
        assert statuses(q) == [P, P]
    assert stub.count("TransIn") == 0 or stub.count("TransOut") == 2
    q = dtmd.wait_status(gid, S, timeout=15)  # delivered later anyway
    assert statuses(q) == [S, S]
    assert names(stub.calls()) == ["TransOut", "TransOut", "TransIn"], stub.summary()


# --------------------------------------------------------------------------
# 9: topics and KV

def test_topic_fanout(dtmd, stub, gid):
    a, b, c = stub.url("SubA"), stub.url("SubB"), stub.url("Plain")
    subscribe_ok(dtmd, "t1", a, "first", how="get")   # dtm: query string
    subscribe_ok(dtmd, "t1", b, "second", how="post")  # JSON body
    rec = topic_kv(dtmd, "t1")
    assert rec["cat"] == "topics" and rec["k"] == "t1", rec
    assert rec["version"] == 2, rec
    assert json.loads(rec["v"]) == [{"url": a, "remark": "first"}, {"url": b, "remark": "second"}]
    for k in ("create_time", "update_time"):
        parse_time(rec[k])

    stub.plan("SubA", [(200, SUCCESS_BODY, 0.2)])
    payloads = ['{"to":"topic"}', '{"to":"plain"}']
    post_ok(dtmd, "/submit", msg(gid, ["topic://t1", c], payloads=payloads))
    q = dtmd.wait_status(gid, S)
    assert layout(q) == [("01-01", "action", a), ("01-02", "action", b), ("02", "action", c)]
    assert statuses(q) == [S, S, S]
    assert [x["bin_data"] for x in q["branches"]] == [b64(payloads[0])] * 2 + [b64(payloads[1])]
    assert q["transaction"]["steps"] == [{"action": "topic://t1"}, {"action": c}]
    calls = stub.calls()
    assert names(calls) == ["SubA", "SubB", "Plain"], stub.summary()
    assert_branch_call(calls[0], gid, "01-01", payloads[0])
    assert_branch_call(calls[1], gid, "01-02", payloads[0])
    assert_branch_call(calls[2], gid, "02", payloads[1])
    assert calls[1].start >= calls[0].end, stub.summary()  # sequential, in storage order


def test_topic_ids_single_subscriber_and_second_step(dtmd, stub):
    a, b, c = stub.url("SubA"), stub.url("SubB"), stub.url("Plain")
    subscribe_ok(dtmd, "one", a)
    subscribe_ok(dtmd, "two", a)
    subscribe_ok(dtmd, "two", b)
    g1, g2 = new_gid("single"), new_gid("second")
    post_ok(dtmd, "/submit", msg(g1, ["topic://one"]))
    post_ok(dtmd, "/submit", msg(g2, [c, "topic://two"]))
    q1, q2 = dtmd.wait_status(g1, S), dtmd.wait_status(g2, S)
    assert layout(q1) == [("01", "action", a)]  # one subscriber: plain id
    assert layout(q2) == [("01", "action", c), ("02-01", "action", a), ("02-02", "action", b)]
    assert statuses(q2) == [S, S, S]
    per_gid = sorted((x.query["gid"], x.name, x.branch_id) for x in stub.calls())
    assert per_gid == sorted([(g1, "SubA", "01"), (g2, "Plain", "01"),
                              (g2, "SubA", "02-01"), (g2, "SubB", "02-02")]), stub.summary()


def test_topic_branches_fixed_at_prepare(dtmd, stub, gid):
    """Topics are expanded when the msg is created (prepare); a later subscription does
    not add branches to it."""
    a, b = stub.url("SubA"), stub.url("SubB")
    subscribe_ok(dtmd, "t1", a)
    body = msg(gid, ["topic://t1"], query_prepared=stub.url("QueryPrepared"))
    post_ok(dtmd, "/prepare", body)
    subscribe_ok(dtmd, "t1", b)
    post_ok(dtmd, "/submit", body)
    q = dtmd.wait_status(gid, S)
    assert layout(q) == [("01", "action", a)]
    assert names(stub.calls()) == ["SubA"], stub.summary()


def test_topic_many_subscribers(dtmd, stub, gid):
    """Ids "01-01" .. "01-11" (two digits each), delivered one after the other in
    storage order."""
    urls = [stub.url("Sub%02d" % i) for i in range(11)]
    for u in urls:
        subscribe_ok(dtmd, "wide", u)
    post_ok(dtmd, "/submit", msg(gid, ["topic://wide"]))
    q = dtmd.wait_status(gid, S)
    ids = ["01-%02d" % (j + 1) for j in range(11)]
    assert layout(q) == [(i, "action", u) for i, u in zip(ids, urls)]
    assert statuses(q) == [S] * 11
    calls = stub.calls()
    assert [(c.name, c.branch_id) for c in calls] == \
        [("Sub%02d" % j, ids[j]) for j in range(11)], stub.summary()
    for a, b in zip(calls, calls[1:]):
        assert b.start >= a.end, stub.summary()


def test_topic_concurrent(dtmd, stub, gid):
    # (the stub's listen backlog is 5: keep the fan-out small)
    urls = [stub.url("SubA"), stub.url("SubB"), stub.url("SubC")]
    for u in urls:
        subscribe_ok(dtmd, "t3", u)
    for n in ("SubA", "SubB", "SubC", "Plain"):
        stub.plan(n, [(200, SUCCESS_BODY, 0.4)])
    post_ok(dtmd, "/submit", msg(gid, ["topic://t3", stub.url("Plain")], concurrent=True))
    q = dtmd.wait_status(gid, S)
    assert [b["branch_id"] for b in q["branches"]] == ["01-01", "01-02", "01-03", "02"]
    assert statuses(q) == [S] * 4
    calls = stub.calls()
    assert sorted((c.name, c.branch_id) for c in calls) == \
        [("Plain", "02"), ("SubA", "01-01"), ("SubB", "01-02"), ("SubC", "01-03")], stub.summary()
    assert max(c.start for c in calls) < min(c.end for c in calls), stub.summary()


def test_topic_name_needing_escapes(dtmd, stub, redis_server, gid):
    name = "orders paid/v1?x=1&y"
    st, body = dtmd.api("GET", "/subscribe?" + urllib.parse.urlencode(
        {"topic": name, "url": stub.url("SubA"), "remark": "r&r"}))
    assert (st, body) == (200, SUCCESS)
    assert topic_subscribers(dtmd, name) == [{"url": stub.url("SubA"), "remark": "r&r"}]
    post_ok(dtmd, "/submit", msg(gid, ["topic://" + name]))
    assert layout(dtmd.wait_status(gid, S)) == [("01", "action", stub.url("SubA"))]
    st, body = dtmd.api("DELETE", "/topic/" + urllib.parse.quote(name, safe=""))
    assert (st, body) == (200, SUCCESS)
    assert topic_kv(dtmd, name) is None
    g2 = new_gid("deleted")
    assert_400(*dtmd.api("POST", "/submit", body=msg(g2, ["topic://" + name])),
               contains="topic not found")
    assert_nothing_stored(dtmd, redis_server, g2)


def test_topic_unsubscribe(dtmd, stub, redis_server):
    a, b = stub.url("SubA"), stub.url("SubB")
    subscribe_ok(dtmd, "t1", a)
    subscribe_ok(dtmd, "t1", b)
    assert dtmd.api("POST", "/unsubscribe", body={"topic": "t1", "url": a}) == (200, SUCCESS)
    assert topic_subscribers(dtmd, "t1") == [{"url": b, "remark": ""}]
    assert topic_kv(dtmd, "t1")["version"] == 3
    g = new_gid("after-unsub")
    post_ok(dtmd, "/submit", msg(g, ["topic://t1"]))
    q = dtmd.wait_status(g, S)
    assert layout(q) == [("01", "action", b)]
    assert names(stub.calls()) == ["SubB"], stub.summary()
    # removing the last URL leaves an empty topic; version = 2 x subscribes
    assert unsubscribe(dtmd, "t1", b) == (200, SUCCESS)
    rec = topic_kv(dtmd, "t1")
    assert json.loads(rec["v"]) == [] and rec["version"] == 4, rec
    g2 = new_gid("empty-topic")
    st, body = dtmd.api("POST", "/submit", body=msg(g2, ["topic://t1"]))
    assert_400(st, body, "topic not found")
    assert_nothing_stored(dtmd, redis_server, g2)
    # and it can be subscribed again
    subscribe_ok(dtmd, "t1", a)
    assert topic_subscribers(dtmd, "t1") == [{"url": a, "remark": ""}]


def test_topic_delete(dtmd, stub, redis_server, gid):
    subscribe_ok(dtmd, "gone", stub.url("SubA"))
    assert dtmd.api("DELETE", "/topic/gone") == (200, SUCCESS)
    assert topic_kv(dtmd, "gone") is None
    for path in ("/submit", "/prepare"):
        st, body = dtmd.api("POST", path, body=msg(gid, ["topic://gone"],
                                                     query_prepared=stub.url("QueryPrepared")))
        assert_400(st, body, "topic not found")
        assert_nothing_stored(dtmd, redis_server, gid)
    # deleting it again: not found (dtm: 500 storage: NotFound)
    st, body = dtmd.api("DELETE", "/topic/gone")
    assert st == 404 and isinstance(body, dict) and body.get("message"), (st, body)
    # other methods on /topic/{name} do not delete
    subscribe_ok(dtmd, "kept", stub.url("SubA"))
    st, _ = dtmd.api("GET", "/topic/kept")
    assert st == 404
    assert topic_kv(dtmd, "kept") is not None
    time.sleep(0.2)
    assert stub.calls() == []


def test_topic_subscribe_errors(dtmd, stub):
    a = stub.url("SubA")
    subscribe_ok(dtmd, "t1", a)
    st, body = subscribe(dtmd, "t1", a, "again")  # duplicate: dtm 500, dtmd 409
    assert_409(st, body)
    assert "this url exists" in body["message"], body
    assert topic_kv(dtmd, "t1")["version"] == 1  # unchanged
    assert topic_subscribers(dtmd, "t1") == [{"url": a, "remark": ""}]
    for params, text in ((("", a), "empty topic"), (("t1", ""), "empty url"),
                         (("t1", "ftp://x/y"), "http")):
        assert_400(*subscribe(dtmd, *params), contains=text)
        assert_400(*subscribe(dtmd, *params, how="post"), contains=text)
    assert_400(*dtmd.api("GET", "/subscribe"), contains="empty topic")
    assert_400(*dtmd.api("POST", "/subscribe", raw="{not json"))
    assert topic_subscribers(dtmd, "t1") == [{"url": a, "remark": ""}]


def test_topic_unsubscribe_errors(dtmd, stub):
    a, b = stub.url("SubA"), stub.url("SubB")
    st, body = unsubscribe(dtmd, "nosuch", a)
    assert st == 404 and "no such a topic" in body.get("message", ""), (st, body)
    subscribe_ok(dtmd, "t1", a)
    st, body = unsubscribe(dtmd, "t1", b)
    assert st == 404 and "no such an url" in body.get("message", ""), (st, body)
    assert unsubscribe(dtmd, "t1", a) == (200, SUCCESS)
    st, body = unsubscribe(dtmd, "t1", a)
    assert_409(st, body)
    assert "this topic is empty" in body["message"], body
    assert_400(*unsubscribe(dtmd, "", a), contains="empty topic")
    assert_400(*unsubscribe(dtmd, "t1", ""), contains="empty url")
    assert topic_kv(dtmd, "t1")["version"] == 2


def test_topic_concurrent_subscribes(dtmd, stub):
    """dtm's Topic test: concurrent subscribers of one topic all get in; version = count."""
    urls = [stub.url("Sub%d" % i) for i in range(10)]
    results = []

    def go(u):
        results.append(subscribe(dtmd, "busy", u))
    threads = [threading.Thread(target=go, args=(u,)) for u in urls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == [(200, SUCCESS)] * 10, results
    rec = topic_kv(dtmd, "busy")
    assert rec["version"] == 10, rec
    assert sorted(x["url"] for x in json.loads(rec["v"])) == sorted(urls)


def test_kv_query_and_scan(dtmd, stub):
    topics = ["k%d" % i for i in range(7)]
    for i, t in enumerate(topics):
        subscribe_ok(dtmd, t, stub.url("Sub%d" % i), "r%d" % i)
    # queryKV without key: every topic
    st, body = dtmd.api("GET", "/queryKV?cat=topics")
    assert st == 200 and set(body) == {"kv"}, body
    assert sorted(r["k"] for r in body["kv"]) == topics
    for r in body["kv"]:
        assert r["cat"] == "topics" and r["version"] == 1, r
        i = int(r["k"][1:])
        assert json.loads(r["v"]) == [{"url": stub.url("Sub%d" % i), "remark": "r%d" % i}]
    assert dtmd.api("GET", "/queryKV?cat=topics&key=nosuch") == (200, {"kv": []})
    assert dtmd.api("GET", "/queryKV?cat=nosuchcat") == (200, {"kv": None})
    # scanKV: walk the pages, every topic exactly once
    seen, pos, pages = [], "", 0
    while True:
        st, body = dtmd.api("GET", "/scanKV?" + urllib.parse.urlencode(
            {"cat": "topics", "position": pos, "limit": 2}))
        assert st == 200 and set(body) == {"kv", "next_position"}, (st, body)
        assert isinstance(body["kv"], list) and isinstance(body["next_position"], str), body
        seen += [r["k"] for r in body["kv"]]
        pages += 1
        assert pages < 50, seen
        pos = body["next_position"]
        if pos == "":
            break
    assert sorted(seen) == topics, seen
    assert dtmd.api("GET", "/scanKV?cat=nosuchcat") == (200, {"kv": [], "next_position": ""})
    st, body = dtmd.api("GET", "/scanKV?cat=topics&limit=1000")
    assert st == 200 and body["next_position"] == "" and sorted(r["k"] for r in body["kv"]) == topics


def test_topic_shared_between_instances(start_dtmd, stub, redis_server):
    d1, d2 = start_dtmd(), start_dtmd()
    a, b = stub.url("SubA"), stub.url("SubB")
    subscribe_ok(d1, "shared", a)
    g1 = new_gid("via-d2")
    post_ok(d2, "/submit", msg(g1, ["topic://shared"]))  # at once, no cache refresh wait
    assert layout(d2.wait_status(g1, S)) == [("01", "action", a)]
    subscribe_ok(d2, "shared", b)
    g2 = new_gid("via-d1")
    post_ok(d1, "/submit", msg(g2, ["topic://shared"]))
    assert layout(d1.wait_status(g2, S)) == [("01-01", "action", a), ("01-02", "action", b)]
    assert unsubscribe(d2, "shared", a) == (200, SUCCESS)
    g3 = new_gid("after-unsub")
    post_ok(d1, "/submit", msg(g3, ["topic://shared"]))
    assert layout(d1.wait_status(g3, S)) == [("01", "action", b)]
    assert d2.api("DELETE", "/topic/shared") == (200, SUCCESS)
    g4 = new_gid("after-delete")
    st, body = d1.api("POST", "/submit", body=msg(g4, ["topic://shared"]))
    assert_400(st, body, "topic not found")
    assert_nothing_stored(d1, redis_server, g4)
    assert sorted((c.query["gid"], c.name) for c in stub.calls()) == \
        sorted([(g1, "SubA"), (g2, "SubA"), (g2, "SubB"), (g3, "SubB")]), stub.summary()


# --------------------------------------------------------------------------
# 10: SIGKILL

@pytest.mark.parametrize("hang,concurrent", [("TransOut", False), ("TransIn", False),
                                             ("TransIn", True)],
                         ids=["first", "second", "concurrent"])
def test_msg_sigkill_mid_delivery(dtmd, stub, gid, hang, concurrent):
    stub.plan(hang, [(200, SUCCESS_BODY, 30)])  # in flight when dtmd dies
    post_ok(dtmd, "/submit", default_msg(stub, gid, concurrent=concurrent))
    stub.wait_calls(hang, 1)
    if concurrent:  # the other branch answered at once: wait until that is stored
        wait_until(lambda: statuses(dtmd.query(gid)) == [S, P], timeout=5, msg="TransOut stored")
    dtmd.kill(signal.SIGKILL)
    assert not dtmd.running
    dtmd.start()
    q = dtmd.wait_status(gid, S, timeout=20)
    assert statuses(q) == [S, S]
    counts = {n: stub.count(n) for n in ("TransOut", "TransIn")}
    # only the interrupted call is repeated; a persisted success is never repeated
    assert counts == {n: (2 if n == hang else 1) for n in counts}, stub.summary()
    if not concurrent:  # concurrent delivery starts both at once, in no fixed order
        seen = []
        for c in stub.calls():
            if c.name not in seen:
                seen.append(c.name)
        assert seen == ["TransOut", "TransIn"], stub.summary()
        assert stub.calls("TransIn")[-1].start >= stub.calls("TransOut")[-1].end


@pytest.mark.parametrize("when", ["before-timeout", "check-back-in-flight"])
def test_msg_sigkill_prepared(dtmd, stub, gid, when):
    if when == "check-back-in-flight":
        stub.plan("QueryPrepared", [(200, SUCCESS_BODY, 30)])
    post_ok(dtmd, "/prepare", default_msg(stub, gid, timeout_to_fail=1))
    if when == "check-back-in-flight":
        stub.wait_calls("QueryPrepared", 1, timeout=5)
    dtmd.kill(signal.SIGKILL)
    if when == "before-timeout":
        assert stub.calls() == []
        time.sleep(1.0)  # times out while no dtmd runs
    dtmd.start()
    q = dtmd.wait_status(gid, S, timeout=20)
    assert statuses(q) == [S, S]
    qp = stub.calls("QueryPrepared")
    assert len(qp) == (2 if when == "check-back-in-flight" else 1), stub.summary()
    for c in qp:
        assert_qp_call(c, gid)
    assert names(stub.calls())[len(qp):] == ["TransOut", "TransIn"], stub.summary()


# --------------------------------------------------------------------------
# 11: back-off

def test_msg_delivery_backoff(start_dtmd, stub):
    """ERROR and FAILURE of a msg branch double the interval; ONGOING keeps it
    (docs/protocol.md#retries-and-back-off). Base 0.15 s."""
    d = start_dtmd(**FAST)
    g_err, g_on = new_gid("backoff"), new_gid("ongoing")
    stub.plan("Out-err", [ERROR, FAIL_409, ERROR])
    stub.plan("Out-on", [ONGOING] * 3)
    post_ok(d, "/submit", msg(g_err, [stub.url("Out-err"), stub.url("In-err")]))
    post_ok(d, "/submit", msg(g_on, [stub.url("Out-on")]))
    assert statuses(d.wait_status(g_err, S, timeout=20)) == [S, S]
    assert statuses(d.wait_status(g_on, S, timeout=20)) == [S]
    calls = stub.calls("Out-err")
    assert len(calls) == 4, stub.summary()
    g = gaps(calls)
    # expected ~0.3, ~0.6, ~1.2
    assert 0.27 <= g[0] < 0.6, g
    assert g[1] > 1.5 * g[0], g
    assert g[2] > 1.5 * g[1] and g[2] < 1.8, g
    assert stub.count("In-err") == 1
    g = gaps(stub.calls("Out-on"))
    assert len(g) == 3 and max(g) < 0.45 and max(g) < 2 * min(g), ("ongoing", g)


# --------------------------------------------------------------------------
# 12: bad input to prepare / submit

URL = "http://127.0.0.1:9/api/busi/TransOut"  # never called
QP = "http://127.0.0.1:9/api/busi/QueryPrepared"


def bad(gid, **over):
    body = {"gid": gid, "trans_type": "msg", "steps": [{"action": URL}],
            "payloads": ['{"amount":30}'], "query_prepared": QP}
    body.update(over)
    return json.dumps(body)


def without(gid, key):
    body = json.loads(bad(gid))
    body.pop(key)
    return json.dumps(body)


BAD_CASES = {
    # name: (gid -> raw body, text the message must contain or None)
    "custom-data-not-json": (lambda g: bad(g, custom_data="{delay: 2"), None),
    "custom-data-array": (lambda g: bad(g, custom_data="[2]"), None),
    "custom-data-number": (lambda g: bad(g, custom_data="2"), None),
    "custom-data-object-not-string": (lambda g: bad(g, custom_data={"delay": 2}), None),
    "delay-negative": (lambda g: bad(g, custom_data='{"delay":-1}'), "delay"),
    "delay-fraction": (lambda g: bad(g, custom_data='{"delay":1.5}'), "delay"),
    "delay-string": (lambda g: bad(g, custom_data='{"delay":"2"}'), "delay"),
    "delay-bool": (lambda g: bad(g, custom_data='{"delay":true}'), "delay"),
    "topic-unknown": (lambda g: bad(g, steps=[{"action": "topic://no-such-topic"}]),
                      "topic not found"),
    "topic-unknown-second-step": (lambda g: bad(g, steps=[{"action": URL},
                                                          {"action": "topic://nope"}],
                                                payloads=["{}", "{}"]), "topic not found"),
    "topic-empty-name": (lambda g: bad(g, steps=[{"action": "topic://"}]), "topic not found"),
    "action-grpc": (lambda g: bad(g, steps=[{"action": "grpc://x/svc.Busi/TransOut"}]), None),
    "action-relative": (lambda g: bad(g, steps=[{"action": "/api/busi/TransOut"}]), None),
    "action-not-string": (lambda g: bad(g, steps=[{"action": 1}]), None),
    "step-without-action": (lambda g: bad(g, steps=[{"compensate": URL}]), None),
    "query-prepared-grpc": (lambda g: bad(g, query_prepared="grpc://x/svc.Busi/Query"), None),
    "query-prepared-relative": (lambda g: bad(g, query_prepared="/api/busi/QueryPrepared"), None),
    "query-prepared-not-string": (lambda g: bad(g, query_prepared=42), None),
    "steps-empty": (lambda g: bad(g, steps=[], payloads=[]), None),
    "steps-missing": (lambda g: without(g, "steps"), None),
    "fewer-payloads": (lambda g: bad(g, steps=[{"action": URL}] * 2), None),
    "concurrent-not-bool": (lambda g: bad(g, concurrent="yes"), None),
    "timeout-to-fail-negative": (lambda g: bad(g, timeout_to_fail=-1), None),
    "timeout-to-fail-fraction": (lambda g: bad(g, timeout_to_fail=1.5), None),
    "wait-result-string": (lambda g: bad(g, wait_result="yes"), None),
}


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_msg_bad_input(dtmd, redis_server, case):
    make, text = BAD_CASES[case]
    for path in ("/prepare", "/submit"):
        gid = new_gid("badmsg-" + case)
        st, body = dtmd.api("POST", path, raw=make(gid))
        assert_400(st, body, text)
        assert_nothing_stored(dtmd, redis_server, gid)
    assert dtmd.api("GET", "/api/ping") == (200, {"msg": "pong"})


def test_msg_bad_input_control(dtmd, redis_server, stub, gid):
    """The body the bad cases are derived from is accepted (with reachable URLs)."""
    body = json.loads(bad(gid, custom_data='{"delay":0}'))
    body["steps"] = [{"action": stub.url("TransOut")}]
    body["query_prepared"] = stub.url("QueryPrepared")
    post_ok(dtmd, "/prepare", body)
    post_ok(dtmd, "/submit", body)
    dtmd.wait_status(gid, S)
    assert redis_server.mentions(gid)
