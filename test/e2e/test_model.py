"""Model-based randomized end-to-end test of dtmd's transaction state machine.

Seeded random sequences of API calls (valid and invalid, repeated, two at
once), branch behaviours (SUCCESS, FAILURE, ONGOING, 500, hang, connection
closed) and process faults (SIGKILL + restart, a second dtmd on the same
Redis), checked against a reference model of every mode and against
invariants on the stub's call log and `query` (model.py):

  model  every answer is one the model allows in some state the transaction
         may be in (accepted or refused); the stored final state is reachable
  I1     no branch is called after its transaction's final status was stored
  I2     a succeeded transaction had every forward branch answer SUCCESS
  I3     a failed saga compensated exactly the actions that were called, in
         reverse order (sequential); a failed TCC/XA cancelled / rolled back
         exactly its registered branches, in order; a failed msg delivered nothing
  I4     no compensate / cancel / rollback in a transaction that succeeded
  I5     two calls of one branch (gid, branch_id, op) never overlap in time
  I6     every answer agrees with what is stored (200 to wait_result submit =>
         succeed, 200 submit => not prepared, refused => its data not stored, ...)
  I7     one attempt is one request: a call closed without an answer is not
         sent again at once

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
