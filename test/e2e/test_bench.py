"""The benchmark's own tools (bench/, `make bench`): the business stub and the runner.

bench/stub.c parses HTTP by hand (one fixed buffer per connection, no evhttp),
so what wrk and libcurl send it is checked here byte by byte: requests
pipelined in one write, split anywhere, bodies longer than its buffer, and
what it refuses. Then bench/run.sh runs once, briefly (1 s per workload, no
cluster): every transaction it submitted must be found succeed, the Redis round
trips and branch calls it reports per transaction must be those of each mode,
and it must leave nothing running. Its figures (tx/s, latency) are measured,
never asserted (docs/testing.md).
"""

import json
import os
import socket
import subprocess
import time

import pytest

from dtmtest import DTMD_BIN, REPO, free_port, wait_until

STUB = REPO / "bench" / "stub"
OK_BODY = b'{"dtm_result":"SUCCESS"}'


@pytest.fixture(scope="module")
def stub_bin():
    subprocess.run(["make", "-C", str(REPO), "--no-print-directory", "bench/stub"],
                   check=True, stdout=subprocess.DEVNULL)
    return STUB


@pytest.fixture
def bench_stub(stub_bin):
    port = free_port()
    p = subprocess.Popen([str(stub_bin), str(port)], stderr=subprocess.PIPE)

    def up():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False
    wait_until(up, msg="bench/stub listening")
    yield port
    p.terminate()
    assert p.wait(timeout=5) == 0, p.stderr.read()


def post(path, body, extra=b""):
    return (b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n%s\r\n%s" % (path, len(body), extra, body))


def read_answers(sock, n, timeout=5.0):
    """n HTTP answers from sock as (status, headers-dict, body)."""
    sock.settimeout(timeout)
    buf, out = b"", []
    while len(out) < n:
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(65536)
            assert chunk, "closed after %d answers: %r" % (len(out), buf)
            buf += chunk
        head, buf = buf.split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, v in
                   (line.split(b":", 1) for line in lines[1:])}
        length = int(headers.get(b"content-length", b"0"))
        while len(buf) < length:
            chunk = sock.recv(65536)
            assert chunk, "closed inside a body"
            buf += chunk
        out.append((status, headers, buf[:length]))
        buf = buf[length:]
    assert buf == b"", "more than %d answers: %r" % (n, buf)
    return out


def served(port):
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"GET /__count HTTP/1.1\r\nHost: x\r\n\r\n")
        [(status, _, body)] = read_answers(s, 1)
    assert status == 200
    return int(body)


def closed(sock):
    sock.settimeout(5.0)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_stub_answers_pipelined_requests_in_order(bench_stub):
    with socket.create_connection(("127.0.0.1", bench_stub)) as s:
        s.sendall(b"".join(post(b"/TransOut?gid=g%d" % i, b'{"amount":%d}' % i)
                           for i in range(5)))
        answers = read_answers(s, 5)
        assert [a[0] for a in answers] == [200] * 5
        assert all(a[2] == OK_BODY for a in answers)
        s.sendall(post(b"/TransIn", b"{}"))  # keep-alive: the connection still serves
        assert read_answers(s, 1)[0][2] == OK_BODY
    assert served(bench_stub) == 6  # /__count itself is not counted


def test_stub_request_split_anywhere(bench_stub):
    """A request arriving a few bytes at a time (head and body split, as TCP may
    deliver them) is answered once, when complete, and the next one still is."""
    req = post(b"/TransOut", b'{"amount":30,"note":"' + b"x" * 300 + b'"}')
    with socket.create_connection(("127.0.0.1", bench_stub)) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for cut in (7, 40, len(req) - 310, len(req) - 1):
            pieces = [req[:cut], req[cut:]]
            for piece in pieces:
                s.sendall(piece)
                time.sleep(0.02)
            assert [a[0] for a in read_answers(s, 1)] == [200], cut
    assert served(bench_stub) == 4


def test_stub_skips_a_body_longer_than_its_buffer(bench_stub):
    big = b'{"data":"' + b"y" * 100_000 + b'"}'
    with socket.create_connection(("127.0.0.1", bench_stub)) as s:
        s.sendall(post(b"/TransOut", big) + post(b"/TransIn", b"{}"))
        assert [a[0] for a in read_answers(s, 2)] == [200, 200]
    assert served(bench_stub) == 2


def test_stub_refuses_what_it_cannot_parse(bench_stub):
    with socket.create_connection(("127.0.0.1", bench_stub)) as s:  # chunked body
        s.sendall(b"POST /TransOut HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"2\r\n{}\r\n0\r\n\r\n")
        [(status, headers, _)] = read_answers(s, 1)
        assert status == 400 and headers[b"connection"] == b"close"
        assert closed(s)
    with socket.create_connection(("127.0.0.1", bench_stub)) as s:  # a head over 16 kB
        s.sendall(b"POST /TransOut HTTP/1.1\r\nX-Big: " + b"z" * 20000 + b"\r\n\r\n")
        [(status, _, _)] = read_answers(s, 1)
        assert status == 400
        assert closed(s)
    with socket.create_connection(("127.0.0.1", bench_stub)) as s:  # the client closes
        s.sendall(post(b"/TransOut", b"{}", b"Connection: close\r\n"))
        assert read_answers(s, 1)[0][0] == 200
        assert closed(s)
    assert served(bench_stub) == 1


def port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.mark.no_valgrind("bench/run.sh starts its dtmd itself, unwrapped: it would only "
                         "repeat the plain run of make test")
def test_runner_completes_every_transaction_and_stops_everything(tmp_path, stub_bin):
    """bench/run.sh end to end, each workload for 1 s (an ASan build under
    test-asan): its JSON and Markdown results, the checks it makes itself,
    and the counts that do not depend on the machine."""
    ports = {"REDIS_PORT": free_port(), "DTMD_PORT": free_port(), "STUB_PORT": free_port(),
             "REPLICA_PORT": free_port()}
    env = dict(os.environ, DURATION="1s", WORKLOADS="saga msg saga_empty_wait", HALF="1",
               PRELOAD="60000", INFLIGHT="50", REPLICA="1", CLUSTER="0", NO_BUILD="1",
               DTMD_BIN=str(DTMD_BIN), OUT=str(tmp_path),
               TMPDIR=str(tmp_path), DRAIN_TIMEOUT="30",
               # none parked, so that the calls per transaction are exact
               # when a slow build falls behind wrk
               LIMITS_MAX_ACTIVE_PASSES="100000",
               **{k: str(v) for k, v in ports.items()})
    r = subprocess.run(["sh", str(REPO / "bench" / "run.sh")], env=env, capture_output=True,
                       text=True, timeout=240)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]

    res = json.loads((tmp_path / "results.json").read_text())
    assert res["machine"]["nproc"] == os.cpu_count()
    assert res["ceilings"]["http_stub_rps"] > 0 and res["ceilings"]["redis_evalsha_cas_update_ops"] > 0
    assert res["dtmd"]["peak_rss_kb"] >= res["dtmd"]["idle_rss_kb"] > 0
    # liveness refreshes every shard each second, at least
    assert res["dtmd"]["idle_redis_calls_per_s"] >= 16, res["dtmd"]
    runs = {w["workload"]: w for w in res["workloads"]}
    assert set(runs) == {"saga", "msg", "saga_empty_wait", "saga_half", "saga_half_fresh",
                         "saga_replicated"}, list(runs)
    # Redis round trips and branch calls per transaction (the scanner's few
    # commands ride on top, hence the tolerance)
    expect = {"saga": (3, 2), "msg": (3, 2), "saga_empty_wait": (1, 0), "saga_half": (3, 2),
              "saga_half_fresh": (3, 2)}
    # WaitReplicas 1: the saga's 3 script calls, and a WAIT behind each loop
    # turn's writes: some, and at most one per write
    rw = runs.pop("saga_replicated")
    assert set(rw["statuses"]) == {"succeed"} and rw["non_2xx"] == 0, rw
    assert rw["completed"] > 0 and rw["unfinished_at_end"] == 0, rw
    waits = rw["redis_commands"]["wait"]
    assert 0 < waits <= 3 * rw["completed"] + 100, rw
    assert abs(rw["redis_round_trips_per_tx_net"] - waits / rw["completed"] - 3) < 0.1 + 64 / rw["completed"], rw
    assert runs["saga"]["redis_commands"]["wait"] == 0, runs["saga"]
    for name, w in runs.items():
        assert w["completed"] > 0 and w["completed"] >= w["submits"] - w["non_2xx"], w
        assert set(w["statuses"]) == {"succeed"}, w["statuses"]
        assert w["unfinished_or_failed"] == 0 and w["unfinished_at_end"] == 0, w
        assert w["non_2xx"] == 0 and not w["socket_errors"], w
        trips, calls = expect[name]
        # Without dtmd's background calls (their idle rate): a slow build
        # completes few transactions in its second. The scanner's tick (per
        # shard a lease scan, the trimmer's two scripts and what they call:
        # about 64 calls every 2.25-3 s) falls into that second or not.
        net = w["redis_round_trips_per_tx_net"]
        assert net <= w["redis_round_trips_per_tx"], (name, w)
        assert abs(net - trips) < 0.1 + 64 / w["completed"], (
            name, net, w["redis_commands"], w["completed"], w["wrk_seconds"] + w["drain_seconds"])
        assert w["parked"] == 0, (name, w)  # LIMITS_MAX_ACTIVE_PASSES below
        assert w["branch_calls_per_tx"] == calls, (name, w)
        assert w["completed_tps"] > 0 and w["dtmd_cpu_s_per_1000_tx"] > 0, w
    assert runs["saga_half"]["pause_ms"] > 0
    assert runs["saga_half_fresh"]["pause_ms"] == runs["saga_half"]["pause_ms"]
    # the runs before leave their transactions stored; the fresh run starts empty
    assert runs["saga_half"]["redis_keys_at_start"] >= runs["saga"]["completed"]
    assert runs["saga_half_fresh"]["redis_keys_at_start"] == 0
    # the half-load run starts with PRELOAD finished transactions stored:
    # copies of one the saga run stored, so as large as dtmd's own
    pre = res["preload"]
    assert pre["stored_before"] + pre["written"] == 60000 and pre["written"] > 0, pre
    assert runs["saga_half"]["redis_keys_at_start"] >= 60000
    assert pre["redis_bytes_per_tx"] >= pre["template_memory_usage"] > 0, pre
    # Redis memory and CPU per transaction, from INFO
    for name in ("saga", "msg", "saga_empty_wait"):
        assert runs[name]["redis_bytes_per_tx"] > 0 and runs[name]["redis_cpu_ms_per_tx"] > 0, runs[name]
        assert 0 < runs[name]["pss_kb_at_end"] <= runs[name]["rss_kb"], runs[name]
    # every in-flight saga driven, its first call open
    inf = res["inflight"]
    assert inf["n"] == inf["active"] == inf["calls_open"] == 50 and inf["rss_kb"] > 0, inf

    md = (tmp_path / "results.md").read_text()
    assert "| workload | completed tx/s |" in md
    for name in list(runs) + ["saga_replicated"]:
        assert "| %s |" % name in md, name
    # everything it started is stopped, its temporary directory removed
    assert not any(port_open(p) for p in ports.values()), ports
    assert not list(tmp_path.glob("dtmd-bench.*"))


def test_footprint_study_runs(tmp_path):
    """bench/footprint.py (docs/footprint.md), briefly: today's real-URL hash
    is a hash table and the recommended layout a listpack, several times
    smaller; the figures themselves are the study's, not asserted here."""
    r = subprocess.run(["/usr/bin/python3", str(REPO / "bench" / "footprint.py"), "2000", "real URLs"],
                       env=dict(os.environ, TMPDIR=str(tmp_path)), capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = {}
    for line in r.stdout.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = cells
    today = rows["real URLs: today (hash + idx + exp)"]
    compact = rows["real URLs: one hash, definition in chunks, exp folded into idx"]
    assert today[4] == "hashtable" and compact[4] == "listpack", (today, compact)
    assert 0 < int(compact[1]) * 3 < int(today[1]), (today, compact)
    assert not list(tmp_path.glob("dtmd-footprint.*"))  # its private Redis's directory is removed
