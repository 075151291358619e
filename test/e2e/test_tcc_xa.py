"""TCC and XA end to end: real redis-server + dtmd + business stub.

Spec: docs/protocol.md (calling a branch, retries, wait_result),
docs/modes.md#tcc-and-xa and docs/requests.md (endpoint vs state).

The application (SDK) registers branches while the transaction is prepared and
calls try/action itself; dtmd only runs the second phase. Storage order per
registered branch: TCC [cancel, confirm], XA [rollback, commit].
TCC confirms and cancels are walked from the LAST registered branch to the
first, XA commits and rollbacks from first to last, one call at a time, and the
walk stops at the first call that does not succeed.
"""

import signal
import time

import pytest

from dtmtest import (ERROR, F, ONGOING, P, RFC3339, S, SUCCESS_BODY, Stub, b64, free_port,
                     parse_time, saga)

from dtmtest import assert_409_resp as assert_409
from dtmtest import ok

OK = {"dtm_result": "SUCCESS"}
FAIL_409 = (409, '{"error":"reason:confirm says no. FAILURE"}', 0)
FAIL_200 = (200, '{"dtm_result":"FAILURE","message":"confirm says no"}', 0)


# --------------------------------------------------------------------------
# helpers

def assert_400(resp):
    st, body = resp
    assert st == 400, "expected 400, got %s %r" % (st, body)
    assert isinstance(body, dict) and isinstance(body.get("message"), str) \
        and body["message"].strip(), body
    assert "dtm_result" not in body, body


def prepare(dtmd, gid, trans_type="tcc", **opts):
    body = {"gid": gid, "trans_type": trans_type}
    body.update(opts)
    ok(dtmd.api("POST", "/prepare", body=body), "prepare %s" % gid)
    return body


def tcc_branch(stub, gid, bid, name, data='{"amount":30}'):
    return {"gid": gid, "trans_type": "tcc", "branch_id": bid, "data": data,
            "confirm": stub.url(name + "Confirm"), "cancel": stub.url(name + "Cancel")}


def register(dtmd, body, path="/registerBranch"):
    return dtmd.api("POST", path, body=body)


def reg_tcc(dtmd, stub, gid, bid, name, data='{"amount":30}', path="/registerBranch"):
    ok(register(dtmd, tcc_branch(stub, gid, bid, name, data), path), "register %s" % bid)


def xa_branch(stub, gid, bid, name, data=None):
    body = {"gid": gid, "trans_type": "xa", "branch_id": bid, "url": stub.url(name)}
    if data is not None:
        body["data"] = data
    return body


def submit(dtmd, gid, trans_type="tcc", **opts):
    body = {"gid": gid, "trans_type": trans_type}
    body.update(opts)
    return dtmd.api("POST", "/submit", body=body)


def abort(dtmd, gid, trans_type="tcc", **opts):
    body = {"gid": gid, "trans_type": trans_type}
    body.update(opts)
    return dtmd.api("POST", "/abort", body=body)


def names(calls):
    return [c.name for c in calls]


def statuses(q):
    return [b["status"] for b in q["branches"]]


def no_more_calls(stub, before, wait=0.8):
    time.sleep(wait)
    assert stub.count() == before, "unexpected calls:\n" + stub.summary()


# --------------------------------------------------------------------------
# TCC: outcomes

def test_tcc_success_confirms_last_to_first(dtmd, stub, redis_server, gid):
    prepare(dtmd, gid)
    datas = ['{"amount":30}', '{"amount":31,"s":"x y&z"}', '']
    reg_tcc(dtmd, stub, gid, "01", "A", datas[0])
    reg_tcc(dtmd, stub, gid, "02", "B", datas[1], path="/registerTccBranch")  # alias
    reg_tcc(dtmd, stub, gid, "03", "C", datas[2])
    q = dtmd.query(gid)
    assert q["transaction"]["status"] == "prepared"
    assert q["transaction"]["trans_type"] == "tcc"
    br = q["branches"]
    assert [b["op"] for b in br] == ["cancel", "confirm"] * 3
    assert [b["branch_id"] for b in br] == ["01", "01", "02", "02", "03", "03"]
    assert [b["url"] for b in br] == [stub.url(n) for n in
                                      ("ACancel", "AConfirm", "BCancel", "BConfirm",
                                       "CCancel", "CConfirm")]
    assert [b.get("bin_data") for b in br] == [b64(datas[0])] * 2 + [b64(datas[1])] * 2 + \
        [None, None]
    assert statuses(q) == [P] * 6
    assert stub.calls() == []  # registering never calls anything
    assert redis_server.mentions(gid)

    # a slow first confirm: the next one must wait for it
    stub.plan("CConfirm", [(200, SUCCESS_BODY, 0.3)])
    ok(submit(dtmd, gid), "submit")
    q = dtmd.wait_status(gid, S)
    assert statuses(q) == [P, S, P, S, P, S]
    t = q["transaction"]
    assert not t.get("rollback_reason")
    assert RFC3339.match(t.get("finish_time") or ""), t
    calls = stub.calls()
    assert names(calls) == ["CConfirm", "BConfirm", "AConfirm"], stub.summary()
    assert [c.op for c in calls] == ["confirm"] * 3
    assert [c.branch_id for c in calls] == ["03", "02", "01"]
    for c, data, bid in zip(calls, reversed(datas), ("03", "02", "01")):
        assert c.raw_query == "branch_id=%s&gid=%s&op=confirm&trans_type=tcc" % (bid, gid)
        assert c.body == data.encode()
        # POST with a payload, GET without (docs/protocol.md#calling-a-branch)
        assert c.method == ("POST" if data else "GET"), c
        assert c.headers.get("content-type", "").startswith("application/json")
    for a, b in zip(calls, calls[1:]):
        assert b.start >= a.end, "overlapping confirms:\n" + stub.summary()
    no_more_calls(stub, 3, 0.5)


def test_tcc_many_branches_states_in_groups(dtmd, stub, redis_server, gid):
    """11 try branches = 22 branches: their states are stored in groups of 8
    (bs, bs1, bs2; design.md), appended to by each registration and
    rewritten one group at a time by the confirms; all read back in order."""
    prepare(dtmd, gid)
    for i in range(11):
        reg_tcc(dtmd, stub, gid, "%02d" % i, "T%d" % i, "")
    key = next(k for k in redis_server.cmd("KEYS", "*:t:" + gid))
    fields = set(redis_server.cmd("HKEYS", key))
    assert {b"bs", b"bs1", b"bs2"} <= fields and b"bs3" not in fields, fields
    assert redis_server.cmd("HGET", key, b"bs2").decode().count(" ") == 5  # 6 entries
    q = dtmd.query(gid)
    assert [b["branch_id"] for b in q["branches"]] == ["%02d" % (i // 2) for i in range(22)]
    assert statuses(q) == [P] * 22
    ok(submit(dtmd, gid), "submit")
    q = dtmd.wait_status(gid, S)
    assert statuses(q) == [P, S] * 11
    assert names(stub.calls()) == ["T%dConfirm" % i for i in reversed(range(11))]


def test_tcc_branch_times_survive_a_late_submit(dtmd, stub, gid):
    """A submit moves a prepared transaction's create_time to its own time (as
    dtm does); the branch times stored before it are kept relative to when
    the transaction was stored, so they still show when they happened."""
    from dtmtest import parse_time
    prepare(dtmd, gid)
    reg_tcc(dtmd, stub, gid, "01", "A")
    before = dtmd.query(gid)
    registered = parse_time(before["branches"][0]["create_time"]).timestamp()
    time.sleep(1.5)
    ok(submit(dtmd, gid), "submit")
    q = dtmd.wait_status(gid, S)
    t = parse_time(q["transaction"]["create_time"]).timestamp()
    assert t - registered > 1.2, q["transaction"]  # moved by the submit
    for b, b0 in zip(q["branches"], before["branches"]):
        assert b["create_time"] == b0["create_time"], (b, b0)
    confirm = q["branches"][1]
    assert parse_time(confirm["update_time"]).timestamp() >= t - 0.01, confirm
    assert abs(parse_time(q["transaction"]["update_time"]).timestamp() - time.time()) < 5


def test_tcc_abort_cancels_last_to_first(dtmd, stub, gid):
    prepare(dtmd, gid)
    for i, n in enumerate(("A", "B", "C"), 1):
        reg_tcc(dtmd, stub, gid, "%02d" % i, n, '{"n":%d}' % i)
    stub.plan("CCancel", [(200, SUCCESS_BODY, 0.5)])
    ok(abort(dtmd, gid, rollback_reason="user gave up"), "abort")
    stub.wait_calls("CCancel", 1)
    t = dtmd.trans(gid)
    assert t["status"] == "aborting", t  # while the first cancel is in flight
    assert t["rollback_reason"] == "user gave up"
    q = dtmd.wait_status(gid, F)
    assert statuses(q) == [S, P, S, P, S, P]
    t = q["transaction"]
    assert t["rollback_reason"] == "user gave up"
    assert RFC3339.match(t.get("rollback_time") or ""), t
    calls = stub.calls()
    assert names(calls) == ["CCancel", "BCancel", "ACancel"], stub.summary()
    assert [c.op for c in calls] == ["cancel"] * 3
    assert [c.body for c in calls] == [b'{"n":3}', b'{"n":2}', b'{"n":1}']
    assert calls[0].raw_query == "branch_id=03&gid=%s&op=cancel&trans_type=tcc" % gid
    for a, b in zip(calls, calls[1:]):
        assert b.start >= a.end
    assert all(c.method == "POST" for c in calls)


def test_tcc_empty_urls_succeed_without_calls(dtmd, stub, gid):
    """dtm TCC Headers: confirm/cancel URLs may be empty -> instant success."""
    prepare(dtmd, gid)
    ok(register(dtmd, {"gid": gid, "trans_type": "tcc", "branch_id": "01", "data": "{}",
                       "confirm": "", "cancel": ""}))
    ok(submit(dtmd, gid, wait_result=True))
    q = dtmd.query(gid)
    assert q["transaction"]["status"] == S
    assert statuses(q) == [P, S]
    assert stub.calls() == []


def test_tcc_no_branches_submit_succeeds(dtmd, stub, gid):
    prepare(dtmd, gid)
    ok(submit(dtmd, gid, wait_result=True))
    q = dtmd.query(gid)
    assert q["transaction"]["status"] == S and q["branches"] == []


@pytest.mark.parametrize("timeout_to_fail", [1, None], ids=["trans-option", "config-default"])
def test_tcc_prepared_timeout_aborted_by_scanner(start_dtmd, stub, gid, timeout_to_fail):
    dtmd = start_dtmd(TIMEOUT_TO_FAIL=2)
    opts = {"timeout_to_fail": timeout_to_fail} if timeout_to_fail else {}
    expect = timeout_to_fail or 2  # the config TimeoutToFail
    t0 = time.time()
    prepare(dtmd, gid, **opts)
    reg_tcc(dtmd, stub, gid, "01", "A")
    reg_tcc(dtmd, stub, gid, "02", "B")
    time.sleep(expect * 0.5)
    assert dtmd.status(gid) == "prepared"  # not before the timeout
    assert stub.calls() == []
    q = dtmd.wait_status(gid, F, timeout=expect + 10)
    assert time.time() - t0 >= expect
    t = q["transaction"]
    # 12.2: the reason names the effective timeout
    assert t["rollback_reason"] == "Timeout after %d seconds" % expect, t
    elapsed = (parse_time(t["rollback_time"]) - parse_time(t["create_time"])).total_seconds()
    assert elapsed >= expect - 0.01, (elapsed, t)
    assert statuses(q) == [S, P, S, P]
    assert names(stub.calls()) == ["BCancel", "ACancel"], stub.summary()
    # the client finds out: late registration, submit and abort are all refused
    assert_409(register(dtmd, tcc_branch(stub, gid, "03", "C")),
               "no trans with gid: %s status: prepared found" % gid)
    assert_409(submit(dtmd, gid), "'failed'")
    assert_409(abort(dtmd, gid), "'failed'")
    assert dtmd.query(gid) == q
    no_more_calls(stub, 2, 0.3)


def test_tcc_timeout_respects_retry_max_interval(start_dtmd, stub, gid):
    """12.3: RetryMaxInterval below RetryInterval wins and bounds every wait, so a prepared
    TCC that times out after 1 s is aborted about then, not after RetryInterval."""
    d = start_dtmd(RETRY_INTERVAL=30, RETRY_MAX_INTERVAL=0.5, TIMEOUT_TO_FAIL=1)
    prepare(d, gid)
    reg_tcc(d, stub, gid, "01", "A")
    q = d.wait_status(gid, F, timeout=2.5)
    assert q["transaction"]["rollback_reason"] == "Timeout after 1 seconds"
    assert names(stub.calls()) == ["ACancel"]


# --------------------------------------------------------------------------
# TCC: retries

@pytest.mark.parametrize("reply", [ONGOING, ERROR, FAIL_409, FAIL_200,
                                   (200, '{"dtm_result":"ONGOING"}', 0)],
                         ids=["425", "500", "409", "200-body-FAILURE", "200-body-ONGOING"])
def test_tcc_confirm_not_success_retried(dtmd, stub, gid, reply):
    """Confirm must not fail: ONGOING/FAILURE/error are retried until success; the walk
    stops at the first non-success (the earlier-registered confirm waits)."""
    prepare(dtmd, gid)
    reg_tcc(dtmd, stub, gid, "01", "A")
    reg_tcc(dtmd, stub, gid, "02", "B")
    stub.plan("BConfirm", [reply])
    ok(submit(dtmd, gid), "submit")
    stub.wait_calls("BConfirm", 1)
    q = dtmd.query(gid)
    if stub.count("BConfirm") == 1:  # not retried yet
        assert q["transaction"]["status"] == "submitted", q
        assert statuses(q) == [P, P, P, P]
        assert stub.count("AConfirm") == 0, stub.summary()
    q = dtmd.wait_status(gid, S)
    assert statuses(q) == [P, S, P, S]
    assert names(stub.calls()) == ["BConfirm", "BConfirm", "AConfirm"], stub.summary()
    assert not q["transaction"].get("rollback_reason")


def test_tcc_cancel_failure_retried(start_dtmd, stub, gid):
    """Cancel answering FAILURE is not a result: retried until it succeeds."""
    dtmd = start_dtmd(RETRY_INTERVAL=0.1, RETRY_MAX_INTERVAL=0.8, TRANS_CRON_INTERVAL=0.05)
    prepare(dtmd, gid)
    reg_tcc(dtmd, stub, gid, "01", "A")
    reg_tcc(dtmd, stub, gid, "02", "B")
    stub.plan("ACancel", [FAIL_409, ERROR])
    ok(abort(dtmd, gid), "abort")
    q = dtmd.wait_status(gid, F, timeout=20)
    assert statuses(q) == [S, P, S, P]
    assert names(stub.calls()) == ["BCancel", "ACancel", "ACancel", "ACancel"], stub.summary()


def test_tcc_confirm_unreachable_then_success(dtmd, stub, gid):
    port = free_port()
    down = "http://127.0.0.1:%d/api/busi" % port
    prepare(dtmd, gid)
    reg_tcc(dtmd, stub, gid, "01", "A")
    ok(register(dtmd, {"gid": gid, "trans_type": "tcc", "branch_id": "02", "data": "{}",
                       "confirm": down + "/BConfirm", "cancel": down + "/BCancel"}))
    ok(submit(dtmd, gid), "submit")
    time.sleep(0.7)  # connection refused, a few times
    q = dtmd.query(gid)
    assert q["transaction"]["status"] == "submitted" and statuses(q) == [P, P, P, P], q
    assert stub.calls() == []  # A waits for B
    late = Stub(port)
    try:
        q = dtmd.wait_status(gid, S, timeout=20)
        assert [c.name for c in late.calls()] == ["BConfirm"]
        assert late.calls()[0].query == {"branch_id": "02", "gid": gid, "op": "confirm",
                                         "trans_type": "tcc"}
    finally:
        late.close()
    assert statuses(q) == [P, S, P, S]
    assert names(stub.calls()) == ["AConfirm"]


def test_tcc_retry_backoff_grows_and_is_capped(start_dtmd, stub, gid):
    d = start_dtmd(RETRY_INTERVAL=0.1, RETRY_MAX_INTERVAL=0.8, TRANS_CRON_INTERVAL=0.05)
    prepare(d, gid)
    reg_tcc(d, stub, gid, "01", "A")
    stub.plan("AConfirm", [ERROR] * 4)
    ok(submit(d, gid), "submit")
    q = d.wait_status(gid, S, timeout=20)
    assert statuses(q) == [P, S]
    calls = stub.calls("AConfirm")
    assert len(calls) == 5, stub.summary()
    gaps = [b.start - a.start for a, b in zip(calls, calls[1:])]
    # base 0.1 s: doubled after each error -> ~0.2, 0.4, 0.8, 0.8 (capped)
    assert 0.15 <= gaps[0] <= 0.4, gaps
    assert gaps[1] >= 1.5 * gaps[0], gaps
    assert gaps[2] >= 1.5 * gaps[1], gaps
    assert gaps[3] <= 1.3 * gaps[2], gaps  # RetryMaxInterval caps the growth


def test_tcc_ongoing_keeps_interval(start_dtmd, stub, gid):
    """ONGOING keeps the interval: no back-off for 'still working'."""
    d = start_dtmd(RETRY_INTERVAL=0.1, RETRY_MAX_INTERVAL=0.8, TRANS_CRON_INTERVAL=0.05)
    prepare(d, gid)
    reg_tcc(d, stub, gid, "01", "A")
    stub.plan("AConfirm", [ONGOING] * 4)
    ok(submit(d, gid), "submit")
    d.wait_status(gid, S, timeout=20)
    calls = stub.calls("AConfirm")
    assert len(calls) == 5
    gaps = [b.start - a.start for a, b in zip(calls, calls[1:])]
    assert max(gaps) < 0.45, gaps  # would be ~0.8 at the end with back-off


# --------------------------------------------------------------------------
# TCC: wait_result (docs/protocol.md#wait_result)

def test_tcc_wait_result_success(dtmd, stub, gid):
    prepare(dtmd, gid)
    reg_tcc(dtmd, stub, gid, "01", "A")
    stub.plan("AConfirm", [(200, SUCCESS_BODY, 0.4)])
    t0 = time.monotonic()
    ok(submit(dtmd, gid, wait_result=True), "submit")
    assert time.monotonic() - t0 >= 0.4  # it really waited for the confirm
    q = dtmd.query(gid)  # already finished when submit answered
    assert q["transaction"]["status"] == S and statuses(q) == [P, S]


@pytest.mark.parametrize("reply,code", [
    (ONGOING, 425),
    ((200, '{"dtm_result":"ONGOING"}', 0), 425),
    (FAIL_409, 409),
    (FAIL_200, 409),
    ((503, "database is down", 0), 500),
], ids=["425", "200-ONGOING", "409", "200-FAILURE", "503"])
def test_tcc_wait_result_halted(dtmd, stub, gid, reply, code):
    prepare(dtmd, gid)
    reg_tcc(dtmd, stub, gid, "01", "A")
    reg_tcc(dtmd, stub, gid, "02", "B")
    stub.plan("BConfirm", [reply])
    st, body = submit(dtmd, gid, wait_result=True)
    assert st == code, (st, body)
    assert isinstance(body, dict) and isinstance(body.get("message"), str), body
    if code == 425:
        assert body.get("dtm_result") == "ONGOING", body
    elif code == 409:
        assert body.get("dtm_result") == "FAILURE", body
        assert "confirm says no" in body["message"], body
        assert not body["message"].endswith("FAILURE FAILURE"), body
    else:
        assert "dtm_result" not in body, body
        assert reply[1] in body["message"], body
    assert stub.url("BConfirm") in body["message"], body
    if stub.count("BConfirm") == 1:  # the halted pass did not go on to A
        assert stub.count("AConfirm") == 0
    # the transaction is still submitted and finishes on a retry
    q = dtmd.wait_status(gid, S)
    assert statuses(q) == [P, S, P, S]
    assert names(stub.calls()) == ["BConfirm", "BConfirm", "AConfirm"], stub.summary()


def test_tcc_abort_wait_result(dtmd, stub, gid):
    prepare(dtmd, gid)
    reg_tcc(dtmd, stub, gid, "01", "A")
    ok(abort(dtmd, gid, wait_result=True, rollback_reason="no money"), "abort")
    q = dtmd.query(gid)
    assert q["transaction"]["status"] == F and statuses(q) == [S, P]
    assert q["transaction"]["rollback_reason"] == "no money"


@pytest.mark.parametrize("reply,code", [(ONGOING, 425), (FAIL_409, 409), (ERROR, 500)],
                         ids=["425", "409", "500"])
def test_tcc_abort_wait_result_halted(dtmd, stub, gid, reply, code):
    prepare(dtmd, gid)
    reg_tcc(dtmd, stub, gid, "01", "A")
    stub.plan("ACancel", [reply])
    st, body = abort(dtmd, gid, wait_result=True)
    assert st == code, (st, body)
    assert isinstance(body, dict) and stub.url("ACancel") in body.get("message", ""), body
    assert body.get("dtm_result") == {425: "ONGOING", 409: "FAILURE", 500: None}[code], body
    assert dtmd.status(gid) == "aborting" or stub.count("ACancel") == 2
    assert dtmd.wait_status(gid, F)["branches"][0]["status"] == S
    assert names(stub.calls()) == ["ACancel", "ACancel"]


# --------------------------------------------------------------------------
# TCC: registration

def test_register_after_submit_is_409(dtmd, stub, gid):
    prepare(dtmd, gid)
    reg_tcc(dtmd, stub, gid, "01", "A")
    stub.set_default("AConfirm", *ONGOING)  # keep it submitted
    ok(submit(dtmd, gid), "submit")
    msg = assert_409(register(dtmd, tcc_branch(stub, gid, "02", "B")))
    assert msg == "no trans with gid: %s status: prepared found FAILURE" % gid, msg
    # identical re-registration of an existing branch is refused too: not prepared
    assert_409(register(dtmd, tcc_branch(stub, gid, "01", "A")), "status: prepared found")
    assert len(dtmd.query(gid)["branches"]) == 2
    stub.clear_default("AConfirm")
    q = dtmd.wait_status(gid, S)
    assert statuses(q) == [P, S]
    assert stub.count("BConfirm") == 0


def test_register_on_absent_gid_is_409(dtmd, stub, redis_server, gid):
    msg = assert_409(register(dtmd, tcc_branch(stub, gid, "01", "A")))
    assert msg == "no trans with gid: %s status: prepared found FAILURE" % gid, msg
    assert_409(register(dtmd, xa_branch(stub, gid, "01", "X")), "status: prepared found")
    assert dtmd.query(gid) == {"transaction": None, "branches": []}
    assert redis_server.mentions(gid) == []


def test_register_duplicate_same_and_different(dtmd, stub, gid):
    prepare(dtmd, gid)
    reg_tcc(dtmd, stub, gid, "01", "A", '{"amount":30}')
    before = dtmd.query(gid)
    # identical: idempotent (12.5), nothing appended
    reg_tcc(dtmd, stub, gid, "01", "A", '{"amount":30}')
    reg_tcc(dtmd, stub, gid, "01", "A", '{"amount":30}', path="/registerTccBranch")
    assert dtmd.query(gid)["branches"] == before["branches"]
    # different data / different URLs under the same branch_id: 409, nothing stored
    assert_409(register(dtmd, tcc_branch(stub, gid, "01", "A", '{"amount":31}')))
    assert_409(register(dtmd, tcc_branch(stub, gid, "01", "Other", '{"amount":30}')))
    changed = tcc_branch(stub, gid, "01", "A", '{"amount":30}')
    changed["cancel"] = stub.url("ZCancel")
    assert_409(register(dtmd, changed))
    assert dtmd.query(gid)["branches"] == before["branches"]
    # a new branch_id is fine
    reg_tcc(dtmd, stub, gid, "02", "B")
    assert len(dtmd.query(gid)["branches"]) == 4
    ok(submit(dtmd, gid, wait_result=True))
    assert names(stub.calls()) == ["BConfirm", "AConfirm"]
    assert stub.calls("AConfirm")[0].body == b'{"amount":30}'


def test_register_special_branch_id_and_url_query(dtmd, stub, gid):
    prepare(dtmd, gid)
    ok(register(dtmd, {"gid": gid, "trans_type": "tcc", "branch_id": "0 1&x=y", "data": "{}",
                       "confirm": stub.url("AConfirm") + "?tenant=t1",
                       "cancel": stub.url("ACancel")}))
    ok(submit(dtmd, gid, wait_result=True))
    c = stub.calls("AConfirm")[0]
    assert c.raw_query == "tenant=t1&branch_id=0+1%%26x%%3Dy&gid=%s&op=confirm&trans_type=tcc" % gid
    assert c.query["branch_id"] == "0 1&x=y"


def test_register_branch_strips_gid_like_prepare(dtmd, stub, gid):
    raw = gid + ";x"
    ok(dtmd.api("POST", "/prepare", body={"gid": raw, "trans_type": "tcc"}))
    stored = gid + "x"
    assert dtmd.status(stored) == "prepared"
    ok(register(dtmd, dict(tcc_branch(stub, raw, "01", "A"))))
    assert len(dtmd.query(stored)["branches"]) == 2


def test_register_extra_keys_ignored(dtmd, stub, gid):
    """SDKs send try/status keys too; they are ignored (docs/protocol.md#transaction-requests)."""
    prepare(dtmd, gid)
    body = tcc_branch(stub, gid, "01", "A")
    body.update({"try": stub.url("ATry"), "status": "prepared"})
    ok(register(dtmd, body))
    ok(submit(dtmd, gid, wait_result=True))
    assert names(stub.calls()) == ["AConfirm"]


# --------------------------------------------------------------------------
# TCC: options

def test_tcc_branch_headers_on_confirm_calls(dtmd, stub, gid):
    headers = {"test_header": "test", "X-Trace-Id": "abc-123"}
    prepare(dtmd, gid, branch_headers=headers)
    reg_tcc(dtmd, stub, gid, "01", "A")
    reg_tcc(dtmd, stub, gid, "02", "B")
    stub.plan("BConfirm", [ERROR])  # the retry comes from the scanner (stored options)
    ok(submit(dtmd, gid, branch_headers=headers), "submit")
    dtmd.wait_status(gid, S)
    calls = stub.calls()
    assert names(calls) == ["BConfirm", "BConfirm", "AConfirm"], stub.summary()
    for c in calls:
        assert c.headers.get("test_header") == "test", (c, c.headers)
        assert c.headers.get("x-trace-id") == "abc-123", (c, c.headers)
        assert c.headers.get("content-type", "").startswith("application/json")


def test_tcc_branch_headers_on_cancel_calls(dtmd, stub, gid):
    prepare(dtmd, gid, branch_headers={"test_header": "test"})
    reg_tcc(dtmd, stub, gid, "01", "A")
    stub.plan("ACancel", [ERROR])
    ok(abort(dtmd, gid), "abort")
    dtmd.wait_status(gid, F)
    calls = stub.calls()
    assert names(calls) == ["ACancel", "ACancel"]
    assert all(c.headers.get("test_header") == "test" for c in calls), calls


def test_tcc_request_timeout_option(dtmd, stub, gid):
    """request_timeout (s) replaces the config RequestTimeout (1 s)."""
    prepare(dtmd, gid, request_timeout=3)
    reg_tcc(dtmd, stub, gid, "01", "A")
    stub.plan("AConfirm", [(200, SUCCESS_BODY, 1.5)])
    ok(submit(dtmd, gid, wait_result=True, request_timeout=3), "submit")
    assert dtmd.status(gid) == S
    assert stub.count("AConfirm") == 1


def test_tcc_config_request_timeout(dtmd, stub, gid):
    prepare(dtmd, gid)
    reg_tcc(dtmd, stub, gid, "01", "A")
    stub.plan("AConfirm", [(200, SUCCESS_BODY, 2.0)])
    t0 = time.monotonic()
    st, body = submit(dtmd, gid, wait_result=True)
    took = time.monotonic() - t0
    assert st == 500 and "dtm_result" not in body, (st, body)  # a timeout is an error
    assert 0.9 <= took < 1.8, took  # RequestTimeout=1 s
    q = dtmd.wait_status(gid, S)
    assert statuses(q) == [P, S]
    assert stub.count("AConfirm") == 2


# --------------------------------------------------------------------------
# TCC: crash

@pytest.mark.parametrize("slow", ["BConfirm", "AConfirm"])
def test_tcc_sigkill_mid_confirm(dtmd, stub, gid, slow):
    """SIGKILL while a confirm is in flight; the restarted dtmd finishes the
    transaction and only repeats the interrupted confirm."""
    prepare(dtmd, gid)
    reg_tcc(dtmd, stub, gid, "01", "A")
    reg_tcc(dtmd, stub, gid, "02", "B")
    stub.plan(slow, [(200, SUCCESS_BODY, 3.0)])
    ok(submit(dtmd, gid), "submit")
    stub.wait_calls(slow, 1)
    dtmd.kill(signal.SIGKILL)
    assert not dtmd.running
    dtmd.start()
    q = dtmd.wait_status(gid, S, timeout=20)
    assert statuses(q) == [P, S, P, S]
    counts = {n: stub.count(n) for n in ("AConfirm", "BConfirm")}
    assert counts == {n: 2 if n == slow else 1 for n in counts}, stub.summary()
    first = []
    for c in stub.calls():
        if c.name not in first:
            first.append(c.name)
    assert first == ["BConfirm", "AConfirm"], stub.summary()
    assert stub.count("ACancel") == 0 and stub.count("BCancel") == 0


def test_tcc_sigkill_while_aborting(dtmd, stub, gid):
    prepare(dtmd, gid)
    reg_tcc(dtmd, stub, gid, "01", "A")
    reg_tcc(dtmd, stub, gid, "02", "B")
    stub.plan("BCancel", [(200, SUCCESS_BODY, 3.0)])
    ok(abort(dtmd, gid, rollback_reason="stop"), "abort")
    stub.wait_calls("BCancel", 1)
    dtmd.kill(signal.SIGKILL)
    dtmd.start()
    q = dtmd.wait_status(gid, F, timeout=20)
    assert statuses(q) == [S, P, S, P]
    assert q["transaction"]["rollback_reason"] == "stop"
    assert names(stub.calls()) == ["BCancel", "BCancel", "ACancel"], stub.summary()


# --------------------------------------------------------------------------
# endpoint vs state (docs/requests.md)

def make_tcc_state(dtmd, stub, gid, state):
    """A TCC transaction with one registered branch (A), brought into `state`."""
    prepare(dtmd, gid)
    reg_tcc(dtmd, stub, gid, "01", "A")
    if state == "submitted":
        stub.set_default("AConfirm", *ERROR)
        ok(submit(dtmd, gid), "submit")
        stub.wait_calls("AConfirm", 1)
    elif state == "aborting":
        stub.set_default("ACancel", *ERROR)
        ok(abort(dtmd, gid), "abort")
        stub.wait_calls("ACancel", 1)
    elif state == "succeed":
        ok(submit(dtmd, gid, wait_result=True), "submit")
    elif state == "failed":
        ok(abort(dtmd, gid, wait_result=True), "abort")
    assert dtmd.status(gid) == state


@pytest.mark.parametrize("state", ["submitted", "aborting", "succeed", "failed"])
def test_tcc_invalid_transitions(dtmd, stub, gid, state):
    make_tcc_state(dtmd, stub, gid, state)
    before = dtmd.query(gid)
    quoted = "'%s'" % state
    # prepare of an existing, no longer prepared transaction
    assert_409(dtmd.api("POST", "/prepare", body={"gid": gid, "trans_type": "tcc"}), quoted)
    # registerBranch needs prepared
    assert_409(register(dtmd, tcc_branch(stub, gid, "02", "B")),
               "no trans with gid: %s status: prepared found" % gid)
    if state != "submitted":
        assert_409(submit(dtmd, gid), quoted)
    if state != "aborting":
        assert_409(abort(dtmd, gid), quoted)
        assert_409(abort(dtmd, gid, wait_result=True), quoted)
    after = dtmd.query(gid)
    assert after["transaction"]["status"] == state
    assert [b["op"] for b in after["branches"]] == ["cancel", "confirm"]
    assert stub.count("BConfirm") == 0 and stub.count("BCancel") == 0
    if state in ("succeed", "failed"):
        assert after == before
        assert stub.count() == 1
    if state == "submitted":
        # submit of a submitted TCC is an idempotent re-drive (at once, not after the
        # back-off); it cannot be aborted
        stub.clear_default("AConfirm")
        ok(submit(dtmd, gid), "re-submit")
        q = dtmd.wait_status(gid, S, timeout=0.5)
        assert statuses(q) == [P, S] and stub.count("ACancel") == 0
    if state == "aborting":
        # abort of an aborting TCC re-drives the rollback at once; it cannot be submitted
        stub.clear_default("ACancel")
        ok(abort(dtmd, gid), "re-abort")
        q = dtmd.wait_status(gid, F, timeout=0.5)
        assert statuses(q) == [S, P] and stub.count("AConfirm") == 0


def test_tcc_prepare_twice_is_idempotent(dtmd, stub, gid):
    prepare(dtmd, gid)
    reg_tcc(dtmd, stub, gid, "01", "A")
    prepare(dtmd, gid, timeout_to_fail=1000)  # 200, stored record untouched
    q = dtmd.query(gid)
    assert q["transaction"]["status"] == "prepared" and len(q["branches"]) == 2
    assert not q["transaction"].get("timeout_to_fail"), q["transaction"]


def test_abort_absent_gid(dtmd, redis_server, gid):
    st, body = abort(dtmd, gid)
    assert st == 404 and isinstance(body, dict) and body.get("message"), (st, body)
    assert "SUCCESS" not in str(body)
    assert redis_server.mentions(gid) == []


@pytest.mark.parametrize("saga_state", ["prepared", "submitted", "succeed"])
def test_abort_of_a_saga_is_409(dtmd, stub, gid, saga_state):
    body = saga(gid, [(stub.url("TransOut"), stub.url("TransOutRevert"))])
    if saga_state == "prepared":
        ok(dtmd.api("POST", "/prepare", body=body))
    elif saga_state == "submitted":
        stub.set_default("TransOut", *ONGOING)
        ok(dtmd.submit(body))
        stub.wait_calls("TransOut", 1)
    else:
        ok(dtmd.submit(dict(body, wait_result=True)))
    assert dtmd.status(gid) == saga_state
    assert_409(abort(dtmd, gid, trans_type="saga"), "'%s'" % saga_state)
    # A body naming another type is refused as such (400), naming the stored type and status.
    st, resp = abort(dtmd, gid, trans_type="tcc")
    assert st == 400 and "saga" in resp["message"] and "'%s'" % saga_state in resp["message"], resp
    assert dtmd.status(gid) == saga_state
    assert stub.count("TransOutRevert") == 0


def test_abort_prepared_msg_fails_it(dtmd, stub, gid):
    """msg: abort while prepared -> failed without calls; then 409."""
    body = {"gid": gid, "trans_type": "msg", "steps": [{"action": stub.url("MsgIn")}],
            "payloads": ["{}"], "query_prepared": stub.url("QP")}
    ok(dtmd.api("POST", "/prepare", body=body))
    ok(abort(dtmd, gid, trans_type="msg"))
    q = dtmd.query(gid)
    assert q["transaction"]["status"] == F and statuses(q) == [P]
    assert_409(abort(dtmd, gid, trans_type="msg"), "'failed'")
    assert_409(dtmd.submit(body), "'failed'")
    no_more_calls(stub, 0, 0.4)


# --------------------------------------------------------------------------
# XA

def test_xa_commit_first_to_last(dtmd, stub, gid):
    prepare(dtmd, gid, "xa")
    ok(register(dtmd, xa_branch(stub, gid, "01", "XaA")))
    ok(register(dtmd, xa_branch(stub, gid, "02", "XaB", data='{"k":2}'), "/registerXaBranch"))
    ok(register(dtmd, xa_branch(stub, gid, "03", "XaC", data="")))
    q = dtmd.query(gid)
    br = q["branches"]
    assert [b["op"] for b in br] == ["rollback", "commit"] * 3
    assert [b["branch_id"] for b in br] == ["01", "01", "02", "02", "03", "03"]
    assert [b["url"] for b in br] == [stub.url(n) for n in ("XaA", "XaA", "XaB", "XaB",
                                                            "XaC", "XaC")]
    assert [b.get("bin_data") for b in br] == [None, None, b64('{"k":2}'), b64('{"k":2}'),
                                               None, None]
    assert statuses(q) == [P] * 6
    stub.plan("XaA", [(200, SUCCESS_BODY, 0.3)])
    ok(submit(dtmd, gid, "xa"), "submit")
    q = dtmd.wait_status(gid, S)
    assert statuses(q) == [P, S, P, S, P, S]
    calls = stub.calls()
    assert names(calls) == ["XaA", "XaB", "XaC"], stub.summary()
    assert [c.op for c in calls] == ["commit"] * 3
    assert [c.method for c in calls] == ["POST"] * 3  # always POST for xa, even empty
    assert [c.body for c in calls] == [b"", b'{"k":2}', b""]
    assert calls[0].raw_query == "branch_id=01&gid=%s&op=commit&trans_type=xa" % gid
    for a, b in zip(calls, calls[1:]):
        assert b.start >= a.end
    no_more_calls(stub, 3, 0.4)


def test_xa_abort_rolls_back_first_to_last(dtmd, stub, gid):
    prepare(dtmd, gid, "xa")
    for i, n in enumerate(("XaA", "XaB", "XaC"), 1):
        ok(register(dtmd, xa_branch(stub, gid, "%02d" % i, n)))
    ok(abort(dtmd, gid, "xa", rollback_reason="local error"), "abort")
    q = dtmd.wait_status(gid, F)
    assert statuses(q) == [S, P, S, P, S, P]
    assert q["transaction"]["rollback_reason"] == "local error"
    calls = stub.calls()
    assert names(calls) == ["XaA", "XaB", "XaC"], stub.summary()
    assert [c.op for c in calls] == ["rollback"] * 3
    assert [c.method for c in calls] == ["POST"] * 3
    assert [c.branch_id for c in calls] == ["01", "02", "03"]


def test_xa_commit_error_stops_walk_then_retries(dtmd, stub, gid):
    prepare(dtmd, gid, "xa")
    ok(register(dtmd, xa_branch(stub, gid, "01", "XaA")))
    ok(register(dtmd, xa_branch(stub, gid, "02", "XaB")))
    stub.plan("XaA", [ERROR])
    st, body = submit(dtmd, gid, "xa", wait_result=True)
    assert st == 500, (st, body)
    assert stub.count("XaB") == 0 or stub.count("XaA") == 2
    q = dtmd.wait_status(gid, S)
    assert statuses(q) == [P, S, P, S]
    assert names(stub.calls()) == ["XaA", "XaA", "XaB"], stub.summary()


def test_xa_wait_result_ongoing_is_425(dtmd, stub, gid):
    """dtm XA NotTimeout: ONGOING during commit -> submitted; cron -> succeed."""
    prepare(dtmd, gid, "xa")
    ok(register(dtmd, xa_branch(stub, gid, "01", "XaA")))
    stub.plan("XaA", [ONGOING])
    st, body = submit(dtmd, gid, "xa", wait_result=True)
    assert st == 425 and body.get("dtm_result") == "ONGOING", (st, body)
    q = dtmd.wait_status(gid, S)
    assert statuses(q) == [P, S]


@pytest.mark.parametrize("with_branch", [True, False], ids=["one-branch", "no-branches"])
def test_xa_timeout_rollback(dtmd, stub, gid, with_branch):
    prepare(dtmd, gid, "xa", timeout_to_fail=1)
    if with_branch:
        ok(register(dtmd, xa_branch(stub, gid, "01", "XaA")))
    q = dtmd.wait_status(gid, F, timeout=10)
    assert q["transaction"]["rollback_reason"] == "Timeout after 1 seconds"
    if with_branch:
        assert statuses(q) == [S, P]
        calls = stub.calls()
        assert names(calls) == ["XaA"] and calls[0].op == "rollback" and calls[0].method == "POST"
    else:
        assert q["branches"] == [] and stub.calls() == []
    assert_409(submit(dtmd, gid, "xa"), "'failed'")  # the client's submit fails
    assert_409(register(dtmd, xa_branch(stub, gid, "02", "XaB")), "status: prepared found")


def test_xa_register_bad_url_is_400(dtmd, stub, gid):
    prepare(dtmd, gid, "xa")
    for url in (None, "", "grpc://127.0.0.1:1/svc.Busi/XaA", "/api/busi/XaA", 12,
                "http://", "http:// space/x"):
        body = {"gid": gid, "trans_type": "xa", "branch_id": "01"}
        if url is not None:
            body["url"] = url
        assert_400(register(dtmd, body))
        assert_400(register(dtmd, body, "/registerXaBranch"))
    q = dtmd.query(gid)
    assert q["transaction"]["status"] == "prepared" and q["branches"] == []
    # the same request with a good URL is accepted (the 400s were about the URL)
    ok(register(dtmd, xa_branch(stub, gid, "01", "XaA")))
    assert len(dtmd.query(gid)["branches"]) == 2


def test_xa_register_duplicate(dtmd, stub, gid):
    prepare(dtmd, gid, "xa")
    ok(register(dtmd, xa_branch(stub, gid, "01", "XaA")))
    ok(register(dtmd, xa_branch(stub, gid, "01", "XaA")))  # identical: 200
    assert_409(register(dtmd, xa_branch(stub, gid, "01", "XaOther")))
    assert_409(register(dtmd, xa_branch(stub, gid, "01", "XaA", data="x")))
    assert len(dtmd.query(gid)["branches"]) == 2


@pytest.mark.parametrize("slow", ["XaA", "XaB"])
def test_xa_sigkill_mid_commit(dtmd, stub, gid, slow):
    prepare(dtmd, gid, "xa")
    ok(register(dtmd, xa_branch(stub, gid, "01", "XaA")))
    ok(register(dtmd, xa_branch(stub, gid, "02", "XaB")))
    stub.plan(slow, [(200, SUCCESS_BODY, 3.0)])
    ok(submit(dtmd, gid, "xa"), "submit")
    stub.wait_calls(slow, 1)
    dtmd.kill(signal.SIGKILL)
    dtmd.start()
    q = dtmd.wait_status(gid, S, timeout=20)
    assert statuses(q) == [P, S, P, S]
    counts = {n: stub.count(n) for n in ("XaA", "XaB")}
    assert counts == {n: 2 if n == slow else 1 for n in counts}, stub.summary()
    assert all(c.op == "commit" for c in stub.calls())
    assert names(stub.calls())[0] == "XaA"


@pytest.mark.parametrize("state", ["submitted", "succeed", "failed"])
def test_xa_invalid_transitions(dtmd, stub, gid, state):
    prepare(dtmd, gid, "xa")
    ok(register(dtmd, xa_branch(stub, gid, "01", "XaA")))
    if state == "submitted":
        stub.set_default("XaA", *ERROR)
        ok(submit(dtmd, gid, "xa"))
        stub.wait_calls("XaA", 1)
    elif state == "succeed":
        ok(submit(dtmd, gid, "xa", wait_result=True))
    else:
        ok(abort(dtmd, gid, "xa", wait_result=True))
    quoted = "'%s'" % state
    assert_409(abort(dtmd, gid, "xa"), quoted)
    assert_409(dtmd.api("POST", "/prepare", body={"gid": gid, "trans_type": "xa"}), quoted)
    assert_409(register(dtmd, xa_branch(stub, gid, "02", "XaB")), "status: prepared found")
    if state != "submitted":
        assert_409(submit(dtmd, gid, "xa"), quoted)
    assert dtmd.status(gid) == state
    assert len(dtmd.query(gid)["branches"]) == 2
    assert stub.count("XaB") == 0


def test_registered_branches_have_create_and_update_time(dtmd, stub, gid):
    """A registered branch is stamped like any other (the admin UI's timeline needs it)."""
    prepare(dtmd, gid)
    reg_tcc(dtmd, stub, gid, "01", "TransOut")
    q = dtmd.query(gid)
    assert len(q["branches"]) == 2
    for b in q["branches"]:
        assert b["create_time"] and b["update_time"], b
        assert parse_time(b["create_time"]) >= parse_time(q["transaction"]["create_time"])
