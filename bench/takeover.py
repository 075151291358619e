"""bench/takeover.py - how long a transaction waits after its process dies.

A saga's second step hangs (request_timeout 20 s, retry_interval 3 s, the
shape issue 18 measured); dtmd (default configuration) is SIGKILLed half a
second into the call and restarted at once; the time from the kill to the
stored `succeed` is printed, five times. The bound is docs/failover.md's
(liveness TTL 2 s + one refresh period); before liveness it was the dead
hold's 2 x request_timeout + 1 s. Run: /usr/bin/python3 bench/takeover.py
(needs ./dtmd and redis-server; not part of make bench).
"""
import pathlib, signal, statistics, sys, tempfile, threading, time
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "test" / "e2e"))
from dtmtest import RedisServer, Stub, Dtmd, free_port, saga, new_gid, SUCCESS_BODY, S
tmp = tempfile.mkdtemp()
r = RedisServer(tmp + "/redis"); r.start()
stub = Stub(); threading.Thread(target=stub.server.serve_forever, daemon=True).start()
env = {"STORE_DRIVER": "redis", "STORE_HOST": "127.0.0.1", "STORE_PORT": str(r.port),
       "HTTP_HOST": "127.0.0.1", "HTTP_PORT": str(free_port()), "LOG_LEVEL": "info"}
d = Dtmd(env, tmp).start()
res = []
for i in range(5):
    g = new_gid("m")
    stub.plan("In", [(200, SUCCESS_BODY, 60)])
    st, _ = d.submit(saga(g, [(stub.url("Out"), stub.url("OutC")), (stub.url("In"), stub.url("InC"))],
                          request_timeout=20, retry_interval=3))
    stub.wait_calls("In", 2 * i + 1)
    time.sleep(0.5)
    d.kill(signal.SIGKILL); t0 = time.monotonic(); d.start()
    while d.status(g) != S: time.sleep(0.02)
    res.append(time.monotonic() - t0)
print("kill+restart -> succeed (s):", ["%.2f" % x for x in res], "median %.2f" % statistics.median(res))
d.stop(); r.stop(); stub.close()
