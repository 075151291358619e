"""Workflow and management endpoints end to end: real redis-server + dtmd + stub.

Spec: docs/protocol.md, docs/modes.md#workflow and docs/requests.md.

Workflow: the SDK runs the workflow itself; dtmd records progress
(registerBranch, no call is ever made for it) and the outcome (submit with
req_extra). An unfinished workflow is called back by the retry scanner at
query_prepared (branch_id 00, op = workflow name, body = decoded input) so the
SDK can resume; the answer never changes the state.

Management: forceStop, resetNextCronTime, resetCronTime, all; bad input to each
(400 + {"message"}, nothing stored, docs/protocol.md#bad-input).
"""

import datetime
import json
import signal
import time
import urllib.parse

import pytest

from dtmtest import (ERROR, F, ONGOING, P, RFC3339, S, b64, new_gid, parse_time,
                     saga, wait_until)

from dtmtest import assert_409_resp as assert_409
from dtmtest import ok

OK = {"dtm_result": "SUCCESS"}
WF_INPUT = b'{"amount":30,"user":"u 1&x"}'


# --------------------------------------------------------------------------
# helpers

def assert_404(resp):
    st, body = resp
    assert st == 404, "expected 404, got %s %r" % (st, body)
    assert isinstance(body, dict) and isinstance(body.get("message"), str) and body["message"]
    assert "SUCCESS" not in json.dumps(body), body


def assert_400(resp, what=""):
    st, body = resp
    assert st == 400, "%s: expected 400, got %s %r" % (what, st, body)
    assert isinstance(body, dict) and isinstance(body.get("message"), str) \
        and body["message"].strip(), (what, body)
    assert "dtm_result" not in body, (what, body)


def wf_body(stub, gid, name="wf", data=WF_INPUT, resume="WfResume"):
    return {"gid": gid, "trans_type": "workflow",
            "query_prepared": stub.url(resume) if resume else "",
            "custom_data": json.dumps({"name": name, "data": b64(data)})}


def prepare_wf(dtmd, body):
    st, resp = dtmd.api("POST", "/prepareWorkflow", body=body)
    assert st == 200, (st, resp)
    assert set(resp) == {"transaction", "progresses"}, resp
    return resp


def progress(gid, bid, op="action", status="succeed", data="r"):
    return {"gid": gid, "trans_type": "workflow", "branch_id": bid, "op": op,
            "status": status, "data": data}


def register(dtmd, body):
    return dtmd.api("POST", "/registerBranch", body=body)


def wf_submit(dtmd, gid, **req_extra):
    return dtmd.api("POST", "/submit", body={"gid": gid, "trans_type": "workflow",
                                             "req_extra": req_extra})


def statuses(q):
    return [b["status"] for b in q["branches"]]


def gaps(calls):
    return [b.start - a.start for a, b in zip(calls, calls[1:])]


def ms(rfc3339):
    return int(parse_time(rfc3339).timestamp() * 1000)


# --------------------------------------------------------------------------
# workflow: prepareWorkflow / registerBranch / submit

def test_prepare_workflow_new(dtmd, stub, redis_server, gid):
    body = wf_body(stub, gid)
    resp = prepare_wf(dtmd, body)
    assert resp["progresses"] == []
    t = resp["transaction"]
    assert t["gid"] == gid and t["trans_type"] == "workflow" and t["status"] == "prepared"
    assert t["query_prepared"] == stub.url("WfResume")
    assert t["custom_data"] == body["custom_data"]
    assert RFC3339.match(t.get("create_time") or ""), t
    assert not t.get("rollback_reason") and not t.get("result")
    q = dtmd.query(gid)
    assert q["transaction"]["status"] == "prepared" and q["branches"] == []
    assert q["transaction"]["create_time"] == t["create_time"]
    assert redis_server.mentions(gid)


def test_prepare_workflow_existing_returns_progress(dtmd, stub, gid):
    body = wf_body(stub, gid)
    first = prepare_wf(dtmd, body)["transaction"]
    ok(register(dtmd, progress(gid, "01", "action", "succeed", '{"out":1}')))
    ok(register(dtmd, progress(gid, "02", "action", "failed", "insufficient balance")))
    ok(register(dtmd, progress(gid, "02", "compensate", "succeed", "")))
    # a second prepareWorkflow (the SDK resuming) gets the stored record, not its own
    again = prepare_wf(dtmd, wf_body(stub, gid, name="other", data=b"other input",
                                     resume="Elsewhere"))
    t = again["transaction"]
    assert t["status"] == "prepared"
    assert t["custom_data"] == body["custom_data"]
    assert t["query_prepared"] == stub.url("WfResume")
    assert t["create_time"] == first["create_time"]
    pr = again["progresses"]
    assert [(p["branch_id"], p["op"], p["status"]) for p in pr] == [
        ("01", "action", "succeed"), ("02", "action", "failed"), ("02", "compensate", "succeed")]
    assert [p.get("bin_data") for p in pr] == [b64('{"out":1}'), b64("insufficient balance"),
                                               None]
    assert all(p["gid"] == gid for p in pr)
    assert pr == dtmd.query(gid)["branches"]
    assert stub.count("Elsewhere") == 0


def test_register_progress_makes_no_call(start_dtmd, stub, gid):
    d = start_dtmd(RETRY_INTERVAL=30, RETRY_MAX_INTERVAL=60)  # no resume call in this test
    prepare_wf(d, wf_body(stub, gid))
    ok(register(d, progress(gid, "01", "action", "succeed", "done")))
    ok(register(d, progress(gid, "01", "commit", "succeed", "")))
    q = d.query(gid)
    assert [(b["branch_id"], b["op"], b["status"]) for b in q["branches"]] == [
        ("01", "action", "succeed"), ("01", "commit", "succeed")]
    assert all(not b.get("url") for b in q["branches"]), q["branches"]
    time.sleep(0.4)
    assert stub.calls() == []


def test_register_progress_duplicates(dtmd, stub, gid):
    prepare_wf(dtmd, wf_body(stub, gid, resume=None))
    ok(register(dtmd, progress(gid, "01", "action", "succeed", "r1")))
    ok(register(dtmd, progress(gid, "01", "action", "succeed", "r1")))  # same: 200
    assert len(dtmd.query(gid)["branches"]) == 1
    assert_409(register(dtmd, progress(gid, "01", "action", "failed", "r1")))
    assert_409(register(dtmd, progress(gid, "01", "action", "succeed", "r2")))
    assert len(dtmd.query(gid)["branches"]) == 1
    # same branch_id, another op: a new record
    ok(register(dtmd, progress(gid, "01", "rollback", "succeed", "")))
    br = dtmd.query(gid)["branches"]
    assert [(b["op"], b["status"], b.get("bin_data")) for b in br] == [
        ("action", "succeed", b64("r1")), ("rollback", "succeed", None)]


def test_register_progress_needs_prepared(dtmd, stub, gid):
    prepare_wf(dtmd, wf_body(stub, gid, resume=None))
    ok(wf_submit(dtmd, gid, status="succeed"))
    msg = assert_409(register(dtmd, progress(gid, "01")))
    assert msg == "no trans with gid: %s status: prepared found FAILURE" % gid
    absent = new_gid("absent")
    assert_409(register(dtmd, progress(absent, "01")), "no trans with gid: %s" % absent)
    assert dtmd.query(absent) == {"transaction": None, "branches": []}


def test_register_progress_identity_is_exact(dtmd, stub, gid):
    prepare_wf(dtmd, wf_body(stub, gid, resume=None))
    ok(register(dtmd, progress(gid, "01", "a:b", "succeed", "d")))
    ok(register(dtmd, progress(gid, "01:a", "b", "succeed", "d")))
    br = dtmd.query(gid)["branches"]
    assert [(b["branch_id"], b["op"]) for b in br] == [("01", "a:b"), ("01:a", "b")]


def test_workflow_submit_succeed_merges(dtmd, stub, gid):
    body = wf_body(stub, gid)
    prepare_wf(dtmd, body)
    ok(register(dtmd, progress(gid, "01", "action", "succeed", "x")))
    before = dtmd.query(gid)["transaction"]
    ok(wf_submit(dtmd, gid, status="succeed", result=b64("final result")))
    q = dtmd.query(gid)
    t = q["transaction"]
    assert t["status"] == S
    assert t["result"] == b64("final result")
    assert RFC3339.match(t.get("finish_time") or ""), t
    assert not t.get("rollback_reason")
    # merged into the stored record (12.2): nothing the submit body lacked is lost
    for k in ("create_time", "custom_data", "query_prepared", "trans_type", "gid"):
        assert t.get(k) == before.get(k), (k, t, before)
    assert statuses(q) == [S]
    # a finished workflow is not called back any more
    n = stub.count("WfResume")
    time.sleep(0.8)
    assert stub.count("WfResume") <= n + 1, stub.summary()


def test_workflow_submit_failed_merges(dtmd, stub, gid):
    body = wf_body(stub, gid)
    prepare_wf(dtmd, body)
    before = dtmd.query(gid)["transaction"]
    ok(wf_submit(dtmd, gid, status="failed", rollback_reason="reason: no money"))
    t = dtmd.query(gid)["transaction"]
    assert t["status"] == F
    assert t["rollback_reason"] == "reason: no money"
    assert RFC3339.match(t.get("rollback_time") or ""), t
    assert not t.get("finish_time") and not t.get("result")
    for k in ("create_time", "custom_data", "query_prepared"):
        assert t.get(k) == before.get(k), (k, t, before)


@pytest.mark.parametrize("first", ["succeed", "failed"])
def test_workflow_submit_twice_is_409(dtmd, stub, gid, first):
    prepare_wf(dtmd, wf_body(stub, gid, resume=None))
    ok(wf_submit(dtmd, gid, status=first, result=b64("r1")))
    snap = dtmd.query(gid)
    for second in ("succeed", "failed"):
        assert_409(wf_submit(dtmd, gid, status=second, result=b64("r2"),
                             rollback_reason="late"), "'%s'" % first)
    assert dtmd.query(gid) == snap
    # prepareWorkflow of a finished workflow returns it as it is
    again = prepare_wf(dtmd, wf_body(stub, gid, resume=None))
    assert again["transaction"]["status"] == first
    assert again["transaction"]["result"] == b64("r1")


def test_workflow_submit_absent_gid(dtmd, redis_server, gid):
    assert_404(wf_submit(dtmd, gid, status="succeed"))
    assert redis_server.mentions(gid) == []


def test_workflow_submit_bad_req_extra(dtmd, stub, gid):
    prepare_wf(dtmd, wf_body(stub, gid, resume=None))
    snap = dtmd.query(gid)
    for extra in (None, {}, {"status": "submitted"}, {"status": ""}, {"status": 1},
                  "succeed", ["succeed"], {"status": "succeed", "result": 5},
                  {"status": "failed", "rollback_reason": None, "x": 1}):
        body = {"gid": gid, "trans_type": "workflow"}
        if extra is not None:
            body["req_extra"] = extra
        assert_400(dtmd.api("POST", "/submit", body=body), repr(extra))
    assert dtmd.query(gid) == snap
    ok(wf_submit(dtmd, gid, status="succeed"))  # control: a good body is accepted


def test_workflow_abort_is_409(dtmd, stub, gid):
    prepare_wf(dtmd, wf_body(stub, gid, resume=None))
    assert_409(dtmd.api("POST", "/abort", body={"gid": gid, "trans_type": "workflow"}),
               "'prepared'")
    assert dtmd.status(gid) == "prepared"


# --------------------------------------------------------------------------
# workflow: resume callbacks by the scanner

def test_workflow_resume_callback(dtmd, stub, gid):
    t0 = time.monotonic()
    prepare_wf(dtmd, wf_body(stub, gid, name="transfer-wf"))
    calls = stub.wait_calls("WfResume", 3)
    first = calls[0]
    assert first.start - t0 >= 0.25, "called before the base retry interval (0.3 s)"
    for c in calls[:3]:
        assert c.method == "POST"
        assert c.body == WF_INPUT
        assert c.raw_query == "branch_id=00&gid=%s&op=transfer-wf&trans_type=workflow" % gid
        assert c.headers.get("content-type", "").startswith("application/json")
    g = gaps(calls[:3])
    assert all(0.2 <= x <= 1.0 for x in g), g  # every RetryInterval (0.3 s)
    # the answer never changes the state
    q = dtmd.query(gid)
    assert q["transaction"]["status"] == "prepared" and q["branches"] == []


def test_workflow_resume_empty_input_is_get(dtmd, stub, gid):
    prepare_wf(dtmd, wf_body(stub, gid, name="wf2", data=b""))
    c = stub.wait_calls("WfResume", 1)[0]
    assert c.method == "GET" and c.body == b""
    assert c.query == {"branch_id": "00", "gid": gid, "op": "wf2", "trans_type": "workflow"}


@pytest.mark.parametrize("reply", [(409, '{"error":"FAILURE"}', 0), ONGOING,
                                   (200, '{"dtm_result":"FAILURE"}', 0)],
                         ids=["409", "425", "200-FAILURE"])
def test_workflow_resume_answer_changes_nothing(dtmd, stub, gid, reply):
    stub.set_default("WfResume", *reply)
    prepare_wf(dtmd, wf_body(stub, gid))
    calls = stub.wait_calls("WfResume", 2)
    assert dtmd.status(gid) == "prepared"
    assert dtmd.query(gid)["branches"] == []
    assert all(c.op == "wf" for c in calls)


def test_workflow_resume_error_backs_off(start_dtmd, stub, gid):
    d = start_dtmd(RETRY_INTERVAL=0.1, RETRY_MAX_INTERVAL=0.8, TRANS_CRON_INTERVAL=0.05)
    stub.set_default("WfResume", *ERROR)
    prepare_wf(d, wf_body(stub, gid))
    calls = stub.wait_calls("WfResume", 4, timeout=10)
    g = gaps(calls[:4])  # ~0.2, 0.4, 0.8
    assert g[1] >= 1.5 * g[0] and g[2] >= 1.5 * g[1], g
    assert d.status(gid) == "prepared"
    # a success brings the interval back to the base
    stub.clear_default("WfResume")
    n = len(stub.wait_calls("WfResume", 5, timeout=10))
    calls = stub.wait_calls("WfResume", n + 2, timeout=10)
    assert gaps(calls)[-1] < 0.45, gaps(calls)


def test_workflow_first_callback_respects_retry_max_interval(start_dtmd, stub, gid):
    d = start_dtmd(RETRY_INTERVAL=30, RETRY_MAX_INTERVAL=0.5)
    t0 = time.monotonic()
    prepare_wf(d, wf_body(stub, gid))
    c = stub.wait_calls("WfResume", 1, timeout=2.5)[0]
    assert c.start - t0 < 1.5


def test_workflow_no_callback_after_submit(dtmd, stub, gid):
    prepare_wf(dtmd, wf_body(stub, gid))
    stub.wait_calls("WfResume", 1)
    ok(wf_submit(dtmd, gid, status="succeed"))
    n = stub.count("WfResume")
    time.sleep(1.0)
    assert stub.count("WfResume") <= n + 1, stub.summary()  # at most one already in flight


def test_workflow_callback_survives_sigkill(dtmd, stub, gid):
    prepare_wf(dtmd, wf_body(stub, gid, name="wfk"))
    stub.wait_calls("WfResume", 1)
    dtmd.kill(signal.SIGKILL)
    time.sleep(0.3)
    n = stub.count("WfResume")
    assert not dtmd.running
    time.sleep(0.5)
    assert stub.count("WfResume") == n  # nobody calls while dtmd is down
    dtmd.start()
    calls = stub.wait_calls("WfResume", n + 2, timeout=10)
    for c in calls[n:]:
        assert c.op == "wfk" and c.body == WF_INPUT and c.branch_id == "00"
    ok(wf_submit(dtmd, gid, status="succeed"))
    assert dtmd.status(gid) == S


def test_workflow_force_stop(dtmd, stub, gid):
    prepare_wf(dtmd, wf_body(stub, gid))
    stub.wait_calls("WfResume", 1)
    ok(dtmd.api("POST", "/forceStop", body={"gid": gid}))
    assert dtmd.status(gid) == F
    n = stub.count("WfResume")
    time.sleep(0.8)
    assert stub.count("WfResume") <= n + 1
    assert_409(wf_submit(dtmd, gid, status="succeed"), "'failed'")


# --------------------------------------------------------------------------
# forceStop

def tcc_prepared(dtmd, stub, gid, **opts):
    body = {"gid": gid, "trans_type": "tcc"}
    body.update(opts)
    ok(dtmd.api("POST", "/prepare", body=body))
    ok(register(dtmd, {"gid": gid, "trans_type": "tcc", "branch_id": "01", "data": "{}",
                       "confirm": stub.url("AConfirm"), "cancel": stub.url("ACancel")}))


@pytest.mark.parametrize("state", ["prepared", "submitted", "aborting"])
def test_force_stop_tcc(dtmd, stub, gid, state):
    tcc_prepared(dtmd, stub, gid, timeout_to_fail=1)
    if state == "submitted":
        stub.set_default("AConfirm", *ONGOING)
        ok(dtmd.api("POST", "/submit", body={"gid": gid, "trans_type": "tcc"}))
        stub.wait_calls("AConfirm", 1)
    elif state == "aborting":
        stub.set_default("ACancel", *ERROR)
        ok(dtmd.api("POST", "/abort", body={"gid": gid, "trans_type": "tcc"}))
        stub.wait_calls("ACancel", 1)
    assert dtmd.status(gid) == state
    ok(dtmd.api("POST", "/forceStop", body={"gid": gid}), "forceStop")
    n = stub.count()
    q = dtmd.query(gid)
    t = q["transaction"]
    assert t["status"] == F
    assert RFC3339.match(t.get("rollback_time") or ""), t
    # no compensation: branches untouched, nothing called afterwards
    # (timeout_to_fail=1 would have made the scanner cancel a prepared TCC)
    time.sleep(1.5)
    assert stub.count() <= n + 1, stub.summary()
    if state != "aborting":
        assert stub.count("ACancel") == 0, stub.summary()
    if state == "prepared":
        assert stub.calls() == []
    assert statuses(dtmd.query(gid)) == [P, P]
    assert_409(dtmd.api("POST", "/submit", body={"gid": gid, "trans_type": "tcc"}), "'failed'")


def test_force_stop_submitted_saga(dtmd, stub, gid):
    stub.set_default("TransIn", *ONGOING)
    ok(dtmd.submit(saga(gid, [(stub.url("TransOut"), stub.url("TransOutRevert")),
                              (stub.url("TransIn"), stub.url("TransInRevert"))])))
    stub.wait_calls("TransIn", 1)
    ok(dtmd.api("POST", "/forceStop", body={"gid": gid}))
    n = stub.count("TransIn")
    time.sleep(0.8)
    assert stub.count("TransIn") <= n + 1
    assert stub.count("TransOutRevert") == 0 and stub.count("TransInRevert") == 0
    q = dtmd.query(gid)
    assert q["transaction"]["status"] == F and statuses(q) == [P, S, P, P]


@pytest.mark.parametrize("final", ["succeed", "failed"])
def test_force_stop_finished_is_409(dtmd, stub, gid, final):
    tcc_prepared(dtmd, stub, gid)
    path = "/submit" if final == "succeed" else "/abort"
    ok(dtmd.api("POST", path, body={"gid": gid, "trans_type": "tcc", "wait_result": True}))
    snap = dtmd.query(gid)
    assert snap["transaction"]["status"] == final
    assert_409(dtmd.api("POST", "/forceStop", body={"gid": gid}), "'%s'" % final)
    assert dtmd.query(gid) == snap


def test_force_stop_absent_is_404(dtmd, redis_server, gid):
    assert_404(dtmd.api("POST", "/forceStop", body={"gid": gid}))
    assert redis_server.mentions(gid) == []


def test_gid_endpoints_strip_gid_like_prepare(dtmd, stub, gid):
    raw = gid + ";x\n"
    ok(dtmd.api("POST", "/prepare", body={"gid": raw, "trans_type": "tcc"}))
    stored = gid + "x"
    assert dtmd.status(stored) == "prepared"
    ok(dtmd.api("POST", "/resetNextCronTime", body={"gid": raw}))
    ok(dtmd.api("POST", "/forceStop", body={"gid": raw}))
    assert dtmd.status(stored) == F


# --------------------------------------------------------------------------
# resetNextCronTime

def test_reset_next_cron_time_workflow(start_dtmd, stub, gid):
    d = start_dtmd(RETRY_INTERVAL=30, RETRY_MAX_INTERVAL=60)
    prepare_wf(d, wf_body(stub, gid))
    time.sleep(0.8)
    assert stub.calls() == []  # first callback due in 30 s
    t0 = time.monotonic()
    ok(d.api("POST", "/resetNextCronTime", body={"gid": gid}))
    c = stub.wait_calls("WfResume", 1, timeout=3)[0]
    assert c.start - t0 < 1.0, c.start - t0
    assert c.op == "wf" and c.body == WF_INPUT
    # then the normal schedule again: no second call soon
    time.sleep(0.8)
    assert stub.count("WfResume") == 1
    assert d.status(gid) == "prepared"


def test_reset_next_cron_time_saga_retry(start_dtmd, stub, gid):
    d = start_dtmd(RETRY_INTERVAL=30, RETRY_MAX_INTERVAL=60)
    stub.plan("TransOut", [ERROR])
    ok(d.submit(saga(gid, [(stub.url("TransOut"), "")])))
    stub.wait_calls("TransOut", 1)
    time.sleep(0.8)
    assert stub.count("TransOut") == 1  # next retry in 60 s
    q = d.query(gid)
    before = parse_time(q["transaction"]["next_cron_time"])
    now = datetime.datetime.now(datetime.timezone.utc)
    assert (before - now).total_seconds() > 30, q["transaction"]
    t0 = time.monotonic()
    ok(d.api("POST", "/resetNextCronTime", body={"gid": gid}))
    q = d.wait_status(gid, S, timeout=3)
    assert time.monotonic() - t0 < 1.5
    assert statuses(q) == [P, S]
    assert stub.count("TransOut") == 2


def test_reset_next_cron_time_finished_and_absent(dtmd, stub, gid):
    ok(dtmd.submit(saga(gid, [("", "")], wait_result=True)))
    snap = dtmd.query(gid)
    assert snap["transaction"]["status"] == S
    ok(dtmd.api("POST", "/resetNextCronTime", body={"gid": gid}))  # accepted, no effect
    assert dtmd.query(gid)["transaction"]["status"] == S
    absent = new_gid("absent")
    assert_404(dtmd.api("POST", "/resetNextCronTime", body={"gid": absent}))
    assert dtmd.query(absent) == {"transaction": None, "branches": []}


# --------------------------------------------------------------------------
# resetCronTime

def stalled_tcc(dtmd, stub, gid, retry_interval):
    """A submitted TCC whose confirm errored once: due in 2*retry_interval seconds."""
    # request_timeout 5: the stub's small listen backlog may delay a connect under a burst
    ok(dtmd.api("POST", "/prepare", body={"gid": gid, "trans_type": "tcc",
                                          "retry_interval": retry_interval,
                                          "request_timeout": 5}))
    name = "C-" + gid
    ok(register(dtmd, {"gid": gid, "trans_type": "tcc", "branch_id": "01", "data": "{}",
                       "confirm": stub.url(name), "cancel": stub.url("X-" + gid)}))
    stub.plan(name, [ERROR])
    st, body = dtmd.api("POST", "/submit", body={"gid": gid, "trans_type": "tcc",
                                                 "wait_result": True})
    assert st == 500, (st, body)
    return name


def reset_cron(dtmd, method="GET", **params):
    qs = ("?" + urllib.parse.urlencode(params)) if params else ""
    st, body = dtmd.api(method, "/resetCronTime" + qs)
    assert st == 200, (st, body)
    assert set(body) == {"succeed_count", "has_remaining"}, body
    return body


def test_reset_cron_time(start_dtmd, stub):
    """dtm ResetCronTime: 10 trans due in 220 s + 1 due in 90 s."""
    d = start_dtmd(RETRY_MAX_INTERVAL=1000)
    far = [new_gid("far%d" % i) for i in range(10)]
    near = new_gid("near")
    names = {g: stalled_tcc(d, stub, g, 110) for g in far}
    near_name = stalled_tcc(d, stub, near, 45)
    assert all(stub.count(n) == 1 for n in names.values())

    assert reset_cron(d, timeout=100, limit=9) == {"succeed_count": 9, "has_remaining": True}
    # the 9 are due now: the scanner retries them at once
    wait_until(lambda: sum(stub.count(n) == 2 for n in names.values()) == 9, timeout=8,
               msg="9 retries")
    done = [g for g in far if stub.count(names[g]) == 2]
    for g in done:
        d.wait_status(g, S, timeout=5)
    left = [g for g in far if g not in done]
    assert len(left) == 1 and d.status(left[0]) == "submitted"
    assert d.status(near) == "submitted" and stub.count(near_name) == 1

    assert reset_cron(d, "POST", timeout=100, limit=10) == \
        {"succeed_count": 1, "has_remaining": False}
    d.wait_status(left[0], S, timeout=5)
    time.sleep(0.3)
    assert d.status(near) == "submitted" and stub.count(near_name) == 1  # 90 s < 100 s

    # default timeout = 3 x TimeoutToFail (9 s here): moves the one due in 90 s, not one due
    # in 4 s
    soon = new_gid("soon")
    soon_name = stalled_tcc(d, stub, soon, 2)
    assert reset_cron(d) == {"succeed_count": 1, "has_remaining": False}
    d.wait_status(near, S, timeout=5)
    assert stub.count(near_name) == 2
    assert d.status(soon) == "submitted" and stub.count(soon_name) == 1
    # timeout 0: everything not due yet
    assert reset_cron(d, timeout=0) == {"succeed_count": 1, "has_remaining": False}
    d.wait_status(soon, S, timeout=2)
    assert reset_cron(d, timeout=0) == {"succeed_count": 0, "has_remaining": False}
    assert all(stub.count(n) == 2 for n in names.values())


def shard_of(gid, nshards=16):
    """The shard dtmd keeps gid in (FNV-1a, src/keys.c); used only to make the
    next test deterministic."""
    h = 2166136261
    for ch in gid.encode():
        h ^= ch
        h = (h * 16777619) & 0xFFFFFFFF
    return h % nshards


def test_reset_cron_time_exact_limit_has_no_remaining(start_dtmd, stub):
    d = start_dtmd(RETRY_MAX_INTERVAL=1000, STORE_SHARDS=16)
    gid = next(g for g in (new_gid("exact%d" % i) for i in range(1000)) if shard_of(g) == 0)
    ok(d.api("POST", "/prepare", body={"gid": gid, "trans_type": "tcc", "retry_interval": 110,
                                       "timeout_to_fail": 1000}))
    # exactly one transaction matches; limit 1 moves it and nothing else remains (dtm: false)
    assert reset_cron(d, timeout=100, limit=1) == {"succeed_count": 1, "has_remaining": False}


def test_reset_cron_time_bad_params(dtmd):
    for qs in ("timeout=abc", "timeout=-1", "timeout=1.5", "limit=0", "limit=-3", "limit=abc",
               "limit=1x", "timeout=%20"):
        for method in ("GET", "POST"):
            assert_400(dtmd.api(method, "/resetCronTime?" + qs), "%s %s" % (method, qs))
    # empty values mean the defaults
    assert reset_cron(dtmd, timeout="", limit="") == {"succeed_count": 0, "has_remaining": False}


# --------------------------------------------------------------------------
# all

def walk_all(dtmd, max_pages=200, **params):
    pages, pos = [], ""
    for _ in range(max_pages):
        p = dict(params)
        if pos:
            p["position"] = pos
        st, body = dtmd.api("GET", "/all?" + urllib.parse.urlencode(p))
        assert st == 200, (p, st, body)
        assert set(body) == {"transactions", "next_position"}, body
        assert isinstance(body["next_position"], str), body
        assert isinstance(body["transactions"], list), body
        pages.append(body)
        pos = body["next_position"]
        if pos == "":
            return pages
    raise AssertionError("/all did not finish within %d pages" % max_pages)


def gids_of(pages):
    return [t["gid"] for p in pages for t in p["transactions"]]


def test_all_filters_and_paging(dtmd, stub):
    A = {k: new_gid("all-a-" + k) for k in ("tcc_prep", "saga_ok", "wf_ok")}
    B = {k: new_gid("all-b-" + k) for k in ("xa_failed", "wf_prep", "tcc_ok")}
    # batch A
    tcc_prepared(dtmd, stub, A["tcc_prep"], timeout_to_fail=1000)
    ok(dtmd.submit(saga(A["saga_ok"], [("", "")], wait_result=True)))
    prepare_wf(dtmd, wf_body(stub, A["wf_ok"], resume=None))
    ok(wf_submit(dtmd, A["wf_ok"], status="succeed", result=b64("r")))
    time.sleep(1.1)
    # batch B
    ok(dtmd.api("POST", "/prepare", body={"gid": B["xa_failed"], "trans_type": "xa"}))
    ok(dtmd.api("POST", "/abort", body={"gid": B["xa_failed"], "trans_type": "xa",
                                        "wait_result": True}))
    prepare_wf(dtmd, wf_body(stub, B["wf_prep"], resume=None))
    ok(dtmd.api("POST", "/prepare", body={"gid": B["tcc_ok"], "trans_type": "tcc"}))
    ok(dtmd.api("POST", "/submit", body={"gid": B["tcc_ok"], "trans_type": "tcc",
                                         "wait_result": True}))
    every = sorted(list(A.values()) + list(B.values()))

    pages = walk_all(dtmd)
    assert sorted(gids_of(pages)) == every
    by_gid = {t["gid"]: t for p in pages for t in p["transactions"]}
    assert by_gid[A["wf_ok"]]["status"] == S and by_gid[A["wf_ok"]]["result"] == b64("r")
    assert by_gid[B["xa_failed"]]["trans_type"] == "xa"
    for t in by_gid.values():
        assert RFC3339.match(t.get("create_time") or ""), t

    def sel(**params):
        return sorted(gids_of(walk_all(dtmd, **params)))
    assert sel(status="prepared") == sorted([A["tcc_prep"], B["wf_prep"]])
    assert sel(status="succeed") == sorted([A["saga_ok"], A["wf_ok"], B["tcc_ok"]])
    assert sel(status="failed") == [B["xa_failed"]]
    assert sel(status="submitted") == []
    assert sel(transType="workflow") == sorted([A["wf_ok"], B["wf_prep"]])
    assert sel(transType="tcc", status="succeed") == [B["tcc_ok"]]
    assert sel(transType="msg") == []

    # create time windows (epoch ms, compared in whole seconds, strictly after/before)
    a_ms = [ms(by_gid[g]["create_time"]) for g in A.values()]
    b_ms = [ms(by_gid[g]["create_time"]) for g in B.values()]
    assert min(b_ms) - max(a_ms) >= 1000
    assert sel(createTimeStart=max(a_ms)) == sorted(B.values())
    assert sel(createTimeEnd=min(b_ms)) == sorted(A.values())
    assert sel(createTimeStart=max(b_ms)) == []   # strictly after
    assert sel(createTimeEnd=min(a_ms)) == []     # strictly before
    assert sel(createTimeStart=min(a_ms) - 2000, createTimeEnd=max(b_ms) + 2000) == every
    assert sel(createTimeStart=max(a_ms), transType="workflow") == [B["wf_prep"]]
    now = int(time.time() * 1000)
    assert sel(createTimeStart=now - 600000, createTimeEnd=now - 300000) == []

    # paging: every transaction exactly once, pages no longer than the limit
    for params in ({"limit": 1}, {"limit": 2}, {"limit": 4}, {"limit": 1, "status": "succeed"}):
        pages = walk_all(dtmd, **params)
        got = gids_of(pages)
        want = every if "status" not in params else sel(status="succeed")
        assert sorted(got) == want, (params, got)
        assert all(len(p["transactions"]) <= params["limit"] for p in pages), params
        positions = [p["next_position"] for p in pages[:-1]]
        assert len(set(positions)) == len(positions) and all(positions), positions
    pages = walk_all(dtmd, limit=1)
    assert len(pages) >= 6 and pages[0]["next_position"] != ""
    st, body = dtmd.api("GET", "/all?limit=1000")
    assert st == 200 and body["next_position"] == "" and sorted(gids_of([body])) == every

    # by gid: that record (create_time of the submitted workflow kept: 12.2)
    st, body = dtmd.api("GET", "/all?gid=" + A["wf_ok"])
    assert st == 200 and [t["gid"] for t in body["transactions"]] == [A["wf_ok"]]
    assert body["transactions"][0]["create_time"] == by_gid[A["wf_ok"]]["create_time"]


def all_page(dtmd, **params):
    st, body = dtmd.api("GET", "/all?" + urllib.parse.urlencode(params))
    assert st == 200, (params, st, body)
    return body


def test_all_newest_first_across_shards(start_dtmd, stub, redis_server):
    """/all merges the shards newest first (creation time, then gid, both
    descending); pages of any size concatenate to exactly that order, with
    filters too, and a transaction created while paging does not disturb the
    pages after the cursor."""
    d = start_dtmd(STORE_SHARDS=4)
    made, prepared = [], set()
    for i in range(30):
        g = new_gid("newest-%02d" % i)
        if i % 3 == 0:
            ok(d.api("POST", "/prepare", body={"gid": g, "trans_type": "tcc",
                                                "timeout_to_fail": 1000}))
            prepared.add(g)
        else:
            ok(d.submit(saga(g, [("", "")], wait_result=True)))
        made.append(g)
        time.sleep(0.003)  # distinct creation times (ms)
    assert len({shard_of(g, 4) for g in made}) == 4
    newest = made[::-1]
    times = [ms(t["create_time"]) for t in all_page(d, limit=100)["transactions"]]
    assert times == sorted(times, reverse=True) and len(set(times)) == 30

    for limit in (1, 7, 29, 30, 31):
        pages = walk_all(d, limit=limit)
        assert gids_of(pages) == newest, limit
        assert all(len(p["transactions"]) == limit for p in pages[:-1]), limit
    pages = walk_all(d, limit=7)
    assert [len(p["transactions"]) for p in pages] == [7, 7, 7, 7, 2]
    assert pages[-1]["next_position"] == ""
    # filters: the same order, only the matches
    assert gids_of(walk_all(d, limit=7, status="prepared")) == [g for g in newest if g in prepared]
    assert gids_of(walk_all(d, limit=3, transType="saga", status="succeed")) == \
        [g for g in newest if g not in prepared]
    # the limit: exactly the largest, and one over
    assert gids_of([all_page(d, limit=10000)]) == newest
    assert_400(d.api("GET", "/all?limit=10001"))

    # created during paging: the pages after the cursor go on as before
    first = all_page(d, limit=7)
    late = new_gid("newest-late")
    ok(d.submit(saga(late, [("", "")], wait_result=True)))
    got, pos = gids_of([first]), first["next_position"]
    while pos:
        page = all_page(d, limit=7, position=pos)
        got += gids_of([page])
        pos = page["next_position"]
    assert got == newest
    assert gids_of(walk_all(d, limit=7)) == [late] + newest

    # equal entry times (a second's gids can share a millisecond): the
    # greater gid first, in every shard, and a cursor inside such a run. The
    # shards' index streams are written again as if Redis' clock had read
    # each creation time, the tie's gids at one ms, added neither in
    # ascending nor descending gid order (smallest, greatest, next smallest,
    # ...: a stream keeps the order entries came in, /all must sort a ms)
    tie = sorted(made[5:17], reverse=True)
    when = ms(all_page(d, gid=made[17])["transactions"][0]["create_time"]) + 1
    created = {t["gid"]: ms(t["create_time"]) for t in all_page(d, limit=100)["transactions"]}
    assert len(created) == 31
    with redis_server.client() as r:
        for shard in range(4):
            key = "dtmd{%d}:ix" % shard
            gids = [dict(zip(*[iter(f)] * 2))[b"g"].decode() for _, f in r("XRANGE", key, "-", "+")]
            assert sorted(gids) == sorted(g for g in created if shard_of(g, 4) == shard)
            mine = sorted((g for g in gids if g in tie), key=str.encode)
            zigzag = [mine.pop(0) if k % 2 == 0 else mine.pop() for k in range(len(mine))]
            again = sorted((created[g], 0, g) for g in gids if g not in tie)
            again += [(when, 1 + k, g) for k, g in enumerate(zigzag)]
            r("DEL", key)
            for t, seq, g in sorted(again):
                r("XADD", key, "%d-%d" % (t, seq), "g", g)
    assert len({shard_of(g, 4) for g in tie}) > 1
    assert any(sum(shard_of(g, 4) == s for g in tie) > 2 for s in range(4))
    rest = [late] + [g for g in newest if g not in tie]
    at = rest.index(made[17])
    want = rest[:at] + tie + rest[at:]
    for limit in (1, 2, 5, 7):
        assert gids_of(walk_all(d, limit=limit)) == want, limit


def test_all_bad_params(dtmd):
    for qs in ("limit=abc", "limit=0", "limit=-1", "limit=1.5", "limit=100000",
               "createTimeStart=abc", "createTimeEnd=-5", "createTimeStart=1e3",
               "position=garbage", "position=99999:", "position=:x", "position=-1:x",
               "position=+5:x", "position=1e3:x", "position=5:" + "x" * 129,
               "limit=2&position=nocolon"):
        assert_400(dtmd.api("GET", "/all?" + qs), qs)
    assert dtmd.api("GET", "/all?limit=5") == (200, {"transactions": [], "next_position": ""})


# --------------------------------------------------------------------------
# bad input: 400 + {"message"}, nothing stored

REG_CASES = {
    "malformed-json": lambda g: '{"gid":"%s","trans_type":"tcc",' % g,
    "array": lambda g: json.dumps([{"gid": g}]),
    "empty-body": lambda g: "",
    "missing-gid": lambda g: json.dumps({"trans_type": "tcc", "branch_id": "01"}),
    "empty-gid": lambda g: json.dumps({"gid": "", "trans_type": "tcc", "branch_id": "01"}),
    "gid-number": lambda g: json.dumps({"gid": 5, "trans_type": "tcc", "branch_id": "01"}),
    "missing-branch-id": lambda g: json.dumps({"gid": g, "trans_type": "tcc", "data": "{}"}),
    "empty-branch-id": lambda g: json.dumps({"gid": g, "trans_type": "tcc", "branch_id": ""}),
    "branch-id-number": lambda g: json.dumps({"gid": g, "trans_type": "tcc", "branch_id": 1}),
    "data-object": lambda g: json.dumps({"gid": g, "trans_type": "tcc", "branch_id": "01",
                                         "data": {"amount": 30}}),
    "missing-trans-type": lambda g: json.dumps({"gid": g, "branch_id": "01"}),
    "unknown-trans-type": lambda g: json.dumps({"gid": g, "trans_type": "tccx",
                                                "branch_id": "01"}),
    "saga-trans-type": lambda g: json.dumps({"gid": g, "trans_type": "saga", "branch_id": "01"}),
    "msg-trans-type": lambda g: json.dumps({"gid": g, "trans_type": "msg", "branch_id": "01"}),
    "tcc-grpc-confirm": lambda g: json.dumps({"gid": g, "trans_type": "tcc", "branch_id": "01",
                                              "confirm": "grpc://x/svc/Confirm",
                                              "cancel": "http://127.0.0.1:1/c"}),
    "tcc-relative-cancel": lambda g: json.dumps({"gid": g, "trans_type": "tcc",
                                                 "branch_id": "01",
                                                 "confirm": "http://127.0.0.1:1/c",
                                                 "cancel": "/api/busi/Cancel"}),
    "xa-no-url": lambda g: json.dumps({"gid": g, "trans_type": "xa", "branch_id": "01"}),
    "workflow-no-op": lambda g: json.dumps({"gid": g, "trans_type": "workflow",
                                            "branch_id": "01", "status": "succeed"}),
    "workflow-bad-status": lambda g: json.dumps({"gid": g, "trans_type": "workflow",
                                                 "branch_id": "01", "op": "action",
                                                 "status": "done"}),
    "gid-too-long": lambda g: json.dumps({"gid": g + "x" * 300, "trans_type": "tcc",
                                          "branch_id": "01"}),
}


def test_register_branch_bad_input(dtmd, stub, redis_server, gid):
    # against a prepared TCC (its branch list must stay empty) ...
    ok(dtmd.api("POST", "/prepare", body={"gid": gid, "trans_type": "tcc",
                                          "timeout_to_fail": 1000}))
    absent = new_gid("reg-absent")
    for case in sorted(REG_CASES):
        for path in ("/registerBranch", "/registerTccBranch", "/registerXaBranch"):
            assert_400(dtmd.api("POST", path, raw=REG_CASES[case](gid)), "%s %s" % (path, case))
        # ... and against an absent gid (nothing at all may be stored)
        assert_400(dtmd.api("POST", "/registerBranch", raw=REG_CASES[case](absent)), case)
    q = dtmd.query(gid)
    assert q["transaction"]["status"] == "prepared" and q["branches"] == [], q
    assert redis_server.mentions(absent) == []
    assert dtmd.api("GET", "/api/ping") == (200, {"msg": "pong"})
    # control: a good registration is accepted
    ok(register(dtmd, {"gid": gid, "trans_type": "tcc", "branch_id": "01", "data": "{}",
                       "confirm": stub.url("AConfirm"), "cancel": stub.url("ACancel")}))
    assert len(dtmd.query(gid)["branches"]) == 2


GID_BODIES = ["", "{", "[]", '"x"', "{}", '{"gid":null}', '{"gid":""}', '{"gid":1}',
              '{"gid":["a"]}', '{"gid":{"a":1}}']


@pytest.mark.parametrize("path", ["/forceStop", "/resetNextCronTime"])
def test_gid_endpoints_bad_input(dtmd, stub, gid, path):
    tcc_prepared(dtmd, stub, gid, timeout_to_fail=1000)
    snap = dtmd.query(gid)
    for raw in GID_BODIES:
        assert_400(dtmd.api("POST", path, raw=raw), "%s %r" % (path, raw))
    # a body naming the gid only in the wrong place does not touch it
    assert_400(dtmd.api("POST", path + "?gid=" + gid, raw="{}"), path)
    q = dtmd.query(gid)
    assert q["transaction"]["status"] == "prepared"
    assert q["transaction"]["next_cron_time"] == snap["transaction"]["next_cron_time"]
    assert q["branches"] == snap["branches"]


PWF_CASES = {
    "malformed-json": lambda g, s: '{"gid":"%s","trans_type":"workflow"' % g,
    "tcc-trans-type": lambda g, s: json.dumps(dict(wf_body(s, g), trans_type="tcc")),
    "saga-trans-type": lambda g, s: json.dumps(dict(wf_body(s, g), trans_type="saga")),
    "unknown-trans-type": lambda g, s: json.dumps(dict(wf_body(s, g), trans_type="wf")),
    "missing-trans-type": lambda g, s: json.dumps({k: v for k, v in wf_body(s, g).items()
                                                   if k != "trans_type"}),
    "missing-gid": lambda g, s: json.dumps({k: v for k, v in wf_body(s, g).items()
                                            if k != "gid"}),
    "custom-data-object": lambda g, s: json.dumps(dict(wf_body(s, g),
                                                       custom_data={"name": "wf"})),
    "query-prepared-grpc": lambda g, s: json.dumps(dict(wf_body(s, g),
                                                        query_prepared="grpc://x/y")),
    "query-prepared-number": lambda g, s: json.dumps(dict(wf_body(s, g), query_prepared=3)),
}


def test_prepare_workflow_bad_input(dtmd, stub, redis_server):
    for case in sorted(PWF_CASES):
        g = new_gid("pwf-" + case)
        assert_400(dtmd.api("POST", "/prepareWorkflow", raw=PWF_CASES[case](g, stub)), case)
        assert dtmd.query(g) == {"transaction": None, "branches": []}, case
        assert redis_server.mentions(g) == [], case
    assert stub.calls() == []
