#!/usr/bin/env python3
"""Mixed hostile-and-normal client for benches/http/soak.sh: for DURATION seconds, loops
over pipelined, chunked, aborted (reset mid-body and mid-response), slow and keep-alive
requests against ADDR, and prints what it did as one line of key=value pairs."""

import os
import socket
import struct
import sys
import time

host, port = sys.argv[1].rsplit(":", 1)
port = int(port)
duration = float(sys.argv[2]) if len(sys.argv) > 2 else 60.0
counts = {"pipelined": 0, "chunked": 0, "aborted": 0, "slow": 0, "keepalive": 0, "errors": 0}


def connect():
    s = socket.create_connection((host, port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_until(s, marker, count=1):
    data = b""
    while data.count(marker) < count:
        chunk = s.recv(65536)
        if not chunk:
            raise IOError("closed early")
        data += chunk
    return data


def reset(s):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def pipelined():
    with connect() as s:
        s.sendall(b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n" * 16)
        read_until(s, b"Hello, World!", 16)


def chunked():
    with connect() as s:
        body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in [b"a" * 5000, b"b" * 100, b"c"])
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                  b"Connection: close\r\n\r\n" + body + b"0\r\n\r\n")
        read_until(s, b"0\r\n\r\n")


def aborted(mid_response):
    s = connect()
    if mid_response:
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 200000\r\n\r\n" + b"x" * 200000)
        s.recv(1000)
    else:
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000)
    reset(s)


def slow():
    with connect() as s:
        for piece in [b"GET /plain", b"text HTTP/1.1\r\n", b"Host: a\r\n", b"Connection: close\r\n\r\n"]:
            s.sendall(piece)
            time.sleep(0.05)
        read_until(s, b"Hello, World!")


def keepalive():
    with connect() as s:
        for _ in range(20):
            s.sendall(b"GET /json HTTP/1.1\r\nHost: a\r\n\r\n")
            read_until(s, b"}")


steps = [("pipelined", pipelined), ("chunked", chunked), ("aborted", lambda: aborted(False)),
         ("aborted", lambda: aborted(True)), ("slow", slow), ("keepalive", keepalive)]
end = time.time() + duration
while time.time() < end:
    for name, step in steps:
        try:
            step()
            counts[name] += 1
        except (OSError, IOError):
            counts["errors"] += 1
print(" ".join(f"{k}={v}" for k, v in counts.items()))
