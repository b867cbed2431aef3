"""The raw-socket side: a minimal sendall/recv connection for setup, draining, the raw loops and the round trip."""

from __future__ import annotations

import socket
import statistics
import time

from bench.env import PRIORITY, TTR, Address

# -- the raw-socket side ------------------------------------------------------------------------------


def put_command(body: bytes) -> bytes:
    return b"put %d 0 %d %d\r\n%b\r\n" % (PRIORITY, TTR, len(body), body)


class Raw:
    """A minimal raw connection (sendall/recv) for setup, draining and the raw loops."""

    def __init__(self, addr: Address) -> None:
        self.sock = socket.create_connection(addr)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()

    def close(self) -> None:
        self.sock.close()

    def _fill(self, need: int) -> None:
        chunk = self.sock.recv(max(65536, need))
        if not chunk:
            raise ConnectionError("beanstalkd closed the connection")
        self.buf += chunk

    def line(self) -> bytes:
        while (end := self.buf.find(b"\r\n")) < 0:
            self._fill(0)
        line = bytes(self.buf[:end])
        del self.buf[: end + 2]
        return line

    def body(self, size: int) -> bytes:
        while len(self.buf) < size + 2:
            self._fill(size + 2 - len(self.buf))
        data = bytes(self.buf[:size])
        del self.buf[: size + 2]
        return data

    def command(self, data: bytes, expect: bytes) -> bytes:
        self.sock.sendall(data)
        line = self.line()
        if not line.startswith(expect):
            raise RuntimeError(f"{data[:40]!r}: unexpected reply {line!r}")
        return line

    def reserve_batch(self, count: int) -> list[bytes]:
        """Pipelined: ``count`` reserve-with-timeout 0 in one write; the ids of the jobs reserved."""
        self.sock.sendall(b"reserve-with-timeout 0\r\n" * count)
        ids: list[bytes] = []
        for _ in range(count):
            parts = self.line().split()
            if parts[0] == b"RESERVED":
                self.body(int(parts[2]))
                ids.append(parts[1])
            elif parts[0] != b"TIMED_OUT":
                raise RuntimeError(f"reserve: unexpected reply {parts!r}")
        return ids

    def delete_batch(self, ids: list[bytes]) -> None:
        """Pipelined: one write of ``delete`` commands, then every reply."""
        if not ids:
            return
        self.sock.sendall(b"".join([b"delete %b\r\n" % job_id for job_id in ids]))
        for _ in ids:
            line = self.line()
            if line != b"DELETED":
                raise RuntimeError(f"delete: unexpected reply {line!r}")


def raw_open(addr: Address, use: str | None = None, watch: str | None = None) -> Raw:
    raw = Raw(addr)
    if use is not None:
        raw.command(b"use %b\r\n" % use.encode(), b"USING")
    if watch is not None:
        raw.command(b"watch %b\r\n" % watch.encode(), b"WATCHING")
        raw.command(b"ignore default\r\n", b"WATCHING")
    return raw


def prefill(addr: Address, tube: str, payload: bytes, count: int) -> None:
    """Put ``count`` copies of ``payload`` into ``tube`` (pipelined, untimed)."""
    raw = raw_open(addr, use=tube)
    try:
        command = put_command(payload)
        done = 0
        while done < count:
            chunk = min(500, count - done)
            raw.sock.sendall(command * chunk)
            for _ in range(chunk):
                if not raw.line().startswith(b"INSERTED "):
                    raise RuntimeError("prefill: put failed")
            done += chunk
    finally:
        raw.close()


def drain(addr: Address, tube: str) -> int:
    """Delete every ready job of ``tube``; how many there were."""
    raw = raw_open(addr, watch=tube)
    total = 0
    try:
        while True:
            ids = raw.reserve_batch(500)
            raw.delete_batch(ids)
            total += len(ids)
            if len(ids) < 500:
                return total
    finally:
        raw.close()


def recv_line(sock: socket.socket, expect: bytes) -> None:
    reply = sock.recv(256)
    while not reply.endswith(b"\r\n"):
        more = sock.recv(256)
        if not more:
            raise ConnectionError("beanstalkd closed the connection")
        reply += more
    if not reply.startswith(expect):
        raise RuntimeError(f"unexpected reply {reply!r}")


def recv_job(sock: socket.socket) -> bytes:
    """Read one RESERVED reply (header and body); the job id."""
    data = sock.recv(65536)
    while (end := data.find(b"\r\n")) < 0:
        data += sock.recv(65536)
    parts = data[:end].split()
    if parts[0] != b"RESERVED":
        raise RuntimeError(f"reserve: unexpected reply {data[:end]!r}")
    need = end + 2 + int(parts[2]) + 2
    have = len(data)
    while have < need:  # the rest of the body: read and dropped
        chunk = sock.recv(need - have)
        if not chunk:
            raise ConnectionError("beanstalkd closed the connection")
        have += len(chunk)
    return parts[1]


def recv_replies(sock: socket.socket, count: int, expect: bytes) -> None:
    data = b""
    while data.count(b"\r\n") < count:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("beanstalkd closed the connection")
        data += chunk
    if data.count(expect) != count:
        raise RuntimeError(f"expected {count} {expect!r} replies: {data[:80]!r}")


def round_trip_us(addr: Address, count: int = 2000, repeats: int = 5) -> float:
    """The median time of one raw round trip (``list-tube-used``), in microseconds."""
    raw = raw_open(addr)
    sock, command = raw.sock, b"list-tube-used\r\n"
    times: list[float] = []
    try:
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(count):
                sock.sendall(command)
                recv_line(sock, b"USING ")
            times.append((time.perf_counter() - start) / count)
    finally:
        raw.close()
    return statistics.median(times) * 1e6
