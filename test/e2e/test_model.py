"""Model-based randomized end-to-end test of dtmd's transaction state machine.

Seeded random sequences of API calls (valid and invalid, repeated, two at
once), branch behaviours (SUCCESS, FAILURE, ONGOING, 500, hang, connection
closed) and process faults (SIGKILL + restart, a second dtmd on the same
Redis), checked against a reference model of every mode and against
invariants on the stub's call log and `query` (model.py):

  model  every answer is one the model allows in some state the transaction
         may be in (accepted or refused); the stored final state is reachable
  not-final  what finishes by itself (all but a prepared saga or workflow) is
         final within 60 s after the sequence
  answer, crash  answers have dtm's shapes (409 FAILURE, 425 ONGOING, 400/404
         with a message); no dtmd crashes, each exits 0 on SIGTERM
  I1     no branch is called after its transaction's final status was stored
         (0.25 s slack for the stub's own latency), also with two dtmd on the store
  I2     a succeeded transaction had every forward branch answer SUCCESS
  I3     a failed saga compensated exactly the actions that were called, in
         reverse order (sequential); a failed TCC/XA cancelled / rolled back
         exactly its registered branches, in order; a failed msg delivered nothing
  I4     no compensate / cancel / rollback in a transaction that succeeded
  I5     two calls of one branch (gid, branch_id, op) never overlap in time
  I6     every answer agrees with what is stored (200 to wait_result submit =>
         succeed, 200 submit => not prepared, refused => its data not stored, ...)
  I7     one attempt is one request: a call closed without an answer is not
         sent again within 0.15 s (the back-off is at least 0.3 s) unless a
         request or fault came meanwhile

`make test` runs a bounded number of sequences; `make test-model SEED=.. N=..`
a long run (DTMD_MODEL_SEED, DTMD_MODEL_N; DTMD_MODEL_STEPS steps per sequence,
DTMD_MODEL_SHRINK=0 to skip shrinking). A failure prints the seed, the
sequence, the violations and the shortest failing sequence found by dropping
steps.
"""

import os
import time

import pytest

from model import Gen, Runner, describe, shrink, signature

SEED = int(os.environ.get("DTMD_MODEL_SEED") or 1)
N = int(os.environ.get("DTMD_MODEL_N") or 10)
STEPS = int(os.environ.get("DTMD_MODEL_STEPS") or 14)
SHRINK = os.environ.get("DTMD_MODEL_SHRINK", "1") != "0"
LONG = "DTMD_MODEL_N" in os.environ


def render(cfg, steps):
    return "\n".join(["  cfg %s" % (cfg,)] + ["  %2d. %s" % (i, describe(s))
                                               for i, s in enumerate(steps)])


@pytest.mark.no_valgrind("the invariants compare call and storage times with slacks of "
                         "0.1-0.25 s and the model assumes dtmd's own timeouts hold")
def test_model_random_sequences(redis_server, stub, tmp_path):
    runner = Runner(redis_server, stub, tmp_path)
    failures = []
    t0 = time.monotonic()
    nreq = nsteps = 0
    for seed in range(SEED, SEED + N):
        cfg, steps = Gen(seed, STEPS).gen()
        viol, info = runner.run(cfg, steps, "r%d" % seed)
        nreq += info["requests"]
        nsteps += len(steps)
        if viol:
            failures.append((seed, cfg, steps, viol, info["logs"]))
            print("seed %d: %s" % (seed, sorted(signature(viol))))
    print("model: %d sequences, %d steps, %d requests in %.1f s; %d failing"
          % (N, nsteps, nreq, time.monotonic() - t0, len(failures)))
    if not failures:
        return
    report = []
    shrunk = set()
    for seed, cfg, steps, viol, logs in failures:
        report.append("seed %d (DTMD_MODEL_SEED=%d DTMD_MODEL_N=1 DTMD_MODEL_STEPS=%d), "
                      "%d steps:\n%s\nviolations:\n%s\ndtmd logs: %s"
                      % (seed, seed, STEPS, len(steps), render(cfg, steps),
                         "\n".join("  [%s] %s" % v for v in viol), " ".join(logs)))
        # shrink once per kind of violation (the first seed showing it)
        for name in sorted(signature(viol) - shrunk):
            if not SHRINK or len(shrunk) >= (8 if LONG else 2):
                break
            shrunk.add(name)
            short = shrink(runner, cfg, steps, {name}, budget_s=240 if LONG else 60)
            report.append("shortest sequence found showing [%s] (seed %d, %d steps):\n%s"
                          % (name, seed, len(short), render(cfg, short)))
    raise AssertionError("%d of %d sequences failed\n\n%s"
                         % (len(failures), N, "\n\n".join(report)))


def test_stub_close_reply(stub):
    """The harness's CLOSE reply (used for 'connection closed without an
    answer'): the request is read and recorded, then the connection is closed."""
    import http.client

    from dtmtest import CLOSE, SUCCESS_BODY
    stub.plan("Closing", [(CLOSE, "", 0.05), (200, SUCCESS_BODY, 0)])
    conn = http.client.HTTPConnection("127.0.0.1", stub.port, timeout=5)
    try:
        conn.request("POST", "/api/busi/Closing?gid=g&op=action", body=b"{}")
        with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
            conn.getresponse()
    finally:
        conn.close()
    calls = stub.wait_calls("Closing", 1)
    c = calls[0]
    assert c.status == CLOSE and c.body == b"{}" and c.op == "action"
    assert c.wall_end is not None and c.wall_end - c.wall >= 0.04
    assert c.end is not None and c.end >= c.start
    # the next call gets the next planned reply
    conn = http.client.HTTPConnection("127.0.0.1", stub.port, timeout=5)
    try:
        conn.request("GET", "/api/busi/Closing")
        assert conn.getresponse().status == 200
    finally:
        conn.close()


# --------------------------------------------------------------------------
# the checks themselves, on made-up call logs: each invariant can fail

def _iso(t):
    import datetime
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).isoformat(
        timespec="milliseconds").replace("+00:00", "Z")


class _FakeStub:
    def __init__(self, calls):
        self._calls = calls

    def calls(self):
        return list(self._calls)


def _call(gid, bid, op, status, t, dur=0.01, name=None):
    from dtmtest import Call
    c = Call()
    c.name = name or "%s.%s.%s" % (gid, bid, op)
    c.method, c.path, c.raw_query, c.headers, c.body, c.port = "POST", "/", "", {}, b"", 0
    c.query = {"gid": gid, "branch_id": bid, "op": op}
    c.status = status
    c.wall, c.wall_end = t, (t + dur if dur is not None else None)
    c.start, c.end = c.wall, c.wall_end
    return c


def _check(ttype, status, branches, calls, reqs=(), extra=None, kills=(), two_since=None):
    from model import Model, Req, check_sequence
    gid = "G"
    t = {"gid": gid, "trans_type": ttype, "status": status}
    t.update(extra or {})
    q = {"transaction": t, "branches": [{"branch_id": b, "op": op, "url": "http://x/" + op,
                                         "status": st} for b, op, st in branches]}
    model = Model({"limits": False})
    model.wild.add("g0")  # the model's own checks are covered by test_model_answers
    rs = []
    for step, st, body in reqs:
        r = Req()
        r.step, r.gid, r.t0, r.t1, r.status, r.body = step, gid, 0.0, 0.0, st, body
        rs.append(r)
    return sorted({name for name, _ in check_sequence(
        _FakeStub(calls), model, {"g0": gid}, {"g0": q}, rs, list(kills), [], two_since)})


def test_model_checks_detect_violations():
    from dtmtest import CLOSE
    T = 1000000.0
    ok_saga = [("01", "compensate", "prepared"), ("01", "action", "succeed"),
               ("02", "compensate", "prepared"), ("02", "action", "succeed")]
    good = [_call("G", "01", "action", 200, T), _call("G", "02", "action", 200, T + 0.1)]
    fin = {"finish_time": _iso(T + 0.2)}
    assert _check("saga", "succeed", ok_saga, good, extra=fin) == []
    # I1: a call 0.5 s after the stored finish
    assert _check("saga", "succeed", ok_saga, good + [_call("G", "02", "action", 200, T + 0.7)],
                  extra=fin) == ["I1"]
    # ... also with a second dtmd on the store, whose pass had a call running
    late = _call("G", "02", "action", 200, T + 0.5)
    running = _call("G", "01", "action", 200, T + 0.15, dur=0.4)
    assert _check("saga", "succeed", ok_saga, good + [running, late], extra=fin,
                  two_since=T - 1) == ["I1"]
    assert _check("saga", "succeed", ok_saga, good + [running, late], extra=fin) == ["I1"]
    # I2: succeed without a SUCCESS answer of action 02
    assert _check("saga", "succeed", ok_saga, good[:1] + [_call("G", "02", "action", 500, T)],
                  extra=fin) == ["I2"]
    # I4: a compensation in a succeeded saga
    assert _check("saga", "succeed", ok_saga, good + [_call("G", "01", "compensate", 200, T + 0.15)],
                  extra=fin) == ["I4"]
    # I3: failed saga, action 02 called but never compensated; compensations out of order
    failed = {"rollback_time": _iso(T + 1), "rollback_reason": "url:... FAILURE"}
    f_br = [("01", "compensate", "succeed"), ("01", "action", "succeed"),
            ("02", "compensate", "prepared"), ("02", "action", "failed")]
    acts = [_call("G", "01", "action", 200, T), _call("G", "02", "action", 409, T + 0.1)]
    right = [_call("G", "02", "compensate", 200, T + 0.2), _call("G", "01", "compensate", 200, T + 0.3)]
    assert _check("saga", "failed", f_br, acts + right, extra=failed) == []
    assert _check("saga", "failed", f_br, acts + right[1:], extra=failed) == ["I3"]
    wrong = [_call("G", "01", "compensate", 200, T + 0.2), _call("G", "02", "compensate", 200, T + 0.3)]
    assert _check("saga", "failed", f_br, acts + wrong, extra=failed) == ["I3"]
    # I3: a failed tcc cancelled an unregistered branch / not all registered ones
    t_br = [("01", "cancel", "succeed"), ("01", "confirm", "prepared")]
    assert _check("tcc", "failed", t_br, [_call("G", "01", "cancel", 200, T)], extra=failed) == []
    assert _check("tcc", "failed", t_br, [_call("G", "01", "cancel", 200, T),
                                          _call("G", "02", "cancel", 200, T)],
                  extra=failed) == ["I3"]
    assert _check("tcc", "failed", t_br, [_call("G", "01", "cancel", 500, T)], extra=failed) == ["I3"]
    # I5: two calls of one branch at once (a kill ends the first one's caller)
    two = [_call("G", "01", "action", 500, T, dur=0.6), _call("G", "01", "action", 200, T + 0.3)]
    assert _check("saga", "succeed", ok_saga, two + good[1:], extra=fin) == ["I5"]
    assert _check("saga", "succeed", ok_saga, two + good[1:], extra=fin, kills=[T + 0.1]) == []
    # I7: a call closed without an answer sent again 2 ms later
    closed = [_call("G", "01", "action", CLOSE, T, dur=0.05), _call("G", "01", "action", 200, T + 0.052)]
    assert _check("saga", "succeed", ok_saga, closed + good[1:], extra=fin) == ["I7"]
    # I6: 200 to a wait_result submit while the stored status is submitted
    step = {"id": 3, "op": "submit", "g": "g0", "type": "tcc", "wait": True}
    assert _check("tcc", "submitted", [], [], reqs=[(step, 200, {"dtm_result": "SUCCESS"})]) == \
        ["I6"]
    # I6: a refused abort whose rollback_reason is stored
    step = {"id": 4, "op": "abort", "g": "g0", "type": "tcc", "wait": False}
    assert _check("tcc", "failed", [], [], extra={"rollback_reason": "req-4",
                                                  "rollback_time": _iso(T)},
                  reqs=[(step, 409, {"dtm_result": "FAILURE", "message": "x"})]) == ["I6"]


def test_model_answers():
    """The model's verdicts: certain where dtmd's rules are, narrowed by answers."""
    from model import Model, St, allowed_verdicts
    m = Model({"limits": True, "max_branches": 6})
    tcc = St("tcc", "prepared")
    wf_submit = {"op": "submit", "g": "g0", "type": "workflow", "status": "succeed"}
    assert m.apply(tcc, wf_submit) == [("no", tcc)]
    reg = {"op": "register", "g": "g0", "type": "tcc", "bid": "01", "v": 0}
    assert [v for v, _ in m.apply(St("saga", "prepared"), reg)] == ["no"]
    full = St("tcc", "prepared", tuple(("%02d" % i, "tcc", "v0") for i in range(1, 7)))
    assert [v for v, _ in m.apply(full, dict(reg, bid="07"))] == ["no"]
    assert [v for v, _ in m.apply(tcc, reg)] == ["ok"]
    abort_saga = {"op": "abort", "g": "g0", "type": "saga"}
    assert [v for v, _ in m.apply(St("saga", "submitted"), abort_saga)] == ["no"]
    # an answer no state explains is reported, and the gid is not checked further
    m.states["g0"] = [tcc]
    allowed, force, bad = allowed_verdicts(wf_submit, 200, {"dtm_result": "SUCCESS"})
    assert allowed == {"ok"} and bad is None
    assert "no model state" in m.observe([(wf_submit, allowed, force)], 0.0)
    # a submitted tcc may only succeed (or be force-stopped)
    m2 = Model({"limits": False})
    states = m2.drift("g1", [St("tcc", "submitted")], forever=True)
    assert sorted(s.status for s in states) == ["submitted", "succeed"]
