"""bench/footprint.py - what a stored transaction costs Redis, per part and
per candidate layout (docs/footprint.md). No dtmd involved: a private
redis-server gets N copies of each layout, written with redis-cli --pipe,
and the cost of one transaction is Redis's INFO used_memory after minus
before, divided by N (everything counted: the key in the keyspace, its
expiry, the value, the index entries), beside MEMORY USAGE and OBJECT
ENCODING of one of them.

  /usr/bin/python3 bench/footprint.py [N [WORDS]]   N = 50000 by default;
                                                  WORDS: only layouts whose name holds them

Today's layout is copied from a finished 2-step saga dtmd stored in a bench
run (bench/stub's URLs, the bench's payloads); the candidates hold the same
information (docs/footprint.md says how each is read back).
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 50000
SHARDS = 16
TTL = 86400
URL = "http://127.0.0.1:36790"
T0 = 1796605980503  # create_time of the template (ms)


def fnv_shard(gid):
    h = 2166136261
    for c in gid.encode():
        h = ((h ^ c) * 16777619) & 0xFFFFFFFF
    return h % SHARDS


def gid_of(i):
    # the bench's gid shape: <tag>-<pid>-<hex time>-<thread>-<random>-<counter>
    return "bsaga-17460-6b160898-0-28954f-%d" % (100000 + i)


def bdef(bid, op, url, data):
    c = lambda s: "%d:%s" % (len(s), s)
    return c(bid) + c(op) + c(url) + data


def today_fields(gid, base):
    """The hash dtmd stores for a finished 2-step saga (HGETALL of a real one)."""
    u = lambda p: base + p if base else ""
    steps = json.dumps([{"action": u("/TransOut"), "compensate": u("/TransOutRevert")},
                        {"action": u("/TransIn"), "compensate": u("/TransInRevert")}],
                       separators=(",", ":"))
    pay = '{"amount":30}'
    t = str(T0)
    f = [("gid", gid), ("trans_type", "saga"), ("status", "succeed"), ("steps", steps),
         ("payloads", json.dumps([pay, pay], separators=(",", ":"))),
         ("create_time", t), ("update_time", t), ("finish_time", t),
         ("next_cron_time", str(T0 + 10000)), ("next_cron_interval", "10000"), ("wait_result", "1"),
         ("nb", "4"),
         ("b0", bdef("01", "compensate", u("/TransOutRevert"), pay)),
         ("b0.s", "prepared %s %s 0 0" % (t, t)),
         ("b1", bdef("01", "action", u("/TransOut"), pay)),
         ("b1.s", "succeed %s %s %s 0" % (t, t, t)),
         ("b2", bdef("02", "compensate", u("/TransInRevert"), pay)),
         ("b2.s", "prepared %s %s 0 0" % (t, t)),
         ("b3", bdef("02", "action", u("/TransIn"), pay)),
         ("b3.s", "succeed %s %s %s 0" % (t, t, t))]
    if base:  # the real-URL saga went through passes: these were written too
        f += [("retry_count", "0"), ("lease_until", str(T0 + 10000))]
    return f


def compact_def(base):
    """The immutable definition as one value: options, the URL prefix once,
    then per step its paths and payload (branch ids and ops follow from
    the position: step k = branch id k+1, action and compensate)."""
    pay = '{"amount":30}'
    # "v1|<type>|<options>|<url prefix>|" then per step "<action>|<compensate>|<len>:<payload>"
    steps = [("/TransOut", "/TransOutRevert"), ("/TransIn", "/TransInRevert")]
    out = "1|saga|w|%s|" % (base or "")
    for a, c in steps:
        a, c = (a, c) if base else ("", "")
        out += "%s|%s|%d:%s" % (a, c, len(pay), pay)
    return out


def compact_state(short_names):
    """The mutable state as a small hash: status, times (ms, the later ones
    as deltas from create), retry count, per-branch status letters."""
    t = str(T0)
    if short_names:
        # status, create time, the other times as ms after it, the next
        # retry's interval, per branch (b0..b3 in order) a status letter and
        # its update time as ms after the create time
        return [("s", "succeed"), ("ct", t), ("ut", "3"), ("ft", "3"), ("nc", "10003"), ("ci", "10000"),
                ("bs", "p0 s1 p0 s3")]
    return [("status", "succeed"), ("create_time", t), ("update_time", t), ("finish_time", t),
            ("next_cron_time", str(T0 + 10000)), ("next_cron_interval", "10000"),
            ("retry_count", "0"), ("lease_until", str(T0 + 10000)),
            ("b0.s", "prepared %s %s 0 0" % (t, t)), ("b1.s", "succeed %s %s %s 0" % (t, t, t)),
            ("b2.s", "prepared %s %s 0 0" % (t, t)), ("b3.s", "succeed %s %s %s 0" % (t, t, t))]


def resp(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


# ---- layouts: (name, fn(gid, i) -> [commands]) ------------------------------
def hash_cmds(key, fields, expire=True):
    flat = [x for kv in fields for x in kv]
    return [resp("HSET", key, *flat)] + ([resp("EXPIRE", key, TTL)] if expire else [])


def idx_cmds(shard, gid, fold):
    if fold:  # one zset: score = the hash's expiry time
        return [resp("ZADD", "dtmd{%d}:idx" % shard, T0 + TTL * 1000, gid)]
    return [resp("ZADD", "dtmd{%d}:idx" % shard, 0, gid),
            resp("ZADD", "dtmd{%d}:exp" % shard, T0 + TTL * 1000, gid)]


def layout(kind, base, index, expire=True):
    def make(gid):
        s = fnv_shard(gid)
        key = "dtmd{%d}:t:%s" % (s, gid)
        cmds = []
        if kind == "today":
            cmds += hash_cmds(key, today_fields(gid, base))
        elif kind == "today_no_dup":
            # one hash, nothing stored twice: no steps/payloads/gid (derived
            # from the branches and the key), branch ids/ops from position,
            # the URL prefix once ("u"): every value <= 64 bytes -> listpack
            f = [kv for kv in today_fields(gid, base) if kv[0] not in ("gid", "steps", "payloads", "nb")]
            g = []
            for k, v in f:
                if k in ("b0", "b1", "b2", "b3"):
                    path = {"b0": "/TransOutRevert", "b1": "/TransOut", "b2": "/TransInRevert",
                            "b3": "/TransIn"}[k] if base else ""
                    v = "%d:%s%s" % (len(path), path, '{"amount":30}')
                g.append((k, v))
            g.append(("u", base or ""))
            cmds += hash_cmds(key, g)
        elif kind == "one_hash_def_field":
            # one hash: the definition as one field (> 64 bytes -> hashtable)
            cmds += hash_cmds(key, [("d", compact_def(base))] + compact_state(True))
        elif kind == "one_hash_def_chunks":
            # one hash: the definition cut into <= 64-byte fields d0, d1, ...
            d = compact_def(base)
            chunks = [("d%d" % (i // 64), d[i:i + 64]) for i in range(0, len(d), 64)]
            cmds += hash_cmds(key, chunks + compact_state(True), expire)
        elif kind == "def_string_state_hash":
            # two keys: the definition as a string written once, the state a listpack hash
            cmds += [resp("SET", "dtmd{%d}:d:%s" % (s, gid), compact_def(base), "EX", TTL)]
            cmds += hash_cmds(key, compact_state(True))
        elif kind == "def_string_state_hash_long_names":
            cmds += [resp("SET", "dtmd{%d}:d:%s" % (s, gid), compact_def(base), "EX", TTL)]
            cmds += hash_cmds(key, compact_state(False))
        elif kind == "none":
            pass
        if index is not None:
            cmds += idx_cmds(s, gid, index == "fold")
        return cmds, key
    return make


LAYOUTS = [
    # name, kind, URL base ('' = empty URLs), index: None / 'two' / 'fold'
    ("real URLs: today (hash + idx + exp)", "today", URL, "two"),
    ("real URLs: today's hash alone", "today", URL, None),
    ("idx + exp zset entries alone", "none", URL, "two"),
    ("idx entry alone (exp folded in)", "none", URL, "fold"),
    ("real URLs: today's fields, nothing twice, URL prefix once (listpack)", "today_no_dup", URL, "two"),
    ("real URLs: one hash, definition in one field", "one_hash_def_field", URL, "two"),
    ("real URLs: one hash, definition in <= 64-byte chunks", "one_hash_def_chunks", URL, "two"),
    ("real URLs: definition string + state hash (long names)", "def_string_state_hash_long_names", URL, "two"),
    ("real URLs: definition string + state hash (short names)", "def_string_state_hash", URL, "two"),
    ("real URLs: one hash, definition in chunks, exp folded into idx", "one_hash_def_chunks", URL, "fold"),
    ("real URLs: definition string + state hash, exp folded into idx", "def_string_state_hash", URL, "fold"),
    ("real URLs: one hash, definition in chunks, exp folded, no EXPIRE (deleted by the trimmer)",
     "one_hash_def_chunks", URL, "fold", False),
    ("real URLs: today's fields, Redis hash-max-listpack-value 1024 (configuration only)", "today", URL, "two",
     True, 1024),
    ("empty URLs: today (hash + idx + exp)", "today", "", "two"),
    ("empty URLs: today's hash alone", "today", "", None),
    ("empty URLs: one hash, definition in chunks", "one_hash_def_chunks", "", "two"),
    ("empty URLs: one hash, definition in chunks, exp folded", "one_hash_def_chunks", "", "fold"),
    ("empty URLs: definition string + state hash, exp folded", "def_string_state_hash", "", "fold"),
    ("empty URLs: one hash, definition in chunks, exp folded, no EXPIRE", "one_hash_def_chunks", "", "fold", False),
]


def main():
    tmp = tempfile.mkdtemp(prefix="dtmd-footprint.")
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    srv = subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                            "--appendonly", "no", "--dir", tmp], stdout=subprocess.DEVNULL)
    cli = ["redis-cli", "-p", str(port)]
    try:
        for _ in range(100):
            if subprocess.run(cli + ["ping"], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)

        def info(field):
            out = subprocess.run(cli + ["INFO"], capture_output=True, text=True).stdout
            for line in out.splitlines():
                if line.startswith(field + ":"):
                    return float(line.split(":")[1])

        def cpu():
            return info("used_cpu_sys") + info("used_cpu_user")

        rows = []
        only = sys.argv[2] if len(sys.argv) > 2 else ""
        for name, kind, base, index, *opt in LAYOUTS:
            if only not in name:
                continue
            expire = opt[0] if opt else True
            lp_value = str(opt[1]) if len(opt) > 1 else "64"
            subprocess.run(cli + ["CONFIG", "SET", "hash-max-listpack-value", lp_value], capture_output=True)
            subprocess.run(cli + ["FLUSHALL"], capture_output=True)
            # the shard zsets exist before (their fixed cost is not per transaction)
            for sh in range(SHARDS):
                for z in ("idx", "exp"):
                    subprocess.run(cli + ["ZADD", "dtmd{%d}:%s" % (sh, z), "0", "x"], capture_output=True)
            m0, d0, c0 = info("used_memory"), info("used_memory_dataset"), cpu()
            make = layout(kind, base, index, expire)
            buf, key = [], None
            for i in range(N):
                cmds, key = make(gid_of(i))
                buf.extend(cmds)
            p = subprocess.run(cli + ["--pipe"], input=b"".join(buf), capture_output=True)
            assert p.returncode == 0, p.stderr
            m1, d1, c1 = info("used_memory"), info("used_memory_dataset"), cpu()
            ask = lambda *a: subprocess.run(cli + list(a), capture_output=True, text=True).stdout.strip()
            mu, enc = ask("MEMORY", "USAGE", key, "SAMPLES", "0"), ask("OBJECT", "ENCODING", key)
            if kind == "none":
                mu, enc = "-", "-"
            # Redis CPU to take the commands in (one HSET, EXPIRE and ZADDs a
            # transaction, pipelined: parsing included; scripts cost more)
            rows.append((name, round((m1 - m0) / N), round((d1 - d0) / N), mu, enc,
                         round((c1 - c0) * 1e6 / N, 1)))
            print("| %s | %s | %s | %s | %s | %s |" % rows[-1], flush=True)
    finally:
        srv.terminate()
        srv.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
