"""Fixtures for dtmd's end-to-end tests.

Each test gets its own redis-server (free loopback port, AOF on so data
survives a restart), its own business stub and its own dtmd process(es), all
stopped at teardown. When a test fails, the tail of every dtmd log, the redis
log and the stub's call list are attached to the report.

Fixtures:
  redis_server  RedisServer (restart(), stop(), start(), keys(), cmd(...))
  stub          Stub: stub.plan(name, [(status, body, delay), ...]), stub.url(name),
                stub.calls(name), stub.wait_calls(name, n, timeout)
  start_dtmd    factory: start_dtmd(**env_overrides) -> started Dtmd
  dtmd          a dtmd started with the default (fast) test configuration
  gid           a unique gid for the test

Under valgrind (DTMD_WRAPPER=valgrind..., `make test-valgrind`) tests marked
`no_valgrind` and those listed in VALGRIND_SKIP are skipped, with the reason.
"""

import pytest

from dtmtest import (DEFAULT_ENV, UNDER_VALGRIND, Dtmd, RedisServer, Stub, free_port, new_gid,
                     teardown_problems)

# Tests that cannot pass under valgrind whatever dtmd does: they measure
# dtmd's own timing, which valgrind slows 20-50x. "file::name" (a parametrised
# test: every parameter) -> reason. Prefer @pytest.mark.no_valgrind("reason").
VALGRIND_SKIP = {
    "test_tcc_xa.py::test_tcc_retry_backoff_grows_and_is_capped":
        "checks that gaps of 0.2/0.4/0.8 s between confirm retries double "
        "(base 0.1 s, cron 0.05 s); valgrind's per-pass latency distorts them",
    "test_workflow_mgmt.py::test_workflow_resume_error_backs_off":
        "checks that gaps of 0.2/0.4/0.8 s between resume calls double "
        "(base 0.1 s, cron 0.05 s); valgrind's per-pass latency distorts them",
}


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "no_valgrind(reason): timing-sensitive, skipped under DTMD_WRAPPER=valgrind")


def pytest_collection_modifyitems(config, items):
    if not UNDER_VALGRIND:
        return
    for item in items:
        mark = item.get_closest_marker("no_valgrind")
        key = "%s::%s" % (item.path.name, getattr(item, "originalname", None) or item.name)
        reason = VALGRIND_SKIP.get(key)
        if mark is not None:
            reason = (mark.args[0] if mark.args else mark.kwargs.get("reason")) or "timing-sensitive"
        if reason:
            item.add_marker(pytest.mark.skip(reason="under valgrind: " + reason))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "call" and rep.failed:
        for title, fn in getattr(item, "_e2e_artifacts", []):
            try:
                rep.sections.append((title, fn()))
            except Exception as e:  # noqa: BLE001
                rep.sections.append((title, "(could not collect: %r)" % (e,)))


def _artifact(request, title, fn):
    node = request.node
    if not hasattr(node, "_e2e_artifacts"):
        node._e2e_artifacts = []
    node._e2e_artifacts.append((title, fn))


@pytest.fixture
def redis_server(tmp_path, request):
    r = RedisServer(tmp_path / "redis")
    _artifact(request, "redis log tail", lambda: r.log_tail())
    try:
        r.start()
        yield r
    finally:
        r.stop()
        if r.proc is not None and r.proc.poll() is None:
            r.proc.kill()


@pytest.fixture
def stub(request):
    s = Stub()
    _artifact(request, "stub calls", s.summary)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def start_dtmd(redis_server, tmp_path, request):
    started = []

    def start(**env_overrides):
        env = dict(DEFAULT_ENV)
        env.update({
            "STORE_DRIVER": "redis",
            "STORE_HOST": "127.0.0.1",
            "STORE_PORT": str(redis_server.port),
            "HTTP_HOST": "127.0.0.1",
            "HTTP_PORT": str(free_port()),
        })
        env.update({k: str(v) for k, v in env_overrides.items()})
        d = Dtmd(env, tmp_path, name="dtmd%d" % (len(started) + 1))
        started.append(d)
        _artifact(request, "%s log tail (%s)" % (d.log.stem, d.log),
                  lambda d=d: d.log_tail())
        return d.start()

    try:
        yield start
    finally:
        problems = teardown_problems(started)
    # reported as an error at teardown: a crash or a sanitizer finding fails the test
    assert not problems, "\n\n".join(problems)


@pytest.fixture
def dtmd(start_dtmd):
    return start_dtmd()


@pytest.fixture
def gid(request):
    return new_gid(request.node.name)
