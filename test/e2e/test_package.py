"""Installing and packaging dtmd: `make install`, `make deb`, the systemd unit
and `make run` (docs/operations.md).

The .deb is built with the repository's Makefile, checked with dpkg-deb (and
lintian when installed), extracted into a temporary root, and the extracted
dtmd is run with the extracted configuration against a private Redis. The unit
is checked with `systemd-analyze verify` and its ExecStartPre/ExecStart lines
are run as an unprivileged user against the file modes the package installs.
"""

import os
import pwd
import grp
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

from dtmtest import REPO, Resp, free_port, http_request, new_gid, saga, wait_until

VERSION = re.search(r'DTMD_VERSION "v?([^"]+)"', (REPO / "src" / "version.h").read_text()).group(1)


def run(cmd, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 300)
    return subprocess.run(cmd, **kw)


@pytest.fixture(scope="module")
def deb():
    """build/dtmd_<version>_<arch>.deb, built once for the module."""
    if not shutil.which("dpkg-deb") or not shutil.which("fakeroot"):
        pytest.skip("dpkg-deb/fakeroot missing (make deps installs dpkg-dev and fakeroot)")
    r = run(["make", "--no-print-directory", "deb"], cwd=str(REPO))
    assert r.returncode == 0, r.stdout + r.stderr
    path = REPO / r.stdout.strip().splitlines()[-1]
    assert path.name == "dtmd_%s_%s.deb" % (VERSION, run(["dpkg", "--print-architecture"]).stdout.strip())
    return path


@pytest.fixture
def root(deb):
    """The package extracted into a fresh directory every user may traverse."""
    d = Path(tempfile.mkdtemp(prefix="dtmd-pkg-"))
    os.chmod(d, 0o755)
    try:
        r = run(["dpkg-deb", "-x", str(deb), str(d)])
        assert r.returncode == 0, r.stderr
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def unit_commands(unit_text, key):
    return [shlex.split(ln.split("=", 1)[1]) for ln in unit_text.splitlines()
            if ln.startswith(key + "=")]


def rooted(argv, root):
    """A unit command line with its absolute file paths moved under root."""
    out = []
    for a in argv:
        if a.startswith("/usr/bin/") or a.startswith("/etc/dtmd"):
            a = str(root) + a
        out.append(a)
    return out


class Proc:
    def __init__(self, argv, env, log, preexec=None):
        self.log = log
        with open(log, "ab") as f:
            self.p = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=f,
                                      stderr=subprocess.STDOUT, preexec_fn=preexec)

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                return self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(5)
                raise AssertionError("dtmd did not stop on SIGTERM")
        return self.p.returncode


def serve_and_commit(argv, env, log, redis_server, preexec=None):
    """Start dtmd, run one saga through it, stop it: the store is the private Redis."""
    port = int(env["HTTP_PORT"])
    d = Proc(argv, env, log, preexec)
    try:
        def up():
            assert d.p.poll() is None, "dtmd exited %s:\n%s" % (d.p.returncode, log.read_text())
            try:
                return http_request("GET", "http://127.0.0.1:%d/api/ping" % port, timeout=1)[0] == 200
            except OSError:
                return False
        wait_until(up, 10, msg="the packaged dtmd answers /api/ping")
        gid = new_gid("pkg")
        st, body, _ = http_request("POST", "http://127.0.0.1:%d/api/dtmsvr/submit" % port,
                                   body=saga(gid, [("", ""), ("", "")], wait_result=True))
        assert st == 200, body
        st, q, _ = http_request("GET", "http://127.0.0.1:%d/api/dtmsvr/query?gid=%s" % (port, gid))
        assert q["transaction"]["status"] == "succeed"
        assert redis_server.keys_containing(gid), "the transaction is not in the private Redis"
    finally:
        assert d.stop() == 0, log.read_text()


def dtmd_env(redis_server, **extra):
    env = dict(os.environ)
    env.update({"STORE_HOST": "127.0.0.1", "STORE_PORT": str(redis_server.port),
                "HTTP_HOST": "127.0.0.1", "HTTP_PORT": str(free_port())})
    env.update(extra)
    return env


# --------------------------------------------------------------------------

def test_deb_metadata_and_contents(deb):
    info = run(["dpkg-deb", "-f", str(deb)]).stdout
    fields = dict(re.findall(r"^([A-Za-z-]+): (.*)$", info, re.M))
    assert fields["Package"] == "dtmd"
    assert fields["Version"] == VERSION
    for lib in ("libc6", "libevent", "libhiredis", "libcurl", "libyajl", "libyaml"):
        assert lib in fields["Depends"], fields["Depends"]

    listing = run(["dpkg-deb", "-c", str(deb)]).stdout
    entries = {}
    for ln in listing.splitlines():
        parts = ln.split()
        entries[parts[-1].lstrip(".").rstrip("/") or "/"] = (parts[0], parts[1])
    expect = {
        "/usr/bin/dtmd": "-rwxr-xr-x",
        "/etc/dtmd": "drwxr-x---",
        "/etc/dtmd/conf.yml": "-rw-r-----",
        "/lib/systemd/system/dtmd.service": "-rw-r--r--",
        "/usr/lib/sysusers.d/dtmd.conf": "-rw-r--r--",
        "/etc/logrotate.d/dtmd": "-rw-r--r--",
        "/usr/share/doc/dtmd/README.md.gz": "-rw-r--r--",
        "/usr/share/doc/dtmd/copyright": "-rw-r--r--",
        "/usr/share/doc/dtmd/grafana-dashboard.json": "-rw-r--r--",
        "/usr/share/doc/dtmd/docs/operations.md": "-rw-r--r--",
        "/usr/share/doc/dtmd/docs/configuration.md": "-rw-r--r--",
    }
    for path, mode in expect.items():
        assert path in entries, "%s missing from the package:\n%s" % (path, listing)
        assert entries[path] == (mode, "root/root"), (path, entries[path])

    with tempfile.TemporaryDirectory() as ctl:
        assert run(["dpkg-deb", "-e", str(deb), ctl]).returncode == 0
        conffiles = Path(ctl, "conffiles").read_text().split()
        assert "/etc/dtmd/conf.yml" in conffiles and "/etc/logrotate.d/dtmd" in conffiles
        postinst = Path(ctl, "postinst").read_text()
    # The service user exists and owns the configuration by group; the unit
    # is enabled but a fresh installation starts nothing.
    assert "systemd-sysusers dtmd.conf" in postinst and "useradd --system" in postinst
    assert "chown root:dtmd /etc/dtmd /etc/dtmd/conf.yml" in postinst
    assert "deb-systemd-helper enable dtmd.service" in postinst
    assert not re.search(r"(systemctl|deb-systemd-invoke)\s+(start|restart)\b", postinst)
    assert re.search(r'if \[ -n "\$2" \].*\n\s*deb-systemd-invoke try-restart', postinst)


def test_deb_lintian(deb):
    if not shutil.which("lintian"):
        pytest.skip("lintian is not installed (make deps installs it)")
    r = run(["lintian", "--fail-on", "error,warning", "--suppress-tags", "no-manual-page", str(deb)])
    assert r.returncode == 0, r.stdout + r.stderr


def test_extracted_package_runs_against_private_redis(root, redis_server, tmp_path):
    conf = root / "etc/dtmd/conf.yml"
    binary = root / "usr/bin/dtmd"
    env = dtmd_env(redis_server)
    r = run([str(binary), "--check-config", "-c", str(conf)], env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Store.Port" in r.stdout and str(redis_server.port) in r.stdout
    serve_and_commit([str(binary), "-c", str(conf)], env, tmp_path / "pkg.log", redis_server)


def verify_unit(unit_path, root, tmp_path, binary="/usr/bin/dtmd"):
    """systemd-analyze verify on the unit with its binary's path moved under root."""
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed (make deps installs systemd)")
    text = unit_path.read_text()
    assert binary in text
    text = text.replace(binary, str(root) + binary)
    d = tmp_path / "unit"
    d.mkdir()
    (d / "dtmd.service").write_text(text)
    r = run(["systemd-analyze", "verify", str(d / "dtmd.service")])
    assert r.returncode == 0 and not r.stderr.strip() and not r.stdout.strip(), r.stdout + r.stderr


def test_unit_verifies(root, tmp_path):
    unit = root / "lib/systemd/system/dtmd.service"
    text = unit.read_text()
    assert not re.search(r"^DynamicUser=", text, re.M)
    assert re.search(r"^User=dtmd$", text, re.M) and re.search(r"^Group=dtmd$", text, re.M)
    # Documentation= names files the package installs.
    for doc in re.findall(r"^Documentation=file://(\S+)$", text, re.M):
        assert (root / doc.lstrip("/")).is_file(), doc
    verify_unit(unit, root, tmp_path)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to change owners and drop to nobody")
def test_unit_commands_run_as_unprivileged_service_user(root, redis_server, tmp_path):
    """ExecStartPre/ExecStart as the unit runs them: an unprivileged uid whose
    group owns the configuration (the postinst's root:dtmd, with nogroup
    standing in for dtmd), against the modes the package ships."""
    unit = (root / "lib/systemd/system/dtmd.service").read_text()
    pre = unit_commands(unit, "ExecStartPre")
    start = unit_commands(unit, "ExecStart")
    assert len(pre) == 1 and len(start) == 1
    uid = pwd.getpwnam("nobody").pw_uid
    gid = grp.getgrnam("nogroup").gr_gid
    other_gid = grp.getgrnam("daemon").gr_gid

    def as_user(group):
        def drop():
            os.setgroups([])
            os.setgid(group)
            os.setuid(uid)
        return drop

    env = dtmd_env(redis_server)
    # As shipped (root:root 750/640) a service user cannot read it: the
    # postinst's chown is what makes the unit start, as it would not with
    # DynamicUser and root-owned files.
    r = run(rooted(pre[0], root), env=env, preexec_fn=as_user(gid))
    assert r.returncode != 0 and "conf.yml" in (r.stdout + r.stderr), r.stdout + r.stderr
    os.chown(root / "etc/dtmd", 0, gid)
    os.chown(root / "etc/dtmd/conf.yml", 0, gid)
    r = run(rooted(pre[0], root), env=env, preexec_fn=as_user(gid))
    assert r.returncode == 0, r.stdout + r.stderr
    # Another unprivileged user still cannot read it.
    r = run(rooted(pre[0], root), env=env, preexec_fn=as_user(other_gid))
    assert r.returncode != 0
    serve_and_commit(rooted(start[0], root), env, tmp_path / "unit.log", redis_server,
                     preexec=as_user(gid))


def test_make_install_prefix_destdir(tmp_path):
    dest = tmp_path / "dest"
    r = run(["make", "--no-print-directory", "install", "DESTDIR=%s" % dest, "PREFIX=/opt/dtmd"],
            cwd=str(REPO))
    assert r.returncode == 0, r.stdout + r.stderr
    for path, mode in {"opt/dtmd/bin/dtmd": 0o755, "etc/dtmd": 0o750, "etc/dtmd/conf.yml": 0o640,
                       "opt/dtmd/lib/systemd/system/dtmd.service": 0o644,
                       "opt/dtmd/lib/sysusers.d/dtmd.conf": 0o644,
                       "etc/logrotate.d/dtmd": 0o644,
                       "opt/dtmd/share/doc/dtmd/README.md": 0o644,
                       "opt/dtmd/share/doc/dtmd/conf.sample.yml": 0o644,
                       "opt/dtmd/share/doc/dtmd/grafana-dashboard.json": 0o644,
                       "opt/dtmd/share/doc/dtmd/docs/operations.md": 0o644,
                       "opt/dtmd/share/doc/dtmd/docs/protocol.md": 0o644}.items():
        st = (dest / path).stat()
        assert st.st_mode & 0o777 == mode, (path, oct(st.st_mode))
    unit = (dest / "opt/dtmd/lib/systemd/system/dtmd.service").read_text()
    assert "ExecStart=/opt/dtmd/bin/dtmd -c /etc/dtmd/conf.yml" in unit
    assert "Documentation=file:///opt/dtmd/share/doc/dtmd/README.md" in unit
    assert not [ln for ln in unit.splitlines() if "/usr/local" in ln and not ln.startswith("#")]
    verify_unit(dest / "opt/dtmd/lib/systemd/system/dtmd.service", dest, tmp_path,
                binary="/opt/dtmd/bin/dtmd")
    # A second install keeps the administrator's configuration.
    conf = dest / "etc/dtmd/conf.yml"
    conf.write_text("HttpPort: 4000\n")
    r = run(["make", "--no-print-directory", "install", "DESTDIR=%s" % dest, "PREFIX=/opt/dtmd"],
            cwd=str(REPO))
    assert r.returncode == 0, r.stdout + r.stderr
    assert conf.read_text() == "HttpPort: 4000\n"


# --------------------------------------------------------------------------
# make run (conf/run.sh)

def test_run_sh_uses_its_own_redis_when_6379_is_taken(tmp_path):
    """Whatever answers on 6379 (here: a Redis this test starts there, when the
    port is free), conf/run.sh starts its own redis-server on a free port, says
    so in its first line, and stops it with dtmd."""
    import socket
    foreign = None
    probe = socket.socket()
    try:
        probe.bind(("127.0.0.1", 6379))
        probe.close()
        foreign = subprocess.Popen(["redis-server", "--port", "6379", "--bind", "127.0.0.1",
                                    "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: _ping(6379), 10, msg="the foreign redis on 6379")
    except OSError:
        probe.close()  # 6379 is taken already: the case under test
    port = free_port()
    env = dict(os.environ, HTTP_PORT=str(port), HTTP_HOST="127.0.0.1", RUN_DIR=str(tmp_path / "var"))
    env.pop("REDIS", None)
    out = tmp_path / "run.out"
    with open(out, "wb") as f:
        p = subprocess.Popen(["sh", str(REPO / "conf" / "run.sh")], env=env, stdout=f,
                             stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until(lambda: _http_ok(port), 15, msg="dtmd started by run.sh")
        first = out.read_text().splitlines()[0]
        m = re.match(r"run\.sh: private redis-server on 127\.0\.0\.1:(\d+) \(6379 is taken\)", first)
        assert m, first
        rport = int(m.group(1))
        assert rport != 6379
        gid = new_gid("run")
        st, body, _ = http_request("POST", "http://127.0.0.1:%d/api/dtmsvr/submit" % port,
                                   body=saga(gid, [("", "")], wait_result=True))
        assert st == 200, body
        with Resp("127.0.0.1", rport) as r:
            assert any(gid.encode() in k if isinstance(k, bytes) else gid in k
                       for k in r("KEYS", "*"))
    finally:
        os.killpg(p.pid, signal.SIGINT)
        p.wait(15)
        if foreign is not None:
            foreign.terminate()
            foreign.wait(10)
    wait_until(lambda: not _ping(rport), 10, msg="run.sh stopped its redis-server")


def _ping(port):
    try:
        with Resp("127.0.0.1", port, timeout=1) as r:
            return r("PING") == "PONG"
    except Exception:  # noqa: BLE001
        return False


def _http_ok(port):
    try:
        return http_request("GET", "http://127.0.0.1:%d/api/ping" % port, timeout=1)[0] == 200
    except OSError:
        return False


def test_run_sh_uses_the_redis_it_is_given(redis_server, tmp_path):
    """`make run REDIS=host:port`: that Redis, no redis-server of its own, and
    it is left running when dtmd stops."""
    port = free_port()
    env = dict(os.environ, HTTP_PORT=str(port), HTTP_HOST="127.0.0.1", RUN_DIR=str(tmp_path / "var"),
               REDIS="127.0.0.1:%d" % redis_server.port)
    out = tmp_path / "run.out"
    with open(out, "wb") as f:
        p = subprocess.Popen(["sh", str(REPO / "conf" / "run.sh")], env=env, stdout=f,
                             stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until(lambda: _http_ok(port), 15, msg="dtmd started by run.sh")
        first = out.read_text().splitlines()[0]
        assert first.startswith("run.sh: using the Redis at 127.0.0.1:%d" % redis_server.port), first
        gid = new_gid("run")
        st, body, _ = http_request("POST", "http://127.0.0.1:%d/api/dtmsvr/submit" % port,
                                   body=saga(gid, [("", "")], wait_result=True))
        assert st == 200, body
        assert redis_server.keys_containing(gid)
        assert not (tmp_path / "var" / "redis.log").exists()
    finally:
        os.killpg(p.pid, signal.SIGINT)
        p.wait(15)
    assert _ping(redis_server.port)


# --------------------------------------------------------------------------
# The package installed for real with dpkg: its maintainer scripts run on this
# machine (the dtmd user, the configuration's owner and modes, the unit enabled
# and not started), the unit's command lines start as the dtmd user against
# the installed files, and purging takes it all away again. It changes the
# machine, so it runs only when asked (.ci/run asks: CI machines are
# throw-away) and never over a dtmd package installed already.

INSTALL_ASKED = os.environ.get("DTMD_TEST_DPKG_INSTALL") == "1"


def processes_of(uid):
    found = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                if os.stat("/proc/" + p).st_uid == uid:
                    found.append(int(p))
            except OSError:
                pass
    return found


def dpkg_status(name):
    r = run(["dpkg-query", "-W", "-f=${Status}", name])
    return r.stdout.strip() if r.returncode == 0 else ""


@pytest.mark.skipif(not INSTALL_ASKED, reason="installs on this machine: DTMD_TEST_DPKG_INSTALL=1 "
                    "(set by .ci/run) asks for it")
@pytest.mark.skipif(os.geteuid() != 0, reason="dpkg -i needs root")
def test_dpkg_install_start_and_purge(deb, redis_server, tmp_path):
    if "installed" in dpkg_status("dtmd"):
        pytest.skip("a dtmd package is installed here already: left alone")
    wants = Path("/etc/systemd/system/multi-user.target.wants/dtmd.service")
    try:
        r = run(["dpkg", "-i", str(deb)], env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        assert r.returncode == 0, r.stdout + r.stderr
        assert dpkg_status("dtmd") == "install ok installed"
        # postinst: a system user, the configuration readable by its group only
        user = pwd.getpwnam("dtmd")
        assert user.pw_uid < 1000 and user.pw_shell.endswith("nologin"), user
        group = grp.getgrnam("dtmd").gr_gid
        for path, mode in {"/etc/dtmd": 0o750, "/etc/dtmd/conf.yml": 0o640}.items():
            st = os.stat(path)
            assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (0, group, mode), (path, st)
        # the unit enabled, nothing started
        assert wants.is_symlink(), "the unit is not enabled"
        assert not processes_of(user.pw_uid), "something runs as dtmd already"
        unit = Path("/lib/systemd/system/dtmd.service").read_text()
        pre, start = unit_commands(unit, "ExecStartPre"), unit_commands(unit, "ExecStart")
        assert len(pre) == 1 and len(start) == 1 and Path(start[0][0]).is_file(), start

        def as_dtmd():
            os.setgroups([])
            os.setgid(group)
            os.setuid(user.pw_uid)
        env = dtmd_env(redis_server)
        r = run(pre[0], env=env, preexec_fn=as_dtmd)
        assert r.returncode == 0, r.stdout + r.stderr
        serve_and_commit(start[0], env, tmp_path / "installed.log", redis_server, preexec=as_dtmd)
        # purge: the files, the configuration and the enablement go; the user stays
        r = run(["dpkg", "--purge", "dtmd"])
        assert r.returncode == 0, r.stdout + r.stderr
        assert dpkg_status("dtmd") in ("", "unknown ok not-installed"), dpkg_status("dtmd")
        assert not Path(start[0][0]).exists() and not Path("/etc/dtmd").exists()
        assert not wants.exists() and not wants.is_symlink()
    finally:
        if dpkg_status("dtmd"):
            run(["dpkg", "--purge", "dtmd"])
