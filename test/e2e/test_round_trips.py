"""Redis round trips per transaction, mode by mode: the counts
docs/performance.md#redis-round-trips-per-transaction documents, checked with
Redis MONITOR.

Every round trip is latency and Redis CPU on the hot path; these tests hold
dtmd to the documented count, so a change that adds one fails here. A round trip is a command dtmd sends that names the transaction
(its scripts name the gid in their keys and arguments); what a script does
inside Redis (MONITOR's "lua" lines) is part of the same round trip.

dtmd runs with its default retry and timeout settings: its hold on a
transaction then already covers a branch call, so no lease_move is sent
(engine.c hold_lease); the other tests run with retry intervals shorter than a
call's timeout, where one may be.
"""

import re
import time

import pytest

from dtmtest import SCRIPT_NAMES, F, S, saga, wait_until

SUCCESS = {"dtm_result": "SUCCESS"}
# dtmd's defaults (config.c), where the tests' DEFAULT_ENV shortens them
DEFAULTS = {"RETRY_INTERVAL": 10, "REQUEST_TIMEOUT": 3, "RETRY_MAX_INTERVAL": 3600,
            "TIMEOUT_TO_FAIL": 35}


@pytest.fixture
def dtmd(start_dtmd):
    return start_dtmd(**DEFAULTS)


def round_trips(seen, gid):
    """The commands dtmd sent that name gid, as [command, script-or-key...]:
    MONITOR lines from a client connection (not from inside a script)."""
    quoted = '"%s"' % gid
    out = []
    for line in seen:
        if " lua] " in line or "[" not in line:
            continue
        if quoted not in line and (":t:%s" % gid) not in line:
            continue
        m = re.search(r'\] "([A-Za-z]+)"(?: "([0-9a-f]{40})")?', line)
        if not m:
            out.append(line)
        elif m.group(1).upper() == "EVALSHA":
            out.append(SCRIPT_NAMES.get(m.group(2), m.group(2)))
        else:
            out.append(m.group(1).upper())
    return out


def post_ok(dtmd, path, body):
    st, resp = dtmd.api("POST", path, body=body)
    assert (st, resp) == (200, SUCCESS), "%s -> %s %r" % (path, st, resp)


def stored_status(r, gid):
    keys = [k.decode() for k in r("KEYS", "*:t:%s" % gid)]
    status = r("HGET", keys[0], "status") if len(keys) == 1 else None
    return status.decode() if status else None


def finish_and_count(redis_server, gid, run, final=S):
    """Run run() under MONITOR until gid is stored with status final; that is
    read from Redis on a connection of the test's own, left out of the count
    (a /query through dtmd would be a round trip of dtmd's)."""
    with redis_server.monitor() as seen, redis_server.client() as r:
        mine = "%s:%d" % r.sock.getsockname()[:2]
        run()
        wait_until(lambda: stored_status(r, gid) == final, msg="%s stored %s" % (gid, final))
        time.sleep(0.2)  # nothing more follows a finished transaction
    return round_trips([line for line in seen if "[0 %s]" % mine not in line], gid)


@pytest.mark.parametrize("n,wait", [(1, False), (2, False), (3, False), (2, True)],
                         ids=["1", "2", "3", "2-wait_result"])
def test_saga_n_plus_1(dtmd, stub, redis_server, gid, n, wait):
    """saga: save_new, then one script per branch result, the last one with
    the final status: n + 1 (wait_result changes only when the answer goes)."""
    steps = [(stub.url("Out%d" % i), stub.url("Out%dRevert" % i)) for i in range(n)]
    trips = finish_and_count(redis_server, gid,
                             lambda: post_ok(dtmd, "/submit", saga(gid, steps, wait_result=wait)))
    assert trips == ["save_new"] + ["cas_update"] * n, trips
    assert len(stub.calls()) == n


@pytest.mark.parametrize("k", [1, 2])
def test_saga_rolled_back_at_step_k_2k_plus_2(dtmd, stub, redis_server, gid, k):
    """Step k of 3 answers FAILURE: save_new, k action results, k
    compensations (steps k..1), the last one with failed: 2k + 2."""
    stub.plan("Out%d" % (k - 1), [(409, '{"error":"reason:no. FAILURE"}', 0)])
    steps = [(stub.url("Out%d" % i), stub.url("Out%dRevert" % i)) for i in range(3)]
    trips = finish_and_count(redis_server, gid,
                             lambda: post_ok(dtmd, "/submit", saga(gid, steps)), final=F)
    assert len(trips) == 2 * k + 2 and trips[0] == "save_new", trips
    assert set(trips[1:]) == {"cas_update"}, trips
    assert len(stub.calls()) == 2 * k  # k actions, k compensations


def test_saga_empty_urls_one(dtmd, stub, redis_server, gid):
    """Every action URL empty: stored finished by its submit, 1."""
    steps = [("", stub.url("OutRevert")), ("", "")]
    trips = finish_and_count(redis_server, gid,
                             lambda: post_ok(dtmd, "/submit", saga(gid, steps)))
    assert trips == ["save_new"], trips
    assert stub.calls() == []


def msg_body(stub, gid, n):
    return {"gid": gid, "trans_type": "msg",
            "steps": [{"action": stub.url("In%d" % i)} for i in range(n)],
            "payloads": ['{"amount":%d}' % i for i in range(n)],
            "query_prepared": stub.url("QueryPrepared")}


@pytest.mark.parametrize("n", [1, 2])
def test_msg_submitted_directly_n_plus_1(dtmd, stub, redis_server, gid, n):
    trips = finish_and_count(redis_server, gid,
                             lambda: post_ok(dtmd, "/submit", msg_body(stub, gid, n)))
    assert trips == ["save_new"] + ["cas_update"] * n, trips
    assert len(stub.calls()) == n


@pytest.mark.parametrize("n", [1, 2])
def test_msg_prepared_then_submitted_n_plus_3(dtmd, stub, redis_server, gid, n):
    """prepare (save_new), submit (save_new finds it, claim takes it submitted),
    one script per branch result: n + 3."""
    def run():
        post_ok(dtmd, "/prepare", msg_body(stub, gid, n))
        post_ok(dtmd, "/submit", msg_body(stub, gid, n))
    trips = finish_and_count(redis_server, gid, run)
    assert trips == ["save_new", "save_new", "claim"] + ["cas_update"] * n, trips
    assert len(stub.calls()) == n  # QueryPrepared is never asked: it was submitted


@pytest.mark.parametrize("mode", ["tcc", "xa"])
@pytest.mark.parametrize("n", [1, 3])
def test_tcc_xa_2n_plus_3(dtmd, stub, redis_server, gid, mode, n):
    """prepare, n registrations, 2 for the submit (save_new finds it, claim), n
    confirms (commits), the last with the final status: 2n + 3."""
    def branch(i):
        b = {"gid": gid, "trans_type": mode, "branch_id": "%02d" % (i + 1), "data": "{}"}
        if mode == "tcc":
            b.update(confirm=stub.url("C%d" % i), cancel=stub.url("X%d" % i))
        else:
            b["url"] = stub.url("XA%d" % i)
        return b

    def run():
        post_ok(dtmd, "/prepare", {"gid": gid, "trans_type": mode})
        for i in range(n):
            post_ok(dtmd, "/registerBranch", branch(i))
        post_ok(dtmd, "/submit", {"gid": gid, "trans_type": mode})
    trips = finish_and_count(redis_server, gid, run)
    assert trips == (["save_new"] + ["register_branch"] * n + ["save_new", "claim"]
                     + ["cas_update"] * n), trips
    assert len(stub.calls()) == n
