"""Failover without waiting (docs/failover.md): a hold on a transaction counts
only while its owner is live on the transaction's shard, so a process that
dies or stalls loses its transactions within ~3 s whatever request_timeout
is, and a stalled process that comes back calls and records nothing for
them (fencing).

The branch calls here hang far longer (request_timeout 60 s) than the
takeover needs: before liveness, a dead process's hold lasted 2 x 60 s + 1 s.
Times are asserted generously (the bound is measured in bench/, not here).
"""

import random
import signal
import threading
import time

import pytest

from dtmtest import P, S, SUCCESS_BODY, new_gid, saga, wait_until
from test_faults import check_no_overlap, submit_ok

FAILURE = (409, '{"dtm_result":"FAILURE"}', 0)
SLOW_ENV = {"TIMEOUT_TO_FAIL": 300}


def two_steps(stub, gid, **options):
    return saga(gid, [(stub.url("Out"), stub.url("OutRevert")),
                      (stub.url("In"), stub.url("InRevert"))],
                request_timeout=60, **options)


def gid_calls(stub, gid, name=None):
    return [c for c in stub.calls(name) if c.query.get("gid") == gid]


def holder_of(redis_server, gid):
    key = [k for k in redis_server.keys("*:t:%s" % gid)][0]
    return redis_server.cmd("HGET", key, "lease_owner").decode()


def identity(d):
    """The process identity from its latest start's log line."""
    text = d.log.read_text(errors="replace")
    return text.rsplit("process identity ", 1)[1].split()[0]


@pytest.mark.no_valgrind("measures the takeover time (a few seconds)")
def test_restart_takes_over_a_hanging_call_at_once(start_dtmd, stub, gid):
    """SIGKILL while a call with request_timeout 60 hangs; the restarted
    process finishes the saga within seconds, not after the dead hold's
    2 x 60 s; the succeeded step is not called again."""
    d = start_dtmd(**SLOW_ENV)
    stub.plan("In", [(200, SUCCESS_BODY, 60)])
    submit_ok(d, two_steps(stub, gid))
    stub.wait_calls("In", 1)
    d.kill(signal.SIGKILL)
    d.start()
    t0 = time.monotonic()
    d.wait_status(gid, S, timeout=30)
    took = time.monotonic() - t0
    assert took < 8, "finished %.1f s after the restart" % took
    assert len(gid_calls(stub, gid, "Out")) == 1, stub.summary()
    assert len(gid_calls(stub, gid, "In")) == 2, stub.summary()


@pytest.mark.no_valgrind("measures the takeover time (a few seconds)")
def test_survivor_takes_over_from_a_killed_holder(start_dtmd, stub, gid):
    a = start_dtmd(**SLOW_ENV)
    b = start_dtmd(**SLOW_ENV)
    stub.plan("In", [(200, SUCCESS_BODY, 60)])
    submit_ok(a, two_steps(stub, gid))
    stub.wait_calls("In", 1)
    t0 = time.monotonic()
    a.kill(signal.SIGKILL)
    b.wait_status(gid, S, timeout=30)
    took = time.monotonic() - t0
    assert took < 8, "finished %.1f s after the holder died" % took
    assert len(gid_calls(stub, gid, "Out")) == 1, stub.summary()
    assert not gid_calls(stub, gid, "OutRevert") and not gid_calls(stub, gid, "InRevert")


@pytest.mark.no_valgrind("stalls a process past its 2 s liveness")
def test_stalled_holder_is_fenced_when_it_comes_back(start_dtmd, stub, redis_server, gid):
    """The holder is SIGSTOPped past its liveness: the other process takes
    over and finishes. Resumed, the stalled one gets FAILURE for its old
    call: it records nothing (no compensation, the outcome stays succeed)
    and calls nothing more for that gid."""
    a = start_dtmd(**SLOW_ENV)
    b = start_dtmd(**SLOW_ENV)
    # the first call answers FAILURE after 10 s: after the takeover and SIGCONT
    stub.plan("In", [(FAILURE[0], FAILURE[1], 10.0), (200, SUCCESS_BODY, 0)])
    submit_ok(a, two_steps(stub, gid))
    stub.wait_calls("In", 1)
    assert holder_of(redis_server, gid) == identity(a)
    a.proc.send_signal(signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        b.wait_status(gid, S, timeout=30)
        assert time.monotonic() - t0 < 8
        before = [c for c in stub.calls() if c.query.get("gid") == gid]
        assert [c.name for c in before] == ["Out", "In", "In"], stub.summary()
    finally:
        a.proc.send_signal(signal.SIGCONT)
    wait_until(lambda: gid_calls(stub, gid, "In")[0].end is not None, 15)
    time.sleep(2)  # room for anything a would wrongly do: record, compensate, retry
    q = a.query(gid)
    assert q["transaction"]["status"] == S, q
    assert [br["status"] for br in q["branches"]] == [P, S, P, S], q
    assert [c.name for c in gid_calls(stub, gid)] == ["Out", "In", "In"], stub.summary()
    assert "liveness lapsed" in a.log.read_text(errors="replace")
    assert a.running


@pytest.mark.no_valgrind("kills and restarts processes on a timetable")
def test_churn_two_processes_killed_and_restarted(start_dtmd, stub):
    """Two dtmd, sagas with slow steps, one of them SIGKILLed and restarted
    every second for ~10 s: every saga succeeds, no two calls of one branch
    overlap, and all finish soon after the churn."""
    procs = [start_dtmd(**SLOW_ENV), start_dtmd(**SLOW_ENV)]
    rnd = random.Random(18)
    for n in ("A1", "A2", "A3"):
        stub.set_default(n, 200, SUCCESS_BODY, 0.4)
    gids = []
    stop = threading.Event()
    errors = []

    def submitter():
        i = 0
        while not stop.is_set() and i < 100:
            g = new_gid("churn%03d" % i)
            body = saga(g, [(stub.url(n), stub.url("C" + n[1])) for n in ("A1", "A2", "A3")],
                        request_timeout=60)
            for attempt in range(40):  # the process asked may be down: ask the other
                d = procs[(i + attempt) % 2]
                try:
                    st, resp = d.submit(body)
                except OSError:
                    time.sleep(0.05)
                    continue
                if st == 200:
                    gids.append(g)
                    break
                if st == 409:  # stored by an earlier attempt whose answer was lost
                    gids.append(g)
                    break
                time.sleep(0.05)
            else:
                errors.append("could not submit %s" % g)
            i += 1
            time.sleep(0.09)

    t = threading.Thread(target=submitter)
    t.start()
    try:
        end = time.monotonic() + 10
        while time.monotonic() < end:
            time.sleep(1)
            d = rnd.choice(procs)
            d.kill(signal.SIGKILL)
            d.start()
    finally:
        stop.set()
        t.join()
    assert not errors, errors
    assert len(gids) >= 90
    churn_end = time.monotonic()
    for g in gids:
        q = procs[0].wait_status(g, S, timeout=max(5, 25 - (time.monotonic() - churn_end)))
        assert [b["status"] for b in q["branches"]] == [P, S, P, S, P, S], q
    assert time.monotonic() - churn_end < 25
    calls = [c for c in stub.calls() if c.query.get("gid") in set(gids)]
    check_no_overlap(calls)
    assert not [c for c in calls if c.name.startswith("C")], "compensations ran"


# --------------------------------------------------------------------------
# Ending a transaction through a process that does not hold it
# (docs/requests.md "No branch call after the end")

def force_stop(d, gid):
    return d.api("POST", "/forceStop", body={"gid": gid})


def test_force_stop_through_another_process_cancels_the_holders_calls(start_dtmd, stub, gid):
    """B drives: two sagas hang in its calls (MaxInflightCalls 2), a third
    one's call waits in B's queue. forceStop of the third through A answers
    200 failed, and its call is never sent, not even when B's slots free up;
    forceStop of a running one through A: its next step is never called."""
    b = start_dtmd(LIMITS_MAX_INFLIGHT_CALLS=2, **SLOW_ENV)
    a = start_dtmd(**SLOW_ENV)
    stub.set_default("Hang", 200, SUCCESS_BODY, 3.0)
    hung = [gid + "-h1", gid + "-h2"]
    for g in hung:
        submit_ok(b, saga(g, [(stub.url("Hang"), stub.url("HangComp")),
                              (stub.url("Next"), stub.url("NextComp"))], request_timeout=60))
    stub.wait_calls("Hang", 2)
    submit_ok(b, saga(gid, [(stub.url("Queued"), stub.url("QueuedComp"))], request_timeout=60))
    time.sleep(0.3)
    assert stub.count("Queued") == 0
    st, resp = force_stop(a, gid)
    assert st == 200, (st, resp)
    answered = time.time()
    assert a.status(gid) == "failed"
    st, resp = force_stop(a, hung[0])
    assert st == 200, (st, resp)
    answered_h = time.time()
    assert a.status(hung[0]) == "failed"
    # B's slots free up (the hanging calls answer after 3 s); the other saga goes on
    b.wait_status(hung[1], S, timeout=15)
    time.sleep(1.0)
    assert not gid_calls(stub, gid), stub.summary()
    late = [c for c in gid_calls(stub, hung[0]) if c.wall > answered_h]
    assert not late, late
    assert [c.name for c in gid_calls(stub, hung[0])] == ["Hang"], stub.summary()
    q = a.query(gid)
    assert q["transaction"]["rollback_reason"] == "force stopped", q
    assert a.status(hung[0]) == "failed" and answered <= answered_h


@pytest.mark.no_valgrind("stalls a process past its 2 s liveness")
def test_force_stop_through_another_process_while_the_holder_is_stalled(start_dtmd, stub, gid):
    """B drives a saga whose call hangs and is SIGSTOPped: forceStop through A
    waits for B's liveness to lapse, then stores the stop itself (200). B,
    resumed, records nothing and calls nothing more for that gid."""
    b = start_dtmd(**SLOW_ENV)
    a = start_dtmd(**SLOW_ENV)
    stub.plan("In", [(200, SUCCESS_BODY, 8.0)])
    submit_ok(b, two_steps(stub, gid))
    stub.wait_calls("In", 1)
    b.proc.send_signal(signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        st, resp = force_stop(a, gid)
        took = time.monotonic() - t0
        assert st == 200, (st, resp)
        assert took < 8, took
        answered = time.time()
    finally:
        b.proc.send_signal(signal.SIGCONT)
    wait_until(lambda: gid_calls(stub, gid, "In")[0].end is not None, 15)
    time.sleep(2)
    q = a.query(gid)
    assert q["transaction"]["status"] == "failed", q
    assert q["transaction"]["rollback_reason"] == "force stopped", q
    # In's SUCCESS came back to the stalled B after the stop: not recorded
    assert [br["status"] for br in q["branches"]] == [P, S, P, P], q
    assert not [c for c in gid_calls(stub, gid) if c.wall > answered], stub.summary()
    assert b.running


@pytest.mark.no_valgrind("waits for a killed process's 2 s liveness to lapse")
def test_stop_recorded_for_a_dead_holder_is_stored_first_by_the_next_one(start_dtmd, stub, gid,
                                                                         redis_server):
    """A's call hangs; A is killed. forceStop through B finds A's hold still
    counting and records the stop; B is killed too before A's liveness
    lapses, so nobody is left to store it. Whoever takes the saga over (B,
    restarted) stores the recorded stop first: the hanging step is not called
    a second time, nor anything else."""
    a = start_dtmd(**SLOW_ENV)
    b = start_dtmd(**SLOW_ENV)
    stub.plan("In", [(200, SUCCESS_BODY, 8.0)])
    submit_ok(a, two_steps(stub, gid))
    stub.wait_calls("In", 1)
    a.kill(signal.SIGKILL)

    def stop_through_b():
        try:
            force_stop(b, gid)
        except OSError:
            pass  # B is killed while the request waits

    threading.Thread(target=stop_through_b, daemon=True).start()
    key = redis_server.cmd("KEYS", "*:t:" + gid)[0]
    wait_until(lambda: redis_server.cmd("HEXISTS", key, "stop_req") == 1, 5,
               msg="the stop recorded for A")
    b.kill(signal.SIGKILL)
    assert redis_server.cmd("HGET", key, "status") == b"submitted"
    b.start()
    b.wait_status(gid, "failed", timeout=15)
    q = b.query(gid)
    assert q["transaction"]["rollback_reason"] == "force stopped", q
    time.sleep(1.0)
    assert [c.name for c in gid_calls(stub, gid)] == ["Out", "In"], stub.summary()
    assert redis_server.cmd("HEXISTS", key, "stop_req") == 0


def test_force_stop_through_another_process_answers_the_holders_waiter(start_dtmd, stub, gid,
                                                                     redis_server):
    """A wait_result submit to B, whose call runs: forceStop through A
    answers 200, and B's client hears the stop (409 "force stopped"), as
    when both requests reach one process. The recorded stop (longer than 64
    bytes) was kept in pieces and is gone: the hash is still a listpack."""
    b = start_dtmd(**SLOW_ENV)
    a = start_dtmd(**SLOW_ENV)
    stub.set_default("Slow", 200, SUCCESS_BODY, 3.0)
    res = {}
    t = threading.Thread(target=lambda: res.update(r=b.submit(
        saga(gid, [(stub.url("Slow"), stub.url("SlowComp")), (stub.url("Next"), "")],
             request_timeout=60, wait_result=True))))
    t.start()
    stub.wait_calls("Slow", 1)
    st, resp = force_stop(a, gid)
    assert st == 200, (st, resp)
    t.join(15)
    st, body = res["r"]
    assert st == 409 and "force stopped" in body.get("message", ""), (st, body)
    assert a.status(gid) == "failed"
    time.sleep(3.5)  # the slow call answers: nothing follows it
    assert [c.name for c in gid_calls(stub, gid)] == ["Slow"], stub.summary()
    key = redis_server.cmd("KEYS", "*:t:" + gid)[0]
    assert redis_server.cmd("OBJECT", "ENCODING", key) == b"listpack"
    assert not [f for f in redis_server.cmd("HKEYS", key) if f.startswith(b"stop_req")]
