"""bench/stub.py - the business service for the benchmark.

Answers every request with 200 {"dtm_result":"SUCCESS"} over HTTP/1.1 with
keep-alive, so dtmd's branch calls always succeed and cost the stub as
little as possible. A raw asyncio protocol (no http.server) keeps it fast
enough not to be the bottleneck for a few thousand branch calls a second.
GET /__count answers the number of requests served so far (the benchmark
reads it to report how many branch calls dtmd made).

usage: python3 stub.py PORT
"""

import asyncio
import signal
import sys

BODY = b'{"dtm_result":"SUCCESS"}'
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
    + str(len(BODY)).encode()
    + b"\r\n\r\n"
    + BODY
)
served = 0


class Stub(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        self.buf = b""
        self.body_left = -1  # bytes of the current body still to skip; -1 = in headers
        self.close_after = False
        self.counting = False

    def data_received(self, data):
        global served
        self.buf += data
        while True:
            if self.body_left < 0:
                end = self.buf.find(b"\r\n\r\n")
                if end < 0:
                    if len(self.buf) > 65536:
                        self.transport.close()
                    return
                head = self.buf[:end].lower()
                self.buf = self.buf[end + 4 :]
                self.body_left = 0
                self.counting = head.startswith(b"get /__count ")
                self.close_after = b"\r\nconnection: close" in head
                for line in head.split(b"\r\n")[1:]:
                    if line.startswith(b"content-length:"):
                        self.body_left = int(line[15:].strip() or b"0")
                    elif line.startswith(b"expect:") and b"100-continue" in line:
                        self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            if len(self.buf) < self.body_left:
                self.body_left -= len(self.buf)
                self.buf = b""
                return
            self.buf = self.buf[self.body_left :]
            self.body_left = -1
            if self.counting:
                text = str(served).encode()
                self.transport.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
                    + str(len(text)).encode()
                    + b"\r\n\r\n"
                    + text
                )
            else:
                served += 1
                self.transport.write(RESPONSE)
            if self.close_after:
                self.transport.close()
                return


async def main(port):
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    server = await loop.create_server(Stub, "127.0.0.1", port, backlog=1024, reuse_address=True)
    async with server:
        await stop


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
