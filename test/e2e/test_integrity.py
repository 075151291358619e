"""Transaction integrity: what a request may do to a stored transaction is one
table (src/transition.c), checked by the Lua script that makes the change.

Each test here is a case that once broke the promise "a transaction is never
finished without its branches and no branch is called after its transaction
ended": a request of one type finishing a transaction of another, a
registration into a transaction that has none, Limits.MaxBranches on every
path, forceStop leaving calls queued or running, and a failed store write
answered as SUCCESS.
"""

import time

import pytest

from dtmtest import ONGOING, REPO, SUCCESS_BODY, saga, script_text, wait_until

from dtmtest import assert_409_resp as assert_409
from dtmtest import ok


def assert_400(resp, *needles):
    st, body = resp
    assert st == 400, "expected 400, got %s %r" % (st, body)
    assert isinstance(body, dict) and "dtm_result" not in body, body
    for n in needles:
        assert n in body.get("message", ""), (n, body)
    return body


def post(dtmd, path, **body):
    return dtmd.api("POST", path, body=body)


def snapshot(redis_server, dtmd, gid):
    """What is stored of gid: the hash (less nothing) - a refused request must not change it."""
    q = dtmd.query(gid)
    return q["transaction"]["status"], [(b["op"], b["status"]) for b in q["branches"]], \
        q["transaction"].get("update_time")


def prepared_tcc(dtmd, stub, gid):
    ok(post(dtmd, "/prepare", gid=gid, trans_type="tcc"))
    ok(post(dtmd, "/registerBranch", gid=gid, trans_type="tcc", branch_id="01", data="{}",
            confirm=stub.url("Confirm"), cancel=stub.url("Cancel")))


# --------------------------------------------------------------------------
# 1. a workflow submit finishes only a workflow

@pytest.mark.parametrize("outcome", ["succeed", "failed"])
@pytest.mark.parametrize("stored", ["tcc", "xa", "msg", "saga"])
def test_workflow_submit_of_another_type_is_400(dtmd, stub, redis_server, gid, stored, outcome):
    if stored == "tcc":
        prepared_tcc(dtmd, stub, gid)
    elif stored == "xa":
        ok(post(dtmd, "/prepare", gid=gid, trans_type="xa"))
        ok(post(dtmd, "/registerBranch", gid=gid, trans_type="xa", branch_id="01",
                url=stub.url("Xa")))
    else:
        ok(dtmd.api("POST", "/prepare", body=dict(
            saga(gid, [(stub.url("Act"), stub.url("Comp"))]), trans_type=stored,
            query_prepared=stub.url("QP"))))
    before = snapshot(redis_server, dtmd, gid)
    body = assert_400(post(dtmd, "/submit", gid=gid, trans_type="workflow",
                           req_extra={"status": outcome}), stored, "'prepared'")
    assert "workflow" in body["message"], body
    time.sleep(0.5)
    assert snapshot(redis_server, dtmd, gid) == before
    assert stub.count() == 0, stub.summary()


def test_workflow_submit_still_finishes_a_workflow(dtmd, stub, gid):
    st, body = post(dtmd, "/prepareWorkflow", gid=gid, trans_type="workflow")
    assert st == 200, body
    ok(post(dtmd, "/submit", gid=gid, trans_type="workflow", req_extra={"status": "succeed"}))
    assert dtmd.status(gid) == "succeed"
    assert_409(post(dtmd, "/submit", gid=gid, trans_type="workflow",
                    req_extra={"status": "failed"}), "'succeed'")
    assert dtmd.status(gid) == "succeed"


def test_submit_and_prepare_of_another_type_are_400(dtmd, stub, gid):
    prepared_tcc(dtmd, stub, gid)
    before = dtmd.query(gid)
    assert_400(dtmd.submit(saga(gid, [(stub.url("A"), stub.url("B"))])), "tcc")
    assert_400(post(dtmd, "/submit", gid=gid, trans_type="xa"), "tcc")
    assert_400(post(dtmd, "/prepare", gid=gid, trans_type="xa"), "tcc")
    st, body = post(dtmd, "/prepareWorkflow", gid=gid, trans_type="workflow")
    assert st == 400 and "tcc" in body["message"], (st, body)
    assert dtmd.query(gid) == before
    ok(post(dtmd, "/submit", gid=gid, trans_type="tcc"))
    dtmd.wait_status(gid, "succeed")
    assert [c.name for c in stub.calls()] == ["Confirm"]


# --------------------------------------------------------------------------
# 2. registerBranch: the stored type, and Limits.MaxBranches

@pytest.mark.parametrize("stored", ["saga", "msg"])
@pytest.mark.parametrize("style", ["tcc", "xa", "workflow"])
def test_register_into_saga_or_msg_is_400(dtmd, stub, gid, stored, style):
    body = dict(saga(gid, [(stub.url("Act"), stub.url("Comp"))]), trans_type=stored,
                query_prepared=stub.url("QP"))
    ok(dtmd.api("POST", "/prepare", body=body))
    before = dtmd.query(gid)
    reg = {"tcc": dict(confirm=stub.url("C"), cancel=stub.url("X")),
           "xa": dict(url=stub.url("Xa")),
           "workflow": dict(op="action", status="failed")}[style]
    assert_400(post(dtmd, "/registerBranch", gid=gid, trans_type=style, branch_id="09",
                    data="{}", **reg), stored)
    assert dtmd.query(gid) == before
    ok(dtmd.submit(body))
    dtmd.wait_status(gid, "succeed")
    names = [c.name for c in stub.calls()]
    assert names == ["Act"], stub.summary()  # no confirm, no compensation


def test_register_of_another_registering_type_is_400(dtmd, stub, gid):
    prepared_tcc(dtmd, stub, gid)
    before = dtmd.query(gid)
    assert_400(post(dtmd, "/registerBranch", gid=gid, trans_type="xa", branch_id="02",
                    url=stub.url("Xa")), "tcc")
    assert_400(post(dtmd, "/registerBranch", gid=gid, trans_type="workflow", branch_id="02",
                    op="action", status="failed"), "tcc")
    assert dtmd.query(gid) == before


@pytest.mark.parametrize("mode", ["tcc", "xa", "workflow"])
def test_register_max_branches_edge(start_dtmd, stub, gid, mode):
    """Limits.MaxBranches = 6: TCC/XA registrations add two branches each, a
    workflow's one; exactly 6 is accepted, one more is 400 and stores nothing."""
    dtmd = start_dtmd(LIMITS_MAX_BRANCHES=6)
    if mode == "workflow":
        assert post(dtmd, "/prepareWorkflow", gid=gid, trans_type="workflow")[0] == 200
    else:
        ok(post(dtmd, "/prepare", gid=gid, trans_type=mode))
    per = 1 if mode == "workflow" else 2

    def reg(i):
        extra = {"tcc": dict(confirm=stub.url("C"), cancel=stub.url("X")),
                 "xa": dict(url=stub.url("Xa")),
                 "workflow": dict(op="action", status="succeed")}[mode]
        return post(dtmd, "/registerBranch", gid=gid, trans_type=mode, branch_id="%02d" % i,
                    data="{}", **extra)
    for i in range(6 // per):
        ok(reg(i))
    assert len(dtmd.query(gid)["branches"]) == 6
    assert_400(reg(99), "Limits.MaxBranches is 6")
    assert len(dtmd.query(gid)["branches"]) == 6
    ok(reg(0))  # an identical repeat is still fine at the limit


@pytest.mark.parametrize("path", ["/submit", "/prepare"])
def test_saga_max_branches_edge(start_dtmd, stub, gid, path):
    """A saga step is two branches: 3 steps fit MaxBranches 6, 4 do not."""
    dtmd = start_dtmd(LIMITS_MAX_BRANCHES=6)
    steps = [(stub.url("A%d" % i), stub.url("C%d" % i)) for i in range(4)]
    assert_400(dtmd.api("POST", path, body=saga(gid, steps)), "Limits.MaxBranches is 6")
    assert dtmd.api("GET", "/query?gid=" + gid)[1]["transaction"] is None
    ok(dtmd.api("POST", path, body=saga(gid, steps[:3])))
    assert len(dtmd.query(gid)["branches"]) == 6


def test_topic_fan_out_max_branches_edge(start_dtmd, stub, gid):
    dtmd = start_dtmd(LIMITS_MAX_BRANCHES=3)
    for i in range(3):
        ok(post(dtmd, "/subscribe", topic="t3", url=stub.url("S%d" % i), remark=""))
    body = {"gid": gid, "trans_type": "msg", "payloads": ["{}", "{}"],
            "steps": [{"action": "topic://t3"}, {"action": stub.url("M")}]}
    assert_400(dtmd.submit(body), "Limits.MaxBranches is 3")
    ok(dtmd.submit(dict(body, steps=[{"action": "topic://t3"}], payloads=["{}"])))
    dtmd.wait_status(gid, "succeed")


@pytest.mark.no_valgrind("a pass over 2,000 branches runs tens of times slower under valgrind and blocks the loop past the 2 s liveness TTL, so the process gives the transaction up (425)")
def test_many_branches_at_the_default_limit_are_stored(dtmd, stub, gid):
    """1,000 saga steps = 2,000 branches, the default limit: prepare stores it
    (the scripts write in chunks; Lua unpack stops at about 8,000 values) and
    a submit with wait_result answers 200 only once it is stored succeed; 1,001
    steps are refused."""
    steps = [("", "")] * 999 + [(stub.url("Last"), stub.url("LastComp"))]
    body = saga(gid, steps, wait_result=True)
    ok(dtmd.api("POST", "/prepare", body=dict(body, wait_result=False)))
    assert len(dtmd.query(gid)["branches"]) == 2000
    ok(dtmd.submit(body))
    q = dtmd.query(gid)
    assert q["transaction"]["status"] == "succeed"
    assert stub.count("Last") == 1
    time.sleep(0.6)
    assert stub.count("Last") == 1, stub.summary()
    assert_400(dtmd.submit(saga(gid + "x", [("", "")] * 1001)), "2002 branches",
               "Limits.MaxBranches is 2000")


@pytest.mark.no_valgrind("a pass over 2,000 branches runs tens of times slower under valgrind and blocks the loop past the 2 s liveness TTL, so the process gives the transaction up (425)")
def test_wait_result_with_huge_arguments_is_success_only_when_stored(dtmd, stub, gid):
    """850 empty steps and one real one with wait_result (the case whose last
    write once failed in Lua while the client heard SUCCESS)."""
    steps = [("", "")] * 850 + [(stub.url("Real"), "")]
    ok(dtmd.submit(saga(gid, steps, wait_result=True)))
    assert dtmd.status(gid) == "succeed"
    time.sleep(0.8)
    assert stub.count("Real") == 1, stub.summary()


# --------------------------------------------------------------------------
# 3. forceStop ends queued and running calls

def test_force_stop_cancels_queued_and_running_calls(start_dtmd, stub, gid):
    """MaxInflightCalls 2, two sagas hang in their calls: a third saga's call
    waits in the queue. forceStop of the third answers 200 and its action is
    never called; forceStop of a running one frees its slot at once."""
    dtmd = start_dtmd(LIMITS_MAX_INFLIGHT_CALLS=2, REQUEST_TIMEOUT=30)
    stub.set_default("Hang", 200, SUCCESS_BODY, 20.0)
    hung = [gid + "-h1", gid + "-h2"]
    for g in hung:
        ok(dtmd.submit(saga(g, [(stub.url("Hang"), stub.url("HangComp"))])))
    stub.wait_calls("Hang", 2)
    ok(dtmd.submit(saga(gid, [(stub.url("Queued"), stub.url("QueuedComp"))])))
    time.sleep(0.3)
    assert stub.count("Queued") == 0
    ok(post(dtmd, "/forceStop", gid=gid))
    assert dtmd.status(gid) == "failed"
    # the running call of a hung saga is cancelled too: its slot is free for new work
    ok(post(dtmd, "/forceStop", gid=hung[0]))
    g4 = gid + "-after"
    ok(dtmd.submit(saga(g4, [(stub.url("After"), "")])))
    dtmd.wait_status(g4, "succeed", timeout=5)
    time.sleep(1.0)
    assert stub.count("Queued") == 0 and stub.count("QueuedComp") == 0, stub.summary()
    assert dtmd.status(gid) == "failed" and dtmd.status(hung[0]) == "failed"


def test_force_stop_during_wait_result_answers_failure(start_dtmd, stub, gid):
    dtmd = start_dtmd(REQUEST_TIMEOUT=30)
    stub.set_default("Slow", 200, SUCCESS_BODY, 3.0)
    import threading
    res = {}
    t = threading.Thread(target=lambda: res.update(
        r=dtmd.submit(saga(gid, [(stub.url("Slow"), stub.url("SlowComp"))], wait_result=True))))
    t.start()
    stub.wait_calls("Slow", 1)
    ok(post(dtmd, "/forceStop", gid=gid))
    t.join(10)
    st, body = res["r"]
    assert st == 409 and "force stopped" in body.get("message", ""), (st, body)
    assert dtmd.status(gid) == "failed"


def test_msg_abort_cancels_its_check_back(start_dtmd, stub, gid):
    """A prepared msg past its timeout is being checked back (query_prepared
    hangs) when the application aborts it: the check-back is cancelled and
    nothing is delivered."""
    dtmd = start_dtmd(TIMEOUT_TO_FAIL=1, REQUEST_TIMEOUT=30)
    stub.set_default("QP", 200, SUCCESS_BODY, 5.0)
    body = {"gid": gid, "trans_type": "msg", "steps": [{"action": stub.url("Deliver")}],
            "payloads": ["{}"], "query_prepared": stub.url("QP")}
    ok(dtmd.api("POST", "/prepare", body=body))
    stub.wait_calls("QP", 1, timeout=10)
    ok(post(dtmd, "/abort", gid=gid, trans_type="msg"))
    assert dtmd.status(gid) == "failed"
    time.sleep(5.5)
    assert stub.count("Deliver") == 0, stub.summary()
    assert dtmd.status(gid) == "failed"


# --------------------------------------------------------------------------
# the refusals carry the stored type and status, and change nothing

def test_refusals_name_stored_type_and_status(dtmd, stub, gid):
    ok(dtmd.submit(saga(gid, [(stub.url("A"), "")], wait_result=True)))
    assert_409(post(dtmd, "/forceStop", gid=gid), "'succeed'", "saga")
    assert_409(post(dtmd, "/abort", gid=gid, trans_type="saga"), "'succeed'", "saga")
    assert_409(dtmd.submit(saga(gid, [(stub.url("A"), "")])), "'succeed'", "saga")
    st, _ = post(dtmd, "/forceStop", gid=gid + "-absent")
    assert st == 404
    assert dtmd.status(gid) == "succeed"


def test_store_unknown_outcome_is_never_success(start_dtmd, stub, redis_server, gid):
    """wait_result while Redis goes away mid-pass: the client hears 503 or an
    error, never 200, and once Redis is back the saga finishes."""
    dtmd = start_dtmd()
    stub.set_default("Slow", 200, SUCCESS_BODY, 0.6)
    import threading
    res = {}
    t = threading.Thread(target=lambda: res.update(
        r=dtmd.submit(saga(gid, [(stub.url("Slow"), "")], wait_result=True))))
    t.start()
    stub.wait_calls("Slow", 1)
    redis_server.stop()
    t.join(15)
    st, body = res["r"]
    assert st != 200, (st, body)
    redis_server.start()
    wait_until(lambda: dtmd.status(gid) == "succeed", 20, msg="saga finishes after Redis is back")


def test_leaving_prepared_needs_every_registered_branch(redis_server):
    """lua/cas_update.lua with a branch count (ARGV[9]): a pass moving a TCC out
    of 'prepared' (a timeout abort) must not store its status change when a
    branch was registered after the pass read the transaction: it would cancel
    only the branches it knew, and the new one's cancel would never be called.
    The script refuses (CONFLICT, nothing written); with the stored count it
    writes. Run on the script itself: the race needs a registration between a
    pass's read and its write, which no request can time."""
    src = script_text(REPO / "lua" / "cas_update.lua")
    key = "t{0}:t:g"
    keys = [key, "t{0}:due", "t{0}:live"]
    redis_server.cmd("HSET", key, "status", "prepared", "trans_type", "tcc", "nb", "4")

    def cas(nb):
        argv = ["g", "tcc", "prepared", "", "0", "", "", "", nb, "status", "aborting"]
        return [x.decode() for x in redis_server.cmd("EVAL", src, str(len(keys)), *keys, *argv)]

    def status():
        return redis_server.cmd("HGET", key, "status").decode()

    assert cas("2")[0] == "CONFLICT"  # the pass knew 2 branches; 4 are stored
    assert status() == "prepared"
    assert cas("4")[0] == "OK"
    assert status() == "aborting"
    redis_server.cmd("HSET", key, "status", "prepared")
    assert cas("")[0] == "OK"  # a request's write: no count to check
