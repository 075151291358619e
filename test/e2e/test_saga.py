"""SAGA end to end: real redis-server + dtmd + business stub.

Spec: docs/protocol.md, docs/modes.md#saga and docs/requests.md.
Branch arrays are in storage order [compensate1, action1, compensate2,
action2, ...] with statuses P/S/F = prepared/succeed/failed.
"""

import email.utils
import http.client
import json
import re
import signal
import threading
import time
import urllib.parse

import pytest

from dtmtest import (ERROR, F, ONGOING, P, RFC3339, S, SUCCESS_BODY, Stub, b64, free_port,
                     http_request, new_gid, parse_time, saga, scripts_run, wait_until)

FAIL_409 = (409, '{"error":"reason:Insufficient balance. FAILURE"}', 0)
FAIL_200 = (200, '{"dtm_result":"FAILURE","message":"Insufficient balance"}', 0)


def two_steps(stub):
    return [(stub.url("TransOut"), stub.url("TransOutRevert")),
            (stub.url("TransIn"), stub.url("TransInRevert"))]


def default_saga(stub, gid, **opts):
    return saga(gid, two_steps(stub), **opts)


def submit_ok(dtmd, body):
    st, resp = dtmd.submit(body)
    assert (st, resp) == (200, {"dtm_result": "SUCCESS"}), "submit -> %s %r" % (st, resp)


def names(calls):
    return [c.name for c in calls]


def assert_409(st, body):
    assert st == 409, "expected 409, got %s %r" % (st, body)
    assert isinstance(body, dict) and body.get("dtm_result") == "FAILURE", body
    assert isinstance(body.get("message"), str) and body["message"], body


# --------------------------------------------------------------------------
# basic outcomes

def test_saga_success(dtmd, stub, redis_server, gid):
    payloads = ['{"amount":30}', '{"amount":31,"note":"x y&z"}']
    st, resp, hdrs = http_request("POST", dtmd.base + "/submit",
                                  body=default_saga(stub, gid, payloads=payloads))
    assert (st, resp) == (200, {"dtm_result": "SUCCESS"})
    assert hdrs.get("content-type", "").startswith("application/json"), hdrs
    q = dtmd.wait_status(gid, S)
    assert [b["status"] for b in q["branches"]] == [P, S, P, S]
    assert not q["transaction"].get("rollback_reason")

    out, inn = stub.calls("TransOut"), stub.calls("TransIn")
    assert len(out) == 1 and len(inn) == 1, stub.summary()
    assert stub.calls("TransOutRevert") == [] and stub.calls("TransInRevert") == []
    for call, bid, payload in ((out[0], "01", payloads[0]), (inn[0], "02", payloads[1])):
        assert call.method == "POST"
        # the four parameters, sorted, nothing else (the server never adds dtm=)
        assert call.raw_query == "branch_id=%s&gid=%s&op=action&trans_type=saga" % (bid, gid)
        assert call.query == {"branch_id": bid, "gid": gid, "op": "action", "trans_type": "saga"}
        assert call.body == payload.encode()
        ct = call.headers.get("content-type", "")
        assert ct.split(";")[0].strip().lower() == "application/json", call.headers
    # sequential: step 2 starts only after step 1 answered
    assert inn[0].start >= out[0].end
    # the transaction really lives in Redis (makes the "nothing stored" checks meaningful)
    assert redis_server.mentions(gid), redis_server.keys()


def test_answer_has_one_current_date_header(dtmd, stub, gid):
    """Answers carry one Date header in HTTP's format (dtmd supplies it, cached per
    second, instead of evhttp formatting one per answer)."""
    conn = http.client.HTTPConnection("127.0.0.1", dtmd.port, timeout=10)
    try:
        for _ in range(3):
            conn.request("POST", "/api/dtmsvr/submit",
                         body=json.dumps(saga(new_gid("date"), [("", "")])),
                         headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            assert resp.status == 200
            dates = [v for k, v in resp.getheaders() if k.lower() == "date"]
            assert len(dates) == 1, resp.getheaders()
            assert re.fullmatch(r"[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT",
                                dates[0]), dates
            age = time.time() - email.utils.parsedate_to_datetime(dates[0]).timestamp()
            assert -2 < age < 3, (dates[0], age)
            time.sleep(0.6)
    finally:
        conn.close()


@pytest.mark.parametrize("reply", [FAIL_409, FAIL_200], ids=["409", "200-body-FAILURE"])
def test_saga_failure_compensates_in_reverse(dtmd, stub, gid, reply):
    payloads = ['{"amount":30}', '{"amount":32}']
    stub.plan("TransIn", [reply])
    # slow compensation: a TransOutRevert started before it ends would be visible
    stub.plan("TransInRevert", [(200, SUCCESS_BODY, 0.3)])
    submit_ok(dtmd, default_saga(stub, gid, payloads=payloads))
    q = dtmd.wait_status(gid, F)
    assert [b["status"] for b in q["branches"]] == [S, S, S, F]
    t = q["transaction"]
    reason = t.get("rollback_reason") or ""
    assert "Insufficient balance" in reason, reason
    assert reply[1] in reason, reason
    assert reason.startswith("url:") and stub.url("TransIn") in reason, reason
    assert "return failed" in reason, reason
    assert RFC3339.match(t.get("rollback_time") or ""), t
    assert RFC3339.match(q["branches"][3].get("finish_time") or ""), q["branches"][3]

    calls = stub.calls()
    assert names(calls) == ["TransOut", "TransIn", "TransInRevert", "TransOutRevert"], stub.summary()
    assert [c.op for c in calls] == ["action", "action", "compensate", "compensate"]
    assert [c.branch_id for c in calls] == ["01", "02", "02", "01"]
    assert calls[2].body == payloads[1].encode() and calls[3].body == payloads[0].encode()
    assert calls[2].raw_query == "branch_id=02&gid=%s&op=compensate&trans_type=saga" % gid
    # compensation of step 1 only after step 2 was rolled back
    assert calls[3].start >= calls[2].end


def test_rollback_reason_format(dtmd, stub, gid):
    """4.2: reason `url:<url> return failed: <body> FAILURE`."""
    stub.plan("TransIn", [(409, "not enough money", 0)])
    submit_ok(dtmd, default_saga(stub, gid))
    q = dtmd.wait_status(gid, F)
    reason = q["transaction"].get("rollback_reason")
    assert reason == "url:%s return failed: not enough money FAILURE" % stub.url("TransIn"), reason


def test_saga_failure_then_compensation_error_retried(dtmd, stub, gid):
    """dtm 'Failed': TransIn FAILURE, TransOutRevert ERROR once -> aborting; cron -> failed."""
    stub.plan("TransIn", [FAIL_409])
    stub.plan("TransOutRevert", [ERROR])
    submit_ok(dtmd, default_saga(stub, gid))
    stub.wait_calls("TransOutRevert", 1)
    t = dtmd.trans(gid)
    if stub.count("TransOutRevert") == 1:  # the retry has not happened yet
        assert t["status"] == "aborting", t
    q = dtmd.wait_status(gid, F)
    assert [b["status"] for b in q["branches"]] == [S, S, S, F]
    assert stub.count("TransOutRevert") == 2
    assert stub.count("TransInRevert") == 1
    assert stub.count("TransOut") == 1 and stub.count("TransIn") == 1


def test_resubmit_after_failure_is_409(dtmd, stub, gid):
    stub.plan("TransIn", [FAIL_409])
    body = default_saga(stub, gid)
    submit_ok(dtmd, body)
    dtmd.wait_status(gid, F)
    before = stub.count()
    st, resp = dtmd.submit(body)
    assert_409(st, resp)
    assert dtmd.status(gid) == F
    assert dtmd.branch_statuses(gid) == [S, S, S, F]
    time.sleep(0.5)
    assert stub.count() == before, stub.summary()


@pytest.mark.parametrize("reply", [(425, "", 0), (200, '{"dtm_result":"ONGOING"}', 0)],
                         ids=["425", "200-body-ONGOING"])
def test_saga_ongoing_then_success(dtmd, stub, gid, reply):
    stub.plan("TransOut", [reply])
    submit_ok(dtmd, default_saga(stub, gid))
    stub.wait_calls("TransOut", 1)
    q = dtmd.query(gid)
    if stub.count("TransOut") == 1:  # not retried yet: still submitted, nothing done
        assert q["transaction"]["status"] == "submitted", q
        assert [b["status"] for b in q["branches"]] == [P, P, P, P]
    q = dtmd.wait_status(gid, S)
    assert [b["status"] for b in q["branches"]] == [P, S, P, S]
    assert stub.count("TransOut") == 2 and stub.count("TransIn") == 1
    assert stub.count("TransOutRevert") == 0 and stub.count("TransInRevert") == 0


def test_saga_http_error_retried_with_backoff(dtmd, stub, gid):
    stub.plan("TransIn", [ERROR, ERROR, ERROR])
    submit_ok(dtmd, default_saga(stub, gid))
    q = dtmd.wait_status(gid, S, timeout=30)
    assert [b["status"] for b in q["branches"]] == [P, S, P, S]
    calls = stub.calls("TransIn")
    assert len(calls) == 4, stub.summary()
    gaps = [b.start - a.start for a, b in zip(calls, calls[1:])]
    # exponential back-off: the interval grows (base 0.3 s: ~0.6, ~1.2, ~2 s capped)
    assert gaps[2] > gaps[0], gaps
    assert stub.count("TransOut") == 1
    assert stub.count("TransOutRevert") == 0 and stub.count("TransInRevert") == 0


def test_saga_unreachable_url_retried_then_success(dtmd, stub, gid):
    port = free_port()  # nothing listens there (yet)
    down = "http://127.0.0.1:%d/api/busi" % port
    body = saga(gid, [(stub.url("TransOut"), stub.url("TransOutRevert")),
                      (down + "/TransIn", down + "/TransInRevert")])
    submit_ok(dtmd, body)
    stub.wait_calls("TransOut", 1)
    time.sleep(1.5)  # several connection-refused attempts
    q = dtmd.query(gid)
    assert q["transaction"]["status"] == "submitted", q
    assert [b["status"] for b in q["branches"]] == [P, S, P, P]
    late = Stub(port)
    try:
        q = dtmd.wait_status(gid, S, timeout=20)
        assert [b["status"] for b in q["branches"]] == [P, S, P, S]
        calls = late.calls("TransIn")
        assert len(calls) >= 1 and calls[0].query["gid"] == gid
        assert late.count("TransInRevert") == 0
    finally:
        late.close()
    assert stub.count("TransOut") == 1


# --------------------------------------------------------------------------
# options

def test_saga_timeout_to_fail(dtmd, stub, gid):
    stub.set_default("TransOut", *ONGOING)
    submit_ok(dtmd, default_saga(stub, gid, timeout_to_fail=1))
    q = dtmd.wait_status(gid, F, timeout=20)
    reason = q["transaction"].get("rollback_reason")
    assert reason and re.match(r"^Timeout after \d+ seconds$", reason), reason
    assert reason == "Timeout after 1 seconds"
    # TransOut may have run (ONGOING) -> it is compensated; step 2 never started
    assert [b["status"] for b in q["branches"]] == [S, P, P, P]
    assert stub.count("TransIn") == 0 and stub.count("TransInRevert") == 0
    assert stub.count("TransOutRevert") == 1


def test_saga_retry_limit_not_reached(dtmd, stub, gid):
    stub.plan("TransIn", [ERROR, ERROR, ERROR])
    st, resp = dtmd.submit(default_saga(stub, gid, retry_limit=3, wait_result=True))
    assert (st, resp) == (200, {"dtm_result": "SUCCESS"}), (st, resp)
    q = dtmd.query(gid)
    assert q["transaction"]["status"] == S
    assert [b["status"] for b in q["branches"]] == [P, S, P, S]
    assert stub.count("TransIn") == 4
    assert q["transaction"].get("retry_count") == 3, q["transaction"]  # persisted (12.4)


def test_saga_retry_limit_exceeded(dtmd, stub, gid):
    stub.plan("TransIn", [ERROR, ERROR, ERROR])
    st, resp = dtmd.submit(default_saga(stub, gid, retry_limit=1, wait_result=True))
    assert_409(st, resp)
    assert "RetryCount is greater than RetryLimit" in resp["message"], resp
    q = dtmd.wait_status(gid, F)
    assert q["transaction"]["rollback_reason"] == \
        "RetryCount is greater than RetryLimit, RetryLimit: 1"
    # TransIn may have been executed by one of its attempts: compensated, action stays prepared
    assert [b["status"] for b in q["branches"]] == [S, S, S, P]
    assert stub.count("TransIn") == 2, stub.summary()
    assert names(stub.calls())[-2:] == ["TransInRevert", "TransOutRevert"]


def test_saga_request_timeout_option(dtmd, stub, gid):
    """request_timeout (s) overrides the config RequestTimeout (1 s): a 1.5 s branch succeeds."""
    stub.plan("TransOut", [(200, SUCCESS_BODY, 1.5)])
    st, resp = dtmd.submit(saga(gid, [(stub.url("TransOut"), "")], request_timeout=4,
                                wait_result=True))
    assert (st, resp) == (200, {"dtm_result": "SUCCESS"}), (st, resp)
    assert dtmd.status(gid) == S
    assert stub.count("TransOut") == 1


def test_saga_config_request_timeout_applies(dtmd, stub, gid):
    """Without request_timeout a branch slower than RequestTimeout (1 s) is an error and retried."""
    stub.plan("TransOut", [(200, SUCCESS_BODY, 2.5)])
    submit_ok(dtmd, saga(gid, [(stub.url("TransOut"), "")]))
    q = dtmd.wait_status(gid, S, timeout=20)
    assert [b["status"] for b in q["branches"]] == [P, S]
    assert stub.count("TransOut") >= 2


def test_branch_headers_on_every_call(dtmd, stub, gid):
    headers = {"test_header": "test", "X-Trace-Id": "abc-123"}
    stub.plan("TransOut", [ERROR])
    stub.plan("TransIn", [ONGOING])
    submit_ok(dtmd, default_saga(stub, gid, branch_headers=headers))
    dtmd.wait_status(gid, S)
    calls = stub.calls()
    assert names(calls) == ["TransOut", "TransOut", "TransIn", "TransIn"], stub.summary()
    for c in calls:
        assert c.headers.get("test_header") == "test", c.headers
        assert c.headers.get("x-trace-id") == "abc-123", c.headers
        assert c.headers.get("content-type", "").startswith("application/json"), c.headers


def test_branch_headers_on_compensation(dtmd, stub, gid):
    stub.plan("TransIn", [FAIL_409])
    submit_ok(dtmd, default_saga(stub, gid, branch_headers={"test_header": "test"}))
    dtmd.wait_status(gid, F)
    calls = stub.calls()
    assert len(calls) == 4
    for c in calls:
        assert c.headers.get("test_header") == "test", (c, c.headers)


# --------------------------------------------------------------------------
# concurrent sagas

def con_steps(stub, n):
    return [(stub.url("Con%d" % i), stub.url("Con%dRevert" % i)) for i in range(1, n + 1)]


def test_concurrent_saga_runs_in_parallel(dtmd, stub, gid):
    for i in (1, 2, 3):
        stub.plan("Con%d" % i, [(200, SUCCESS_BODY, 0.5)])
    submit_ok(dtmd, saga(gid, con_steps(stub, 3), custom_data={"concurrent": True}))
    q = dtmd.wait_status(gid, S)
    assert [b["status"] for b in q["branches"]] == [P, S, P, S, P, S]
    calls = [stub.calls("Con%d" % i) for i in (1, 2, 3)]
    assert all(len(c) == 1 for c in calls), stub.summary()
    calls = [c[0] for c in calls]
    assert [c.branch_id for c in calls] == ["01", "02", "03"]
    # all three were in flight at the same time
    assert max(c.start for c in calls) < min(c.end for c in calls), stub.summary()


def test_concurrent_saga_orders_simple(dtmd, stub, gid):
    stub.plan("Con1", [(200, SUCCESS_BODY, 0.3)])
    submit_ok(dtmd, saga(gid, con_steps(stub, 2),
                         custom_data='{"concurrent":true,"orders":{"1":[0]}}'))
    dtmd.wait_status(gid, S)
    c1, c2 = stub.calls("Con1"), stub.calls("Con2")
    assert len(c1) == 1 and len(c2) == 1
    assert c2[0].start >= c1[0].end, stub.summary()


def test_concurrent_saga_orders_parallel_then_dependent(dtmd, stub, gid):
    for i in (1, 2, 3):
        stub.plan("Con%d" % i, [(200, SUCCESS_BODY, 0.4)])
    submit_ok(dtmd, saga(gid, con_steps(stub, 3),
                         custom_data={"concurrent": True, "orders": {"2": [0, 1]}}))
    q = dtmd.wait_status(gid, S)
    assert [b["status"] for b in q["branches"]] == [P, S, P, S, P, S]
    c1, c2, c3 = (stub.calls("Con%d" % i)[0] for i in (1, 2, 3))
    assert max(c1.start, c2.start) < min(c1.end, c2.end), stub.summary()  # 1 and 2 overlap
    assert c3.start >= max(c1.end, c2.end), stub.summary()  # 3 waits for both


def test_concurrent_rollback_order(dtmd, stub, gid):
    """dtm ConRollbackOrder: orders {1:[0]}, TransOut FAILURE -> failed [S,F,P,P]."""
    stub.plan("TransOut", [FAIL_409])
    submit_ok(dtmd, default_saga(stub, gid, custom_data='{"concurrent":true,"orders":{"1":[0]}}'))
    q = dtmd.wait_status(gid, F)
    assert [b["status"] for b in q["branches"]] == [S, F, P, P]
    assert stub.count("TransIn") == 0 and stub.count("TransInRevert") == 0
    assert stub.count("TransOutRevert") == 1
    assert "Insufficient balance" in (q["transaction"].get("rollback_reason") or "")


def test_concurrent_rollback_order2(dtmd, stub, gid):
    """dtm ConRollbackOrder2: orders {1:[0]}, TransIn FAILURE -> failed [S,S,S,F]."""
    stub.plan("TransIn", [FAIL_409])
    stub.plan("TransInRevert", [(200, SUCCESS_BODY, 0.3)])
    submit_ok(dtmd, default_saga(stub, gid, custom_data='{"concurrent":true,"orders":{"1":[0]}}'))
    q = dtmd.wait_status(gid, F)
    assert [b["status"] for b in q["branches"]] == [S, S, S, F]
    assert names(stub.calls()) == ["TransOut", "TransIn", "TransInRevert", "TransOutRevert"]
    calls = stub.calls()
    assert calls[3].start >= calls[2].end


def test_concurrent_rollback_with_ongoing_compensation(dtmd, stub, gid):
    """dtm ConRollbackNormal: concurrent, TransOut FAILURE, TransOutRevert ONGOING once."""
    stub.plan("TransOut", [FAIL_409])
    stub.plan("TransOutRevert", [ONGOING])
    submit_ok(dtmd, default_saga(stub, gid, custom_data={"concurrent": True}))
    q = dtmd.wait_status(gid, F)
    assert [b["status"] for b in q["branches"]] == [S, F, S, S]
    assert stub.count("TransOutRevert") == 2
    assert stub.count("TransInRevert") == 1
    assert stub.count("TransIn") == 1


def test_concurrent_committed_ongoing(dtmd, stub, gid):
    """dtm ConCommittedOngoing: concurrent, TransOut ONGOING once -> later succeed."""
    stub.plan("TransOut", [ONGOING])
    submit_ok(dtmd, default_saga(stub, gid, custom_data={"concurrent": True}))
    q = dtmd.wait_status(gid, S)
    assert [b["status"] for b in q["branches"]] == [P, S, P, S]
    assert stub.count("TransOut") == 2 and stub.count("TransIn") == 1


# --------------------------------------------------------------------------
# wait_result

def test_wait_result_success(dtmd, stub, gid):
    st, resp = dtmd.submit(default_saga(stub, gid, wait_result=True))
    assert (st, resp) == (200, {"dtm_result": "SUCCESS"})
    q = dtmd.query(gid)  # already done when submit answered
    assert q["transaction"]["status"] == S
    assert [b["status"] for b in q["branches"]] == [P, S, P, S]


def test_wait_result_failure(dtmd, stub, gid):
    stub.plan("TransIn", [FAIL_409])
    st, resp = dtmd.submit(default_saga(stub, gid, wait_result=True))
    assert_409(st, resp)
    assert "Insufficient balance" in resp["message"], resp
    q = dtmd.query(gid)
    assert q["transaction"]["status"] == F
    reason = q["transaction"]["rollback_reason"]
    # "<rollback_reason> FAILURE", the suffix not doubled
    assert resp["message"] in (reason, reason + " FAILURE"), (resp, reason)
    assert not resp["message"].endswith("FAILURE FAILURE"), resp
    assert [b["status"] for b in q["branches"]] == [S, S, S, F]


def test_wait_result_ongoing_is_409_then_succeeds(dtmd, stub, gid):
    stub.plan("TransOut", [ONGOING])
    st, resp = dtmd.submit(default_saga(stub, gid, wait_result=True))
    assert_409(st, resp)
    q = dtmd.query(gid)
    if stub.count("TransOut") == 1:
        assert q["transaction"]["status"] == "submitted", q
        assert [b["status"] for b in q["branches"]] == [P, P, P, P]
    q = dtmd.wait_status(gid, S)
    assert [b["status"] for b in q["branches"]] == [P, S, P, S]


# --------------------------------------------------------------------------
# idempotency

def test_duplicate_submit(dtmd, stub, gid):
    stub.set_default("TransOut", *ONGOING)
    body = default_saga(stub, gid)
    submit_ok(dtmd, body)
    stub.wait_calls("TransOut", 1)
    submit_ok(dtmd, body)  # submitted -> idempotent re-drive
    stub.clear_default("TransOut")
    q = dtmd.wait_status(gid, S)
    assert [b["status"] for b in q["branches"]] == [P, S, P, S]  # no duplicate records
    assert 1 <= stub.count("TransIn") <= 2, stub.summary()
    assert stub.count("TransOutRevert") == 0 and stub.count("TransInRevert") == 0
    st, resp = dtmd.submit(body)  # finished -> conflict
    assert_409(st, resp)
    q2 = dtmd.query(gid)
    assert q2["transaction"]["status"] == S
    assert len(q2["branches"]) == 4


def test_concurrent_duplicate_submits(dtmd, stub, gid):
    stub.set_default("TransOut", 200, SUCCESS_BODY, 0.5)
    body = default_saga(stub, gid)
    results = []

    def go():
        results.append(dtmd.submit(body))
    threads = [threading.Thread(target=go) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == 5
    assert all(r == (200, {"dtm_result": "SUCCESS"}) for r in results), results
    q = dtmd.wait_status(gid, S)
    assert [b["status"] for b in q["branches"]] == [P, S, P, S]


# --------------------------------------------------------------------------
# payload variants

def test_empty_url_branches(dtmd, stub, gid):
    """dtm EmptyUrl: step1 compensate "", step2 both "" -> succeed [P,S,P,S]."""
    submit_ok(dtmd, saga(gid, [(stub.url("TransOut"), ""), ("", "")]))
    q = dtmd.wait_status(gid, S)
    assert [b["status"] for b in q["branches"]] == [P, S, P, S]
    assert names(stub.calls()) == ["TransOut"]


@pytest.mark.parametrize("wait", [False, True], ids=["no-wait", "wait_result"])
def test_empty_action_urls_settle_in_one_write(dtmd, stub, redis_server, gid, wait):
    """Every action URL empty (dtm's benchmark shape): the first pass would succeed at
    once without a call, so the submit stores the saga finished in its one script -
    no second write, never due, finished TTL - and answers 200 either way."""
    body = saga(gid, [("", stub.url("TransOutRevert")), ("", "")], wait_result=wait)
    with redis_server.monitor() as seen:
        submit_ok(dtmd, body)
        q = dtmd.query(gid)  # at once: no pass has to run first
    assert q["transaction"]["status"] == S, q
    assert q["transaction"].get("finish_time"), q
    assert [b["status"] for b in q["branches"]] == [P, S, P, S]
    assert all(b.get("finish_time") for b in q["branches"][1::2]), q["branches"]
    assert scripts_run(seen, gid) == ["save_new"]
    assert not [m for m in redis_server.mentions(gid) if m.startswith("zset") and "due" in m], \
        redis_server.mentions(gid)
    for k in redis_server.keys_containing(gid):  # finished: FinishedDataExpire (1 day)
        assert 0 < redis_server.cmd("TTL", k) <= 86400, (k, redis_server.cmd("TTL", k))
    time.sleep(0.3)
    assert stub.calls() == [], stub.summary()
    # the same gid again: it is finished, so the submit is refused and nothing changes
    st, resp = dtmd.submit(body)
    assert_409(st, resp)
    assert dtmd.status(gid) == S


def test_one_real_action_url_is_called_not_settled(dtmd, stub, redis_server, gid):
    """The settle-at-submit shortcut needs every action empty: one real URL and the
    saga is stored submitted and driven as usual: saved, then the call's result with
    the empty step's and succeed in one write (lease_move, the hold for the call, may
    come between them)."""
    with redis_server.monitor() as seen:
        submit_ok(dtmd, saga(gid, [("", ""), (stub.url("TransIn"), "")]))
        dtmd.wait_status(gid, S)
    writes = [s for s in scripts_run(seen, gid) if s != "lease_move"]
    assert writes == ["save_new", "cas_update"], scripts_run(seen, gid)
    assert names(stub.calls()) == ["TransIn"]
    assert [b["status"] for b in dtmd.query(gid)["branches"]] == [P, S, P, S]


def test_legacy_steps_data(dtmd, stub, gid):
    """dtm Compatible: payloads given as steps[].data, no payloads field."""
    body = {"gid": gid, "trans_type": "saga", "steps": [
        {"action": stub.url("TransOut"), "compensate": stub.url("TransOutRevert"),
         "data": '{"amount":30}'},
        {"action": stub.url("TransIn"), "compensate": stub.url("TransInRevert"),
         "data": '{"amount":31}'}]}
    submit_ok(dtmd, body)
    q = dtmd.wait_status(gid, S)
    assert [b["status"] for b in q["branches"]] == [P, S, P, S]
    assert stub.calls("TransOut")[0].body == b'{"amount":30}'
    assert stub.calls("TransIn")[0].body == b'{"amount":31}'
    assert [b.get("bin_data") for b in q["branches"]] == \
        [b64('{"amount":30}')] * 2 + [b64('{"amount":31}')] * 2


@pytest.mark.parametrize("sdk", ["go", "python"])
def test_sdk_shaped_bodies(dtmd, stub, gid, sdk):
    steps = [{"action": stub.url("TransOut"), "compensate": stub.url("TransOutRevert")}]
    if sdk == "go":
        body = {"gid": gid, "trans_type": "saga", "concurrent": False, "steps": steps,
                "payloads": ['{"amount":30}'], "protocol": ""}
    else:  # Python SDK: every field, nulls included, passthrough_headers (ignored)
        body = {"gid": gid, "trans_type": "saga", "steps": steps, "payloads": ['{"amount":30}'],
                "custom_data": None, "wait_result": None, "timeout_to_fail": None,
                "retry_interval": None, "passthrough_headers": [], "branch_headers": None,
                "request_timeout": 8, "query_prepared": None, "protocol": None,
                "rollback_reason": None, "retry_limit": None, "bin_payloads": None}
    submit_ok(dtmd, body)
    q = dtmd.wait_status(gid, S)
    assert [b["status"] for b in q["branches"]] == [P, S]
    assert stub.calls("TransOut")[0].body == b'{"amount":30}'


def test_get_when_payload_empty(dtmd, stub, gid):
    """Method is POST if the payload is non-empty, else GET (docs/protocol.md#calling-a-branch)."""
    submit_ok(dtmd, saga(gid, [(stub.url("TransOut"), "")], payloads=[""]))
    dtmd.wait_status(gid, S)
    c = stub.calls("TransOut")[0]
    assert c.method == "GET" and c.body == b""
    assert c.headers.get("content-type", "").startswith("application/json")


def test_url_with_existing_query_string(dtmd, stub, gid):
    submit_ok(dtmd, saga(gid, [(stub.url("TransOut") + "?a=1", "")]))
    dtmd.wait_status(gid, S)
    c = stub.calls("TransOut")[0]
    assert c.raw_query == "a=1&branch_id=01&gid=%s&op=action&trans_type=saga" % gid


# --------------------------------------------------------------------------
# query / all / misc endpoints

def assert_time(v):
    assert isinstance(v, str) and RFC3339.match(v), "not RFC 3339: %r" % (v,)
    import datetime
    t = parse_time(v)
    now = datetime.datetime.now(datetime.timezone.utc)
    assert abs((now - t).total_seconds()) < 600, "time %s is not close to now (%s)" % (v, now)
    return t


def test_query_shape(dtmd, stub, gid):
    payloads = ['{"amount":30}', '{"amount":31}']
    body = default_saga(stub, gid, payloads=payloads, retry_interval=7,
                        custom_data='{"concurrent":false}')
    submit_ok(dtmd, body)
    q = dtmd.wait_status(gid, S)
    assert set(q) == {"transaction", "branches"}
    t = q["transaction"]
    assert t["gid"] == gid
    assert t["trans_type"] == "saga"
    assert t["status"] == "succeed"
    assert t["steps"] == body["steps"]
    assert t["payloads"] == payloads
    assert t["custom_data"] == '{"concurrent":false}'
    assert t.get("retry_interval") == 7
    assert isinstance(t.get("options"), str) and isinstance(json.loads(t["options"]), dict), t
    ct = assert_time(t["create_time"])
    ut = assert_time(t["update_time"])
    assert ut >= ct
    assert_time(t["next_cron_time"])
    assert assert_time(t["finish_time"]) >= ct
    assert not t.get("rollback_reason")

    br = q["branches"]
    assert len(br) == 4
    assert [b["url"] for b in br] == [stub.url("TransOutRevert"), stub.url("TransOut"),
                                      stub.url("TransInRevert"), stub.url("TransIn")]
    assert [b["branch_id"] for b in br] == ["01", "01", "02", "02"]
    assert [b["op"] for b in br] == ["compensate", "action", "compensate", "action"]
    assert [b["status"] for b in br] == [P, S, P, S]
    assert [b["bin_data"] for b in br] == [b64(payloads[0])] * 2 + [b64(payloads[1])] * 2
    for b in br:
        assert b["gid"] == gid
        assert_time(b["create_time"])
    for b in (br[1], br[3]):
        assert_time(b["finish_time"])


def test_query_unknown_gid(dtmd):
    st, body = dtmd.api("GET", "/query?gid=" + new_gid("nope"))
    assert (st, body) == (200, {"transaction": None, "branches": []})


@pytest.mark.parametrize("qs", ["", "?gid="])
def test_query_without_gid(dtmd, qs):
    st, body = dtmd.api("GET", "/query" + qs)
    assert st in (400, 500), (st, body)
    assert isinstance(body, dict) and isinstance(body.get("message"), str) and body["message"]


def walk_all(dtmd, max_pages=10000, **params):
    pages, pos = [], ""
    for _ in range(max_pages):
        p = dict(params)
        if pos:
            p["position"] = pos
        st, body = dtmd.api("GET", "/all?" + urllib.parse.urlencode(p))
        assert st == 200, (st, body)
        assert set(body) >= {"transactions", "next_position"}, body
        assert isinstance(body["next_position"], str), body
        pages.append(body)
        pos = body["next_position"]
        if pos == "":
            return pages
    raise AssertionError("/all did not finish within %d pages" % max_pages)


def gids_of(pages):
    return [t["gid"] for p in pages for t in (p["transactions"] or [])]


@pytest.fixture
def four_trans(dtmd, stub, request):
    """3 succeeded sagas (empty URLs) + 1 failed saga."""
    ok = [new_gid("all-ok%d" % i) for i in range(3)]
    bad = new_gid("all-bad")
    for g in ok:
        submit_ok(dtmd, saga(g, [("", "")]))
    stub.plan("Fail", [FAIL_409])
    submit_ok(dtmd, saga(bad, [(stub.url("Fail"), "")]))
    for g in ok:
        dtmd.wait_status(g, S)
    dtmd.wait_status(bad, F)
    return ok, bad


def test_all_paging(dtmd, four_trans):
    ok, bad = four_trans
    pages = walk_all(dtmd, limit=1)
    positions = [p["next_position"] for p in pages[:-1]]
    assert len(pages) >= 2 and pages[0]["next_position"] != "", pages
    assert all(positions) and len(set(positions)) == len(positions), positions
    got = gids_of(pages)
    assert sorted(got) == sorted(ok + [bad]), got  # each exactly once
    for p in pages:
        for t in p["transactions"] or []:
            assert t["trans_type"] == "saga" and t["status"] in (S, F)
            assert_time(t["create_time"])


def test_all_big_limit_single_page(dtmd, four_trans):
    ok, bad = four_trans
    st, body = dtmd.api("GET", "/all?limit=1000")
    assert st == 200
    assert body["next_position"] == ""
    assert sorted(gids_of([body])) == sorted(ok + [bad])


def test_all_filters(dtmd, four_trans):
    ok, bad = four_trans
    assert gids_of(walk_all(dtmd, status="failed")) == [bad]
    assert sorted(gids_of(walk_all(dtmd, status="succeed"))) == sorted(ok)
    assert sorted(gids_of(walk_all(dtmd, transType="saga"))) == sorted(ok + [bad])
    assert gids_of(walk_all(dtmd, transType="msg")) == []
    assert gids_of(walk_all(dtmd, status="failed", transType="saga", limit=1)) == [bad]


def test_all_by_gid(dtmd, four_trans):
    ok, bad = four_trans
    st, body = dtmd.api("GET", "/all?gid=" + bad)
    assert st == 200
    assert [t["gid"] for t in body["transactions"]] == [bad]


def test_all_unknown_gid_is_null(dtmd):
    st, body = dtmd.api("GET", "/all?gid=" + new_gid("nope"))
    assert st == 200
    assert body.get("transactions", "missing") is None, body


def test_version(dtmd):
    st, body = dtmd.api("GET", "/version")
    assert st == 200 and isinstance(body, dict)
    assert isinstance(body.get("version"), str) and body["version"]


def test_new_gid(dtmd):
    seen = set()
    for _ in range(3):
        st, body = dtmd.api("GET", "/newGid")
        assert st == 200 and body.get("dtm_result") == "SUCCESS", body
        g = body.get("gid")
        assert isinstance(g, str) and len(g) == 22 and g.isalnum(), body
        seen.add(g)
    assert len(seen) == 3


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_ping(dtmd, method):
    assert dtmd.api(method, "/api/ping") == (200, {"msg": "pong"})


@pytest.mark.parametrize("prefix", ["/api/dtms", "/api"])
def test_aliases(dtmd, stub, gid, prefix):
    st, resp = dtmd.api("POST", prefix + "/submit", body=default_saga(stub, gid))
    assert (st, resp) == (200, {"dtm_result": "SUCCESS"})
    dtmd.wait_status(gid, S)
    st, body = dtmd.api("GET", prefix + "/query?gid=" + gid)
    assert st == 200 and body["transaction"]["status"] == S
    assert body == dtmd.query(gid)
    st, body = dtmd.api("GET", prefix + "/version")
    assert st == 200 and body.get("version")
    st, body = dtmd.api("GET", prefix + "/newGid")
    assert st == 200 and len(body.get("gid", "")) == 22


# --------------------------------------------------------------------------
# robustness

@pytest.mark.parametrize("mode", ["ongoing", "hang"])
def test_dtmd_sigkill_mid_saga(dtmd, stub, gid, mode):
    if mode == "ongoing":
        stub.set_default("TransIn", *ONGOING)
    else:  # longer than REQUEST_TIMEOUT: the call is in flight when dtmd dies
        stub.set_default("TransIn", 200, SUCCESS_BODY, 30)
    submit_ok(dtmd, default_saga(stub, gid))
    stub.wait_calls("TransIn", 1)
    dtmd.kill(signal.SIGKILL)
    assert not dtmd.running
    stub.clear_default("TransIn")
    dtmd.start()
    q = dtmd.wait_status(gid, S, timeout=20)
    assert [b["status"] for b in q["branches"]] == [P, S, P, S]
    # TransOut's success was persisted before step 2 ran: never called again
    assert stub.count("TransOut") == 1, stub.summary()
    assert stub.count("TransOutRevert") == 0 and stub.count("TransInRevert") == 0


def test_dtmd_sigkill_right_after_submit(dtmd, stub, gid):
    stub.set_default("TransOut", 200, SUCCESS_BODY, 30)
    submit_ok(dtmd, default_saga(stub, gid))
    dtmd.kill(signal.SIGKILL)
    stub.clear_default("TransOut")
    dtmd.start()
    q = dtmd.wait_status(gid, S, timeout=20)
    assert [b["status"] for b in q["branches"]] == [P, S, P, S]
    assert stub.count("TransIn") == 1


def test_dtmd_sigterm_exits(dtmd):
    rc = dtmd.stop(timeout=10)
    assert rc == 0, "dtmd exit status after SIGTERM: %s" % rc


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["term", "kill"])
def test_redis_restart_mid_saga(dtmd, stub, redis_server, gid, sig):
    stub.set_default("TransIn", *ONGOING)
    submit_ok(dtmd, default_saga(stub, gid))
    stub.wait_calls("TransIn", 1)
    redis_server.stop(sig)
    assert not redis_server.running

    gid2 = new_gid("while-down")
    body2 = saga(gid2, [(stub.url("Other"), "")])
    st, resp = dtmd.submit(body2)
    assert st == 503, (st, resp)
    assert isinstance(resp, dict) and isinstance(resp.get("message"), str) and resp["message"]
    st, resp = dtmd.api("GET", "/query?gid=" + gid)
    assert st == 503 and isinstance(resp, dict) and resp.get("message"), (st, resp)
    time.sleep(0.5)  # let the retry scanner run into the outage
    assert dtmd.running

    redis_server.start()
    stub.clear_default("TransIn")
    q = dtmd.wait_status(gid, S, timeout=30)
    assert [b["status"] for b in q["branches"]] == [P, S, P, S]
    assert stub.count("TransOut") == 1

    wait_until(lambda: dtmd.submit(body2)[0] == 200, timeout=15, msg="submit after redis restart")
    dtmd.wait_status(gid2, S)
    assert stub.count("Other") == 1


def test_two_dtmd_share_one_redis(start_dtmd, stub, gid):
    """Two instances on one Redis: leases keep them from driving one saga twice at a time;
    a saga submitted to one is finished even if that one dies."""
    d1 = start_dtmd()
    d2 = start_dtmd()
    stub.set_default("TransIn", *ONGOING)
    submit_ok(d1, default_saga(stub, gid))
    stub.wait_calls("TransIn", 1)
    d1.kill(signal.SIGKILL)
    stub.clear_default("TransIn")
    q = d2.wait_status(gid, S, timeout=20)
    assert [b["status"] for b in q["branches"]] == [P, S, P, S]
    assert stub.count("TransOut") == 1


# --------------------------------------------------------------------------
# more options and decisions (docs/protocol.md#where-dtmd-differs-from-dtm)

def test_retry_limit_counts_across_restarts(dtmd, stub, gid):
    """12.4: retry_count is persisted; retry_limit counts across passes and restarts."""
    stub.set_default("TransIn", 500, "slow error", 0.4)
    submit_ok(dtmd, default_saga(stub, gid, retry_limit=2))
    stub.wait_calls("TransIn", 2)  # the 2nd attempt is in flight
    dtmd.kill(signal.SIGKILL)
    dtmd.start()
    q = dtmd.wait_status(gid, F, timeout=20)
    assert q["transaction"]["rollback_reason"] == \
        "RetryCount is greater than RetryLimit, RetryLimit: 2"
    # 3 attempts (1 + 2 retries); at most one more for the attempt cut short by the kill.
    # Without persistence the restart would allow 3 fresh attempts (>= 5 in all).
    assert 3 <= stub.count("TransIn") <= 4, stub.summary()


def test_retry_max_interval_caps_base_interval(start_dtmd, stub, gid):
    """12.3: a RetryMaxInterval below RetryInterval wins, also for the base interval."""
    d = start_dtmd(RETRY_INTERVAL=30, RETRY_MAX_INTERVAL=0.3)
    stub.plan("TransOut", [ONGOING, ERROR])
    submit_ok(d, default_saga(stub, gid))
    # with a 30 s interval this would take a minute; the 0.3 s cap makes it quick
    q = d.wait_status(gid, S, timeout=15)
    assert [b["status"] for b in q["branches"]] == [P, S, P, S]
    assert stub.count("TransOut") == 3


def test_resubmit_does_not_overwrite_stored_fields(dtmd, stub, gid):
    """12.2: a submit that hits an existing gid never overwrites stored fields."""
    stub.set_default("TransOut", *ONGOING)
    first = default_saga(stub, gid, payloads=['{"amount":1}', '{"amount":2}'],
                         branch_headers={"test_header": "first"}, custom_data='{"x":1}')
    submit_ok(dtmd, first)
    stub.wait_calls("TransOut", 1)
    second = default_saga(stub, gid, payloads=['{"amount":9}', '{"amount":9}'],
                          branch_headers={"test_header": "second"}, custom_data='{"x":2}')
    submit_ok(dtmd, second)
    stub.clear_default("TransOut")
    q = dtmd.wait_status(gid, S)
    t = q["transaction"]
    assert t["payloads"] == first["payloads"], t
    assert t.get("custom_data") == '{"x":1}', t
    assert t.get("branch_headers") == {"test_header": "first"}, t
    assert [b["bin_data"] for b in q["branches"]] == \
        [b64('{"amount":1}')] * 2 + [b64('{"amount":2}')] * 2
    for c in stub.calls():
        assert c.headers.get("test_header") == "first", (c, c.headers)
    assert stub.calls("TransIn")[0].body == b'{"amount":2}'


def test_gid_is_percent_encoded_in_branch_calls(dtmd, stub):
    gid = new_gid("enc") + " a+b&c=d/e%f?g#h\u00e9"
    submit_ok(dtmd, saga(gid, [(stub.url("TransOut"), "")]))
    q = dtmd.wait_status(gid, S)
    assert q["transaction"]["gid"] == gid
    c = stub.calls("TransOut")[0]
    assert c.query["gid"] == gid, c.raw_query
    assert set(c.query) == {"branch_id", "gid", "op", "trans_type"}, c.raw_query


def test_gid_special_chars_stripped(dtmd, stub):
    """1.3: newline, carriage return and ';' are stripped from gids."""
    base = new_gid("strip")
    submit_ok(dtmd, saga(base[:5] + ";\n" + base[5:] + "\r", [(stub.url("TransOut"), "")]))
    dtmd.wait_status(base, S)
    assert stub.calls("TransOut")[0].query["gid"] == base


def test_redis_prefix_and_ttls(start_dtmd, stub, redis_server, gid):
    d = start_dtmd(STORE_REDIS_PREFIX="e2eprefix", STORE_DATA_EXPIRE=5000,
                   STORE_FINISHED_DATA_EXPIRE=100)
    stub.set_default("TransOut", *ONGOING)
    submit_ok(d, default_saga(stub, gid))
    stub.wait_calls("TransOut", 1)
    keys = redis_server.keys()
    assert keys and all(k.startswith("e2eprefix") for k in keys), keys
    tkeys = redis_server.keys_containing(gid)
    assert tkeys, keys
    for k in tkeys:  # unfinished: DataExpire
        assert 100 < redis_server.cmd("TTL", k) <= 5000, (k, redis_server.cmd("TTL", k))
    stub.clear_default("TransOut")
    d.wait_status(gid, S)
    for k in redis_server.keys_containing(gid):  # finished: FinishedDataExpire
        assert 0 < redis_server.cmd("TTL", k) <= 100, (k, redis_server.cmd("TTL", k))
    assert all(k.startswith("e2eprefix") for k in redis_server.keys())
    # the finished transaction left the due index
    assert not [m for m in redis_server.mentions(gid) if m.startswith("zset") and "due" in m], \
        redis_server.mentions(gid)


# --------------------------------------------------------------------------
# HTTP handling and load

def test_wait_result_client_goes_away(dtmd, stub, gid):
    """The client of a wait_result submit disconnects; dtmd keeps going."""
    stub.plan("TransOut", [(200, SUCCESS_BODY, 0.8)])
    try:
        http_request("POST", dtmd.base + "/submit",
                     body=default_saga(stub, gid, wait_result=True), timeout=0.2)
    except OSError:
        pass  # timed out: we hung up while dtmd was waiting
    q = dtmd.wait_status(gid, S)
    assert [b["status"] for b in q["branches"]] == [P, S, P, S]
    assert dtmd.running
    assert dtmd.api("GET", "/api/ping") == (200, {"msg": "pong"})


def test_keep_alive_connection(dtmd, stub, gid):
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", dtmd.port, timeout=10)
    try:
        for _ in range(3):
            conn.request("GET", "/api/ping")
            r = conn.getresponse()
            assert r.status == 200 and json.loads(r.read()) == {"msg": "pong"}
        conn.request("POST", "/api/dtmsvr/submit", body=json.dumps(default_saga(stub, gid)),
                     headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        assert r.status == 200 and json.loads(r.read()) == {"dtm_result": "SUCCESS"}
        conn.request("GET", "/api/dtmsvr/query?gid=" + gid)
        r = conn.getresponse()
        assert r.status == 200 and json.loads(r.read())["transaction"]["gid"] == gid
    finally:
        conn.close()


def test_payload_sent_verbatim(dtmd, stub, gid):
    big = '{"blob":"%s"}' % ("z" * 200000)
    odd = '{"s":"\u00e9\u4e2d \\"quoted\\" \\\\ \\n\\t","n":[1,2.50,null]}  '
    submit_ok(dtmd, saga(gid, [(stub.url("Big"), ""), (stub.url("Odd"), "")],
                         payloads=[big, odd]))
    q = dtmd.wait_status(gid, S)
    assert stub.calls("Big")[0].body == big.encode()
    assert stub.calls("Odd")[0].body == odd.encode("utf-8")
    assert q["branches"][3]["bin_data"] == b64(odd.encode("utf-8"))


def test_many_sagas_in_parallel(dtmd, stub):
    gids = [new_gid("par%d" % i) for i in range(40)]
    for g in gids[::7]:
        stub.plan("Slow", [(200, SUCCESS_BODY, 0.2)])
    results = {}

    def go(g):
        results[g] = dtmd.submit(saga(g, [(stub.url("Par"), stub.url("ParRevert")),
                                          (stub.url("Slow"), "")]))
    threads = [threading.Thread(target=go, args=(g,)) for g in gids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert all(results[g] == (200, {"dtm_result": "SUCCESS"}) for g in gids), results
    for g in gids:
        q = dtmd.wait_status(g, S, timeout=20)
        assert [b["status"] for b in q["branches"]] == [P, S, P, S]
    per_gid = {}
    for c in stub.calls():
        per_gid.setdefault((c.query["gid"], c.name), 0)
        per_gid[(c.query["gid"], c.name)] += 1
    for g in gids:  # every branch called exactly once
        assert per_gid.get((g, "Par")) == 1 and per_gid.get((g, "Slow")) == 1, g
    assert stub.count("ParRevert") == 0


# call order of a 3-step saga whose 3rd action fails
KILL_ORDER = ["A1", "A2", "A3", "C3", "C2", "C1"]


@pytest.mark.parametrize("k", range(len(KILL_ORDER)), ids=KILL_ORDER)
def test_sigkill_during_each_call(dtmd, stub, gid, k):
    """SIGKILL while call k is in flight, restart: the saga ends exactly as without
    the crash, and only the interrupted call is repeated."""
    fail = (409, '{"error":"A3 says no"}')
    stub.set_default("A3", *fail)
    name = KILL_ORDER[k]
    reply = fail if name == "A3" else (200, SUCCESS_BODY)
    stub.plan(name, [(reply[0], reply[1], 3.0)])  # hold the call while we kill dtmd
    submit_ok(dtmd, saga(gid, [(stub.url("A%d" % i), stub.url("C%d" % i)) for i in (1, 2, 3)]))
    stub.wait_calls(name, 1)
    dtmd.kill(signal.SIGKILL)
    dtmd.start()
    q = dtmd.wait_status(gid, F, timeout=20)
    assert [b["status"] for b in q["branches"]] == [S, S, S, S, S, F]
    assert "A3 says no" in q["transaction"]["rollback_reason"]
    counts = {n: stub.count(n) for n in KILL_ORDER}
    assert counts == {n: (2 if n == name else 1) for n in KILL_ORDER}, stub.summary()
    # first occurrence order is unchanged; the repeat comes right after the interrupted call
    seen = []
    for c in stub.calls():
        if c.name not in seen:
            seen.append(c.name)
    assert seen == KILL_ORDER, stub.summary()


@pytest.mark.parametrize("k", range(len(KILL_ORDER)), ids=KILL_ORDER)
def test_redis_outage_during_each_call(dtmd, stub, redis_server, gid, k):
    """Redis dies while call k is in flight (its result cannot be stored), comes back:
    the saga ends exactly as without the outage; only call k may be repeated."""
    fail = (409, '{"error":"A3 says no"}')
    stub.set_default("A3", *fail)
    name = KILL_ORDER[k]
    reply = fail if name == "A3" else (200, SUCCESS_BODY)
    stub.plan(name, [(reply[0], reply[1], 0.6)])
    submit_ok(dtmd, saga(gid, [(stub.url("A%d" % i), stub.url("C%d" % i)) for i in (1, 2, 3)]))
    first = stub.wait_calls(name, 1)[0]
    redis_server.stop(signal.SIGKILL)
    wait_until(lambda: first.end is not None, timeout=5, msg="held call to finish")
    time.sleep(0.5)  # dtmd got the answer and failed to store it
    assert dtmd.running
    redis_server.start()
    q = dtmd.wait_status(gid, F, timeout=30)
    assert [b["status"] for b in q["branches"]] == [S, S, S, S, S, F]
    counts = {n: stub.count(n) for n in KILL_ORDER}
    assert counts[name] in (1, 2), stub.summary()
    assert {n: c for n, c in counts.items() if n != name} == \
        {n: 1 for n in KILL_ORDER if n != name}, stub.summary()
    seen = []
    for c in stub.calls():
        if c.name not in seen:
            seen.append(c.name)
    assert seen == KILL_ORDER, stub.summary()


def test_ongoing_does_not_back_off(dtmd, stub, gid):
    """5.1: ONGOING keeps the interval (no doubling), unlike errors."""
    stub.plan("TransOut", [ONGOING] * 4)
    submit_ok(dtmd, saga(gid, [(stub.url("TransOut"), "")]))
    dtmd.wait_status(gid, S, timeout=20)
    calls = stub.calls("TransOut")
    assert len(calls) == 5
    gaps = [b.start - a.start for a, b in zip(calls, calls[1:])]
    # back-off would give ~0.3, 0.6, 1.2, 2 (ratio > 6); a kept interval stays flat
    assert gaps[3] < 2.5 * gaps[0], gaps


def test_success_resets_the_interval(dtmd, stub, gid):
    """5.1: after back-off, a success >= 1.5 s after the last touch resets the interval to base."""
    stub.plan("TransOut", [ERROR, ERROR, ERROR])
    stub.plan("TransIn", [ONGOING])
    submit_ok(dtmd, default_saga(stub, gid))
    dtmd.wait_status(gid, S, timeout=30)
    out, inn = stub.calls("TransOut"), stub.calls("TransIn")
    assert len(out) == 4 and len(inn) == 2, stub.summary()
    last_backoff = out[3].start - out[2].start   # ~2 s (capped)
    ongoing_gap = inn[1].start - inn[0].start     # ~0.3 s if reset, ~2 s if not
    assert ongoing_gap < last_backoff / 2, (ongoing_gap, last_backoff)


def test_step_without_compensate_key(dtmd, stub, gid):
    body = {"gid": gid, "trans_type": "saga", "steps": [{"action": stub.url("TransOut")}],
            "payloads": ['{"amount":30}']}
    submit_ok(dtmd, body)
    q = dtmd.wait_status(gid, S)
    assert [b["status"] for b in q["branches"]] == [P, S]


def test_payload_with_nul_byte(dtmd, stub, gid):
    """Payload bytes are sent verbatim, even a NUL (JSON \\u0000) inside the payload string."""
    payload = '{"a":"x\x00y"}'
    submit_ok(dtmd, saga(gid, [(stub.url("TransOut"), "")], payloads=[payload]))
    q = dtmd.wait_status(gid, S)
    assert stub.calls("TransOut")[0].body == payload.encode()
    assert q["branches"][1]["bin_data"] == b64(payload)


def test_all_paging_many(dtmd, stub):
    gids = [new_gid("many%02d" % i) for i in range(25)]
    for g in gids:
        submit_ok(dtmd, saga(g, [("", "")]))
    for g in gids:
        dtmd.wait_status(g, S)
    for params in ({"limit": 3}, {"limit": 2, "status": "succeed"}, {"limit": 7, "transType": "saga"}):
        pages = walk_all(dtmd, **params)
        got = gids_of(pages)
        assert sorted(got) == sorted(gids), (params, len(got), len(set(got)))
        positions = [p["next_position"] for p in pages[:-1]]
        assert len(set(positions)) == len(positions), (params, positions)


def test_two_instances_never_drive_one_saga_at_once(start_dtmd, stub, gid):
    """5.4/issue: the scanner's lease keeps two dtmd sharing one Redis from calling a
    transaction's branches at the same time."""
    d1 = start_dtmd()
    start_dtmd()
    stub.plan("TransOut", [(425, "", 0.1)] * 8)
    submit_ok(d1, saga(gid, [(stub.url("TransOut"), "")]))
    d1.wait_status(gid, S, timeout=30)
    calls = stub.calls("TransOut")
    assert len(calls) == 9, stub.summary()
    for a, b in zip(calls, calls[1:]):
        assert b.start >= a.end, "overlapping calls:\n" + stub.summary()


def test_wait_result_submit_attaches_to_running_saga(dtmd, stub, gid):
    stub.plan("TransOut", [(200, SUCCESS_BODY, 0.8)])
    submit_ok(dtmd, default_saga(stub, gid))
    stub.wait_calls("TransOut", 1)
    st, resp = dtmd.submit(default_saga(stub, gid, wait_result=True))
    assert (st, resp) == (200, {"dtm_result": "SUCCESS"}), (st, resp)
    assert dtmd.status(gid) == S
    assert stub.count("TransIn") == 1
