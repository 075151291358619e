"""Helpers for dtmd's end-to-end tests (standard library only).

Everything a test needs to drive a real dtmd against a real redis-server and a
real business stub over loopback HTTP:

* free_port()             - a free TCP port on 127.0.0.1
* Resp                    - a tiny RESP (Redis protocol) client
* RedisServer             - a private redis-server (AOF on, survives restarts)
* Stub                    - the business service: /api/busi/<Name>, programmable replies
* Dtmd                    - a dtmd process (start, SIGKILL, restart, HTTP helpers)
* http_request / wait_until / saga / new_gid / statuses helpers

The fixtures that wire these together live in conftest.py.
"""

import base64
import collections
import contextlib
import hashlib
import random
import http.client
import itertools
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# DTMD_BIN=/path/to/dtmd overrides the binary under test (e.g. an ASan build).
DTMD_BIN = Path(os.environ.get("DTMD_BIN") or (REPO / "dtmd"))
# DTMD_WRAPPER="valgrind --error-exitcode=99 ..." starts every dtmd under that
# command (`make test-valgrind`). Under valgrind each start gets its own
# --log-file (<name>.valgrind.<start#>.log beside the dtmd log), checked at
# teardown: errors or definite leaks fail the test (see teardown_problems).
DTMD_WRAPPER = shlex.split(os.environ.get("DTMD_WRAPPER", ""))
UNDER_VALGRIND = bool(DTMD_WRAPPER) and os.path.basename(DTMD_WRAPPER[0]) == "valgrind"
VALGRIND_EXIT = 99  # the --error-exitcode the Makefile passes
# A wrapped dtmd is 20-50x slower: every harness wait (wait_until, wait_status,
# wait_calls, start-up, stop) is multiplied by this (DTMD_TIMEOUT_SCALE).
TIMEOUT_SCALE = float(os.environ.get("DTMD_TIMEOUT_SCALE") or (4 if DTMD_WRAPPER else 1))
REDIS_BIN = "/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else (
    shutil.which("redis-server") or "redis-server")

SUCCESS_BODY = '{"dtm_result":"SUCCESS"}'
ONGOING = (425, '{"dtm_result":"ONGOING"}', 0)
ERROR = (500, "internal error from stub", 0)
# A planned reply whose status is CLOSE: the stub reads the request, waits the
# delay, then closes the connection without answering.
CLOSE = "close"

# Branch status shorthands: P/S/F.
P, S, F = "prepared", "succeed", "failed"

# Timings used by the default dtmd configuration (seconds).
CRON_INTERVAL = 0.1
RETRY_INTERVAL = 0.3
REQUEST_TIMEOUT = 1
TIMEOUT_TO_FAIL = 3
RETRY_MAX_INTERVAL = 2

DEFAULT_ENV = {
    "TRANS_CRON_INTERVAL": str(CRON_INTERVAL),
    "RETRY_INTERVAL": str(RETRY_INTERVAL),
    "REQUEST_TIMEOUT": str(REQUEST_TIMEOUT),
    "TIMEOUT_TO_FAIL": str(TIMEOUT_TO_FAIL),
    "RETRY_MAX_INTERVAL": str(RETRY_MAX_INTERVAL),
    "LOG_LEVEL": "debug",
}

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


# --------------------------------------------------------------------------
# small utilities

def free_port():
    """A free loopback port. Each pytest-xdist worker draws from its own range
    below the kernel's ephemeral ones, so two workers never get the same port
    between one's check and its use."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if worker.startswith("gw") and worker[2:].isdigit():
        lo = 10000 + (int(worker[2:]) % 4) * 5000
        for _ in range(200):
            port = random.randrange(lo, lo + 5000)
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
            finally:
                s.close()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def wait_until(fn, timeout=10.0, interval=0.05, msg=None):
    """Call fn until it returns a truthy value; return that value.

    On timeout fail with msg and the last value fn returned (or the last
    exception it raised)."""
    timeout *= TIMEOUT_SCALE
    deadline = time.monotonic() + timeout
    last, last_exc = None, None
    while True:
        try:
            last = fn()
            last_exc = None
            if last:
                return last
        except Exception as e:  # noqa: BLE001 - report it if we time out
            last_exc = e
        if time.monotonic() >= deadline:
            detail = "last exception: %r" % (last_exc,) if last_exc else "last value: %r" % (last,)
            raise AssertionError("timed out after %.1fs waiting for %s; %s"
                                 % (timeout, msg or getattr(fn, "__name__", "condition"), detail))
        time.sleep(interval)


def new_gid(prefix="g"):
    prefix = re.sub(r"[^A-Za-z0-9_-]", "_", prefix)[:40]
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10])


def parse_time(s):
    """Parse an RFC 3339 time (Go time.Time JSON) into an aware datetime."""
    import datetime
    assert isinstance(s, str) and RFC3339.match(s), "not an RFC 3339 time: %r" % (s,)
    m = re.match(r"^(.*T\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$", s)
    frac = (m.group(2) or "")[:7]  # at most microseconds
    zone = "+00:00" if m.group(3) == "Z" else m.group(3)
    return datetime.datetime.fromisoformat(m.group(1) + frac + zone)


def http_request(method, url, body=None, raw=None, headers=None, timeout=30.0):
    """One HTTP request; never raises on 4xx/5xx.

    body: a JSON-able object (sent as JSON); raw: bytes/str sent verbatim.
    Returns (status, parsed JSON or text, response headers dict (lower-case keys))."""
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=timeout)
    path = u.path or "/"
    if u.query:
        path += "?" + u.query
    data = None
    hdrs = {}
    if body is not None:
        data = json.dumps(body).encode()
        hdrs["Content-Type"] = "application/json"
    elif raw is not None:
        data = raw.encode() if isinstance(raw, str) else raw
        hdrs["Content-Type"] = "application/json"
    if headers:
        hdrs.update(headers)
    try:
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        payload = resp.read()
        rh = {k.lower(): v for k, v in resp.getheaders()}
        text = payload.decode("utf-8", "replace")
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = text
        return resp.status, parsed, rh
    finally:
        conn.close()


def saga(gid, steps, payloads=None, **options):
    """Build a saga submit body.

    steps: [(action_url, compensate_url), ...]; payloads default to one
    '{"amount":30}' per step. Options are copied as top-level keys
    (wait_result, retry_interval, timeout_to_fail, request_timeout,
    retry_limit, branch_headers, concurrent, ...); custom_data may be given as
    a dict and is then serialised to the JSON *string* dtm expects."""
    body = {
        "gid": gid,
        "trans_type": "saga",
        "steps": [{"action": a, "compensate": c} for a, c in steps],
        "payloads": list(payloads) if payloads is not None
        else ['{"amount":30}' for _ in steps],
    }
    for k, v in options.items():
        if k == "custom_data" and not isinstance(v, str):
            v = json.dumps(v)
        body[k] = v
    return body


def b64(s):
    if isinstance(s, str):
        s = s.encode()
    return base64.b64encode(s).decode()


# --------------------------------------------------------------------------
# RESP client

class RespError(Exception):
    pass


class Resp:
    """Minimal Redis client: Resp(host, port)("SET", "k", "v")."""

    def __init__(self, host, port, timeout=5.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.f = self.sock.makefile("rb")

    def __call__(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if not isinstance(a, bytes):
                a = str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sock.sendall(b"".join(out))
        return self._read()

    def _read(self):
        line = self.f.readline()
        if not line:
            raise ConnectionError("redis closed the connection")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RespError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.f.read(n + 2)
            return data[:-2]
        if kind == b"*":
            n = int(rest)
            if n < 0:
                return None
            items, err = [], None
            for _ in range(n):
                try:
                    items.append(self._read())
                except RespError as e:  # keep the stream in sync
                    items.append(e)
                    err = err or e
            return items
        raise RespError("bad RESP reply: %r" % (line,))

    def close(self):
        try:
            self.f.close()
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


# --------------------------------------------------------------------------
# redis-server

_markers = itertools.count()
def script_text(path):
    """A lua/ script as dtmd loads it: "--@include NAME" lines replaced by
    lua/lib/NAME.lua (src/gen_lua.sh)."""
    out = []
    for line in path.read_text().splitlines(keepends=True):
        if line.startswith("--@include "):
            out.append((path.parent / "lib" / (line.split()[1] + ".lua")).read_text())
        else:
            out.append(line)
    return "".join(out)


# lua/<name>.lua by the SHA1 dtmd runs it under (EVALSHA), to name the scripts
# MONITOR shows
SCRIPT_NAMES = {hashlib.sha1(script_text(p).encode()).hexdigest(): p.stem
                for p in (REPO / "lua").glob("*.lua")}


def scripts_run(seen, gid):
    """The names of the Lua scripts run on gid, in order, in lines that
    RedisServer.monitor() recorded."""
    out = []
    for line in seen:
        m = re.search(r'"evalsha" "([0-9a-f]{40})"', line, re.I)
        if m and gid in line:
            out.append(SCRIPT_NAMES.get(m.group(1), m.group(1)))
    return out


class RedisServer:
    """extra_args: more redis-server options, e.g. ["--replicaof", "127.0.0.1", port]."""
    def __init__(self, workdir, extra_args=()):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.log = self.dir / "redis.log"
        self.proc = None
        self.extra_args = [str(a) for a in extra_args]

    def start(self, timeout=10.0):
        assert self.proc is None or self.proc.poll() is not None, "redis already running"
        self.proc = subprocess.Popen(
            [REDIS_BIN, "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", str(self.dir), "--appendonly", "yes", "--appendfsync", "always",
             "--save", "", "--daemonize", "no", "--protected-mode", "no",
             "--logfile", str(self.log)] + self.extra_args,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("redis-server exited with %s; log:\n%s"
                                     % (self.proc.returncode, self.log_tail()))
            try:
                with self.client() as r:
                    return r("PING") == "PONG"
            except (OSError, RespError):
                return False
        try:
            wait_until(ready, timeout, msg="redis-server on port %d" % self.port)
        except AssertionError:
            if self.proc.poll() is not None:
                raise
            raise

    def stop(self, sig=signal.SIGTERM):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def restart(self):
        self.stop()
        self.start()

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def client(self):
        return Resp("127.0.0.1", self.port)

    def cmd(self, *args):
        with self.client() as r:
            return r(*args)

    def keys(self, pattern="*"):
        """All keys matching pattern (SCAN; decoded to str)."""
        found, cursor = set(), b"0"
        with self.client() as r:
            while True:
                cursor, batch = r("SCAN", cursor, "MATCH", pattern, "COUNT", 1000)
                found.update(k.decode("utf-8", "replace") for k in batch)
                if cursor in (b"0", "0"):
                    return sorted(found)

    def keys_containing(self, text):
        # glob-escape the literal text
        esc = re.sub(r"([*?\[\]\\])", r"\\\1", text)
        return self.keys("*%s*" % esc)

    def mentions(self, gid):
        """Every place gid is stored: key names containing it, zset/set members
        and hash fields equal to it. [] means nothing about gid is stored."""
        found = ["key " + k for k in self.keys_containing(gid)]
        g = gid.encode()
        with self.client() as r:
            for k in self.keys():
                kind = r("TYPE", k)
                if kind == "zset" and r("ZSCORE", k, g) is not None:
                    found.append("zset %s member" % k)
                elif kind == "set" and r("SISMEMBER", k, g):
                    found.append("set %s member" % k)
                elif kind == "hash" and r("HEXISTS", k, g):
                    found.append("hash %s field" % k)
        return found

    @contextlib.contextmanager
    def monitor(self):
        """Record the commands every client sends while the block runs (Redis
        MONITOR): yields a list, filled with one line per command (quoted
        arguments, as MONITOR prints them) when the block ends."""
        seen = []
        r = Resp("127.0.0.1", self.port)
        try:
            assert r("MONITOR") == "OK"
            yield seen
            time.sleep(0.3)  # what dtmd sends after answering arrives too
            marker = "monitor-end-%d" % next(_markers)
            self.cmd("ECHO", marker)  # printed after everything sent before it
            r.sock.settimeout(5.0)
            while True:
                line = r.f.readline().decode("utf-8", "replace").rstrip("\r\n")
                if not line or marker in line:
                    break
                seen.append(line[1:])
        finally:
            r.close()

    def log_tail(self, n=40):
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no redis log)"


# --------------------------------------------------------------------------
# business stub

class Call:
    __slots__ = ("name", "method", "path", "raw_query", "query", "headers", "body",
                 "start", "end", "wall", "wall_end", "status", "port")

    def __repr__(self):
        return "<%s %s %s q=%s status=%s t=%.3f..%s>" % (
            self.method, self.name, self.path, self.query, self.status, self.start,
            "%.3f" % self.end if self.end is not None else "?")

    @property
    def op(self):
        return self.query.get("op")

    @property
    def branch_id(self):
        return self.query.get("branch_id")


class Stub:
    """The business service. Serves /api/busi/<Name> (GET or POST).

    Replies are programmed per name: plan(name, [(status, body, delay), ...])
    consumed one per call, then set_default(name, ...) if any, then the global
    default 200 {"dtm_result":"SUCCESS"}. An entry may also be a callable
    taking the Call and returning (status, body, delay). A status of CLOSE
    closes the connection after the delay without an answer.

    Each Call has start/end (time.monotonic()) and wall/wall_end (time.time())
    of the moment the request was read and the moment the answer was sent (or
    the connection closed)."""

    def __init__(self, port=0):
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._calls = []
        self._plans = collections.defaultdict(collections.deque)
        self._defaults = {}
        self._stopping = threading.Event()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                stub._handle(self)

            def do_POST(self):
                stub._handle(self)

            do_PUT = do_POST
            do_DELETE = do_GET

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 128  # fan-outs open many connections at once

            def handle_error(self, request, client_address):
                pass  # a caller (dtmd) that hangs up is normal here

        self.server = Server(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.base = "http://127.0.0.1:%d/api/busi" % self.port
        self._thread = threading.Thread(target=self.server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    # -- programming
    def url(self, name):
        return "%s/%s" % (self.base, name)

    def plan(self, name, replies):
        with self._lock:
            for r in replies:
                self._plans[name].append(r)

    def set_default(self, name, status=200, body=SUCCESS_BODY, delay=0.0):
        with self._lock:
            self._defaults[name] = (status, body, delay)

    def clear_default(self, name):
        with self._lock:
            self._defaults.pop(name, None)

    def clear_plan(self, name):
        with self._lock:
            self._plans.pop(name, None)

    # -- observation
    def calls(self, name=None):
        with self._lock:
            return [c for c in self._calls if name is None or c.name == name]

    def count(self, name=None):
        return len(self.calls(name))

    def wait_calls(self, name, n, timeout=10.0):
        timeout *= TIMEOUT_SCALE
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                got = [c for c in self._calls if name is None or c.name == name]
                if len(got) >= n:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("stub: waited %.1fs for %d call(s) to %s, got %d: %r"
                                         % (timeout, n, name, len(got), got))
                self._cond.wait(min(left, 0.1))

    def summary(self):
        lines = []
        for c in self.calls():
            lines.append("%.3f-%s %s %s?%s -> %s" % (
                c.start, "%.3f" % c.end if c.end is not None else "?", c.method, c.name,
                c.raw_query, c.status))
        return "\n".join(lines) or "(no calls)"

    # -- serving
    def _next_reply(self, name, call):
        with self._lock:
            q = self._plans.get(name)
            if q:
                r = q.popleft()
            else:
                r = self._defaults.get(name, (200, SUCCESS_BODY, 0.0))
        if callable(r):
            r = r(call)
        if len(r) == 2:
            r = (r[0], r[1], 0.0)
        return r

    def _handle(self, h):
        try:
            te = (h.headers.get("Transfer-Encoding") or "").lower()
            if "chunked" in te:
                chunks = []
                while True:
                    size = int(h.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while h.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        break
                    chunks.append(h.rfile.read(size))
                    h.rfile.readline()
                body = b"".join(chunks)
            else:
                n = int(h.headers.get("Content-Length") or 0)
                body = h.rfile.read(n) if n else b""
        except (OSError, ValueError):
            return
        u = urllib.parse.urlsplit(h.path)
        call = Call()
        call.method = h.command
        call.path = h.path
        call.raw_query = u.query
        call.query = {k: v[0] for k, v in urllib.parse.parse_qs(u.query, keep_blank_values=True).items()}
        call.headers = {k.lower(): v for k, v in h.headers.items()}
        call.body = body
        call.start = time.monotonic()
        call.wall = time.time()
        call.end = call.wall_end = None
        call.port = self.port
        prefix = "/api/busi/"
        call.name = u.path[len(prefix):] if u.path.startswith(prefix) else None
        if call.name is None:
            status, rbody, delay = 404, "not found", 0.0
        else:
            status, rbody, delay = self._next_reply(call.name, call)
        call.status = status
        with self._cond:
            self._calls.append(call)
            self._cond.notify_all()
        if delay:
            self._stopping.wait(delay)
        call.wall_end = time.time()
        call.end = time.monotonic()
        if status == CLOSE:
            h.close_connection = True
            try:
                h.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        data = rbody.encode() if isinstance(rbody, str) else rbody
        try:
            h.send_response(status)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
            h.wfile.flush()
        except OSError:
            pass

    def close(self):
        self._stopping.set()
        self.server.shutdown()
        self.server.server_close()


# --------------------------------------------------------------------------
# dtmd

class Dtmd:
    def __init__(self, env, workdir, name="dtmd"):
        self.env = dict(env)
        self.port = int(self.env["HTTP_PORT"])
        self.host = "http://127.0.0.1:%d" % self.port
        self.base = self.host + "/api/dtmsvr"
        self.dir = Path(workdir)
        self.log = self.dir / ("%s.log" % name)
        self.proc = None
        self.starts = 0
        self.unexpected_exits = []  # return codes of processes that died on their own
        self.valgrind_logs = []     # one per start under DTMD_WRAPPER=valgrind

    def check_alive(self):
        """Record a process that exited without being told to."""
        if self.proc is not None and self.proc.poll() is not None and \
                not getattr(self.proc, "_e2e_expected", False):
            self.proc._e2e_expected = True
            self.unexpected_exits.append(self.proc.returncode)

    def sanitizer_reports(self):
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return []
        return [ln for ln in text.splitlines()
                if "ERROR: AddressSanitizer" in ln or "ERROR: LeakSanitizer" in ln
                or ": runtime error:" in ln]

    def start(self, timeout=10.0):
        self.check_alive()
        if not DTMD_BIN.exists():
            raise AssertionError("%s does not exist; build it with `make`" % DTMD_BIN)
        env = dict(os.environ)
        env.update(self.env)
        self.starts += 1
        with open(self.log, "ab") as logf:
            logf.write(b"\n===== dtmd start #%d =====\n" % self.starts)
            logf.flush()
            cmd = list(DTMD_WRAPPER)
            if UNDER_VALGRIND:
                vlog = self.dir / ("%s.valgrind.%d.log" % (self.log.stem, self.starts))
                self.valgrind_logs.append(vlog)
                cmd.append("--log-file=%s" % vlog)
            cmd.append(str(DTMD_BIN))
            self.proc = subprocess.Popen(cmd, env=env, cwd=str(self.dir),
                                         stdin=subprocess.DEVNULL, stdout=logf,
                                         stderr=subprocess.STDOUT)

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("dtmd exited with %s during start-up; log tail:\n%s"
                                     % (self.proc.returncode, self.log_tail()))
            try:
                st, body, _ = http_request("GET", self.host + "/api/ping", timeout=TIMEOUT_SCALE)
                return st == 200 and body == {"msg": "pong"}
            except OSError:
                return False
        try:
            wait_until(ready, timeout, msg="dtmd /api/ping on port %d" % self.port)
        except AssertionError as e:
            if self.proc.poll() is not None and "exited" not in str(e):
                raise AssertionError("dtmd exited with %s; log tail:\n%s"
                                     % (self.proc.returncode, self.log_tail()))
            raise
        return self

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig=signal.SIGKILL, timeout=10.0):
        self.check_alive()
        if not self.running:
            return None
        self.proc._e2e_expected = True
        self.proc.send_signal(sig)
        timeout *= TIMEOUT_SCALE
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError("dtmd did not exit within %.0fs after signal %s" % (timeout, sig))

    def stop(self, timeout=10.0):
        return self.kill(signal.SIGTERM, timeout)

    def restart(self):
        self.stop()
        return self.start()

    def log_tail(self, n=80):
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no dtmd log)"

    # -- HTTP
    def url(self, path):
        if path.startswith("http://") or path.startswith("https://"):
            return path
        if path.startswith("/api"):
            return self.host + path
        return self.base + (path if path.startswith("/") else "/" + path)

    def api(self, method, path, body=None, raw=None, headers=None, timeout=30.0):
        """(status, parsed JSON or text). path relative to /api/dtmsvr unless it starts with /api."""
        st, data, _ = http_request(method, self.url(path), body=body, raw=raw,
                                   headers=headers, timeout=timeout)
        return st, data

    def submit(self, body, path="/submit"):
        return self.api("POST", path, body=body)

    def query(self, gid):
        st, data = self.api("GET", "/query?" + urllib.parse.urlencode({"gid": gid}))
        assert st == 200, "query %s -> %s %r" % (gid, st, data)
        return data

    def trans(self, gid):
        return self.query(gid)["transaction"]

    def status(self, gid):
        t = self.trans(gid)
        return t and t.get("status")

    def branch_statuses(self, gid):
        return [b["status"] for b in self.query(gid)["branches"]]

    def wait_status(self, gid, status, timeout=15.0):
        """Wait until the transaction has `status` (a str or a tuple); return the query."""
        want = (status,) if isinstance(status, str) else tuple(status)
        last = {}

        def check():
            q = self.query(gid)
            last["q"] = q
            t = q["transaction"]
            return q if t and t.get("status") in want else None
        try:
            return wait_until(check, timeout, interval=0.05)
        except AssertionError:
            raise AssertionError("gid %s did not reach %s within %.1fs; last query: %s"
                                 % (gid, want, timeout, json.dumps(last.get("q"))[:2000]))

    def wait_final(self, gid, timeout=15.0):
        return self.wait_status(gid, (S, F), timeout)


# The first line of each kind of valgrind (memcheck) error report.
VALGRIND_ERROR = re.compile(
    r"^==\d+== (Invalid (read|write|free)|Mismatched free|Conditional jump|"
    r"Use of uninitialised|Syscall param|Source and destination overlap|"
    r"Argument '.*' of function|.* definitely lost in|Process terminating with default action|"
    r"Jump to the invalid address)", re.M)


def valgrind_errors(vlog):
    """"" if the valgrind log of one dtmd run is clean, else the report.

    A run stopped by SIGTERM ends with "ERROR SUMMARY: N errors"; one killed
    with SIGKILL has no summary, but errors found until then are in the log."""
    try:
        text = vlog.read_text(errors="replace")
    except OSError:
        return "(no valgrind log: %s)" % vlog
    summary = re.search(r"ERROR SUMMARY: (\d+) errors", text)
    first = VALGRIND_ERROR.search(text)
    if (summary and int(summary.group(1)) > 0) or first:
        start = first.start() if first else summary.start()
        lines = text[start:].splitlines()
        return "\n".join(lines[:120]) + ("\n..." if len(lines) > 120 else "")
    return ""


def teardown_problems(started):
    """Stop every Dtmd of a test and say what went wrong: a dtmd that exited on
    its own (crash), one that did not exit 0 on SIGTERM, sanitizer reports in
    its log, valgrind errors (exit status 99 or a report in its valgrind log). The fixtures fail the test with these at teardown."""
    problems = []
    for d in started:
        d.check_alive()
        if d.unexpected_exits:
            problems.append("%s exited on its own (status %s); log tail:\n%s"
                            % (d.log.stem, d.unexpected_exits, d.log_tail()))
        if d.running:
            try:
                rc = d.stop(timeout=5)
                if UNDER_VALGRIND and rc == VALGRIND_EXIT:
                    problems.append("%s: valgrind found errors (exit status %d)"
                                    % (d.log.stem, rc))
                elif rc not in (0, None):
                    problems.append("%s exited with status %s after SIGTERM" % (d.log.stem, rc))
            except AssertionError as e:
                problems.append(str(e))
        if d.proc is not None and d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait(5)
        reports = d.sanitizer_reports()
        if reports:
            problems.append("%s: sanitizer reports in %s:\n%s"
                            % (d.log.stem, d.log, "\n".join(reports[:20])))
        for vlog in d.valgrind_logs:
            found = valgrind_errors(vlog)
            if found:
                problems.append("%s: valgrind errors in %s:\n%s" % (d.log.stem, vlog, found))
    return problems


# ---- shared assertions on (status, json) pairs from Dtmd.api ----

SUCCESS_JSON = {"dtm_result": "SUCCESS"}


def ok(resp, what=""):
    """resp is 200 {"dtm_result":"SUCCESS"}."""
    st, body = resp
    assert (st, body) == (200, SUCCESS_JSON), "%s -> %s %r" % (what, st, body)


def assert_409_resp(resp, *needles):
    """resp is 409 FAILURE with a message containing every needle; returns it."""
    st, body = resp
    assert st == 409, "expected 409, got %s %r" % (st, body)
    assert isinstance(body, dict) and body.get("dtm_result") == "FAILURE", body
    msg = body.get("message")
    assert isinstance(msg, str) and msg, body
    for n in needles:
        assert n in msg, "%r not in message %r" % (n, msg)
    return msg


def parse_metrics(text):
    """Prometheus exposition text -> {"name{labels}": value}."""
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values
