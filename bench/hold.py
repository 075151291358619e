"""bench/hold.py - transactions that stay in flight, for measuring dtmd's
memory per in-flight transaction (bench/run.sh, bench/soak.sh).

  hold.py serve PORT                     a service that accepts connections and
                                         reads them, never answers: a branch
                                         that hangs
  hold.py submit DTMD_PORT HOLD_PORT N LABEL
                                         submit N 2-step sagas (gid
                                         inflight-LABEL-<i>) whose branches
                                         are on the hold service, 8 connections
"""

import http.client
import json
import selectors
import socket
import sys
import threading


def serve(port):
    sel = selectors.DefaultSelector()
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(4096)
    srv.setblocking(False)
    sel.register(srv, selectors.EVENT_READ)
    while True:
        for key, _ in sel.select():
            if key.fileobj is srv:
                c, _ = srv.accept()
                c.setblocking(False)
                sel.register(c, selectors.EVENT_READ)
            else:
                try:
                    data = key.fileobj.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    sel.unregister(key.fileobj)
                    key.fileobj.close()


def submit(dport, hport, n, label):
    hold = "http://127.0.0.1:%d" % hport

    def work(lo, hi):
        c = http.client.HTTPConnection("127.0.0.1", dport, timeout=30)
        for i in range(lo, hi):
            body = json.dumps({"gid": "inflight-%s-%d" % (label, i), "trans_type": "saga",
                               "steps": [{"action": hold + "/TransOut", "compensate": hold + "/TransOutRevert"},
                                         {"action": hold + "/TransIn", "compensate": hold + "/TransInRevert"}],
                               "payloads": ['{"amount":30}', '{"amount":30}']})
            c.request("POST", "/api/dtmsvr/submit", body, {"Content-Type": "application/json"})
            r = c.getresponse()
            r.read()
            assert r.status == 200, (i, r.status)

    ths = [threading.Thread(target=work, args=(k * n // 8, (k + 1) * n // 8)) for k in range(8)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(int(sys.argv[2]))
    else:
        submit(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
