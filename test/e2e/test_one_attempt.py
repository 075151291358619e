"""One attempt of a branch call is one request on the wire (issue 17).

When a reused keep-alive connection to a branch closes without an answer,
libcurl would send the request again on a fresh connection by itself (up to
five times), so the branch would run one attempt several times. dtmd stops
that (branch_call.c prereq_cb): the attempt ends as an error, and only
dtmd's own retry, after RetryInterval, calls the branch again.

The branch service is a raw socket server on loopback (not the stub, which
cannot close a connection in the middle of a request): CloseOnReuseServer.
"""

import socket
import threading
import time
import urllib.parse

import pytest

from dtmtest import P, S, SUCCESS_BODY, new_gid, saga, wait_until

OK = {"dtm_result": "SUCCESS"}


class Hit:
    def __init__(self, method, path, gid, body, conn, nth, t, closed):
        self.method, self.path, self.gid, self.body = method, path, gid, body
        self.conn = conn      # connection number (1 = the first one accepted)
        self.nth = nth        # 1 = the first request on its connection
        self.t = t            # time.monotonic() when the request was read
        self.closed = closed  # answered by closing the connection

    def __repr__(self):
        return "%s /%s conn %d #%d at %.3f%s" % (self.method, self.path, self.conn, self.nth,
                                                self.t, " closed" if self.closed else "")


class CloseOnReuseServer:
    """Answers every request 200 with keep-alive, except a request for a
    path in close_once (the first such one only) or close_always that is
    not the first request of its connection: that one is read in full, then
    the connection is closed without an answer. Records every request."""

    def __init__(self, close_once=(), close_always=(), slow=()):
        self.close_once = set(close_once)
        self.close_always = set(close_always)  # every later request of a connection
        self.slow = set(slow)  # answered after 0.2 s
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.log = []
        self.accepted = 0
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, name):
        return "http://127.0.0.1:%d/%s" % (self.port, name)

    def hits(self, path):
        with self.lock:
            return [h for h in self.log if h.path == path]

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.accepted += 1
                n = self.accepted
                self.conns.append(conn)
            threading.Thread(target=self._serve, args=(conn, n), daemon=True).start()

    def _serve(self, conn, n):
        data, nth = b"", 0
        try:
            conn.settimeout(30)
            while True:
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                head, _, rest = data.partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                length = 0
                for h in lines[1:]:
                    k, _, v = h.partition(":")
                    if k.strip().lower() == "content-length":
                        length = int(v)
                while len(rest) < length:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    rest += chunk
                body, data = rest[:length], rest[length:]
                nth += 1
                method, target = (lines[0].split(" ") + ["", ""])[:2]
                u = urllib.parse.urlsplit(target)
                path = u.path.strip("/")
                gid = urllib.parse.parse_qs(u.query).get("gid", [""])[0]
                with self.lock:
                    close = nth > 1 and (path in self.close_once or path in self.close_always)
                    if close:
                        self.close_once.discard(path)
                    self.log.append(Hit(method, path, gid, body.decode(), n, nth,
                                        time.monotonic(), close))
                if close:
                    return  # read in full, no answer: the connection is closed
                if path in self.slow:
                    time.sleep(0.2)
                out = SUCCESS_BODY.encode()
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (len(out), out))
        except OSError:
            pass
        finally:
            conn.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
        with self.lock:
            conns = list(self.conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


@pytest.fixture
def reuse_server():
    s = CloseOnReuseServer(close_once=["A2"])
    yield s
    s.close()


@pytest.mark.parametrize("payload,method", [('{"amount":30}', "POST"), ("", "GET")])
def test_attempt_on_dead_reused_connection_is_not_resent(start_dtmd, reuse_server, payload,
                                                         method):
    """Step 2 goes over the connection step 1 was answered on; the service
    reads it and closes the connection. That attempt is one request; dtmd
    retries it after RetryInterval (1 s here) and the saga succeeds."""
    d = start_dtmd(RETRY_INTERVAL=1, TIMEOUT_TO_FAIL=60)
    g = new_gid("once")
    st, resp = d.submit(saga(g, [(reuse_server.url("A1"), ""), (reuse_server.url("A2"), "")],
                             payloads=[payload, payload]))
    assert (st, resp) == (200, OK)
    q = d.wait_status(g, S, timeout=10)
    assert [b["status"] for b in q["branches"]] == [P, S, P, S], q
    a1, a2 = reuse_server.hits("A1"), reuse_server.hits("A2")
    assert len(a1) == 1, a1
    assert len(a2) == 2, a2
    first, retry = a2
    # the first attempt came over step 1's connection and got it closed ...
    assert (first.conn, first.nth, first.closed) == (a1[0].conn, 2, True), a2
    # ... and was not sent again before dtmd's own retry, which came after
    # the back-off on a new connection
    assert retry.t - first.t >= 0.9, a2
    assert retry.conn != first.conn and not retry.closed, a2
    for h in a1 + a2:
        assert (h.method, h.gid, h.body) == (method, g, payload), h
    wait_until(lambda: "connection closed without an answer" in d.log.read_text(errors="replace"),
               5, msg="the attempt's error in dtmd's log")


def test_service_closing_every_reused_connection(start_dtmd):
    """The symptom of issue 17: with six idle connections to a service that
    closes every request arriving over a reused connection unanswered, curl
    sent one attempt six times ("Connection died, tried 5 times"). Each
    attempt is one request now, spaced by dtmd's back-off; once the pool is
    used up, a new connection gets the answer."""
    srv = CloseOnReuseServer(close_always=["B"], slow=["W"])
    try:
        d = start_dtmd(RETRY_INTERVAL=0.3, RETRY_MAX_INTERVAL=0.6, TIMEOUT_TO_FAIL=60)
        g0 = new_gid("warm")
        st, resp = d.submit(saga(g0, [(srv.url("W"), "")] * 6,
                                  custom_data={"concurrent": True}))
        assert (st, resp) == (200, OK)
        d.wait_status(g0, S, timeout=10)
        assert srv.accepted == 6  # six connections, idle in dtmd's pool
        g = new_gid("every")
        st, resp = d.submit(saga(g, [(srv.url("B"), "")]))
        assert (st, resp) == (200, OK)
        d.wait_status(g, S, timeout=15)
        hits = srv.hits("B")
        assert len(hits) >= 2 and hits[0].closed, hits  # the first one over a reused connection
        assert hits[-1].nth == 1 and not hits[-1].closed, hits
        assert all(h.nth > 1 and h.closed for h in hits[:-1]), hits
        gaps = [b.t - a.t for a, b in zip(hits, hits[1:])]
        assert all(gap >= 0.25 for gap in gaps), (gaps, hits)
    finally:
        srv.close()
