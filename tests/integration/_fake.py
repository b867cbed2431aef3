"""A scriptable loopback stand-in for beanstalkd, for what a real server cannot do on demand:
stray replies, replies that break the protocol, a failing restore.

Each command line (and a ``put``'s body) goes to ``answer(line, body)``, which
returns the bytes to send back (``b""``: nothing; ``None``: close the
connection). Without an ``answer``, or where it returns ``NotImplemented``, a
minimal beanstalkd answers (``put`` numbers jobs 1, 2, ...). ``inject(data)``
sends unsolicited bytes on the newest connection.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from typing import BinaryIO

#: Longest the fake server's teardown and its waits take.
PATIENCE = 5.0


class LoopbackServer:
    """The scaffold every fake server here shares: a listener on 127.0.0.1, a thread per
    connection running ``serve(conn, f)`` (``f`` reads it), and a bounded teardown."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.host = "127.0.0.1"
        self.port: int = self.listener.getsockname()[1]
        self.accepted = 0
        self.closed = 0  # connections that ended (the client closed them, or the server did)
        self._conns: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def serve(self, conn: socket.socket, f: BinaryIO) -> None:
        raise NotImplementedError

    @property
    def live(self) -> int:
        """Connections open now."""
        return self.accepted - self.closed

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:  # closed: stop serving
                return
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            with self._lock:
                self.accepted += 1
                self._conns.append(conn)
                self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            with conn, conn.makefile("rb") as f:
                self.serve(conn, f)
        except OSError:
            pass
        finally:
            with self._lock:
                self.closed += 1

    def inject(self, data: bytes) -> None:
        """Send ``data`` on the newest connection, unasked."""
        with self._lock:
            conn = self._conns[-1]
        conn.sendall(data)

    def wait_closed(self, live: int = 0) -> None:
        """Until only ``live`` connections are open (AssertionError after PATIENCE seconds)."""
        deadline = time.monotonic() + PATIENCE
        while self.live > live:
            assert time.monotonic() < deadline, f"{self.live} connection(s) still open, expected {live}"
            time.sleep(0.01)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept (close alone does not, on Linux)
        self.listener.close()
        with self._lock:
            conns, threads = list(self._conns), list(self._threads)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._thread.join(PATIENCE)
        for thread in threads:
            thread.join(PATIENCE)
        assert not self._thread.is_alive() and not any(t.is_alive() for t in threads)


class FakeServer(LoopbackServer):
    """Answers each command line (and a ``put``'s body) with ``answer(line, body)``, else ``default``.

    ``close_after``: the connection is closed after each answer.
    """

    def __init__(
        self, answer: Callable[[str, bytes | None], object] | None = None, *, close_after: bool = False
    ) -> None:
        self.answer = answer
        self.close_after = close_after
        self.log: list[str] = []  # every command line received, in order
        self.next_id = 0
        super().__init__()

    def serve(self, conn: socket.socket, f: BinaryIO) -> None:
        while line := f.readline(1000):
            text = line.rstrip(b"\r\n").decode("ascii", "replace")
            parts = text.split()
            body = None
            if parts and parts[0] == "put" and len(parts) == 5:
                body = f.read(int(parts[4]) + 2)[:-2]
            with self._lock:
                self.log.append(text)
            if parts and parts[0] == "quit":
                return
            out = self.answer(text, body) if self.answer is not None else NotImplemented
            if out is NotImplemented:
                out = self.default(parts)
            if out is None:
                return
            assert isinstance(out, bytes)
            if out:
                conn.sendall(out)
            if self.close_after:
                return

    def short_log(self) -> list[str]:
        """The log, each line cut to its command and first argument."""
        with self._lock:
            return [" ".join(line.split()[:2]) for line in self.log]

    def default(self, parts: list[str]) -> bytes:
        """What a minimal beanstalkd answers."""
        command = parts[0] if parts else ""
        if command == "put":
            self.next_id += 1
            return b"INSERTED %d\r\n" % self.next_id
        if command == "use":
            return b"USING %s\r\n" % parts[1].encode()
        if command in ("watch", "ignore"):
            return b"WATCHING 1\r\n"
        if command == "delete":
            return b"DELETED\r\n"
        if command == "reserve-with-timeout":
            return b"TIMED_OUT\r\n"
        if command == "list-tube-used":
            return b"USING default\r\n"
        return b"UNKNOWN_COMMAND\r\n"

    def commands(self, name: str) -> int:
        """How many commands named ``name`` arrived."""
        with self._lock:
            return sum(1 for line in self.log if line.split(" ", 1)[0] == name)
