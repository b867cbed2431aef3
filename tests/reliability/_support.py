"""Helpers shared by the reliability tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

from beanstalkm import Connection

T = TypeVar("T")

#: Slack allowed on top of a timeout before a test calls it a hang.
SLACK = 2.0


def sent_commands(conn: Connection) -> dict[str, int]:
    """The server's ``cmd-*`` counters and ``total-jobs``, minus ``cmd-stats`` (asking for them counts one)."""
    stats = conn.queue.stats()
    counters = {key: int(value) for key, value in stats.items() if key.startswith("cmd-") and key != "cmd-stats"}
    counters["total-jobs"] = stats.total_jobs
    return counters


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Poll ``predicate`` until it holds; AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what} not reached within {timeout} s"
        time.sleep(0.01)


class Background(Generic[T]):
    """Run ``fn`` in a daemon thread; ``result()`` returns its value or raises its exception."""

    def __init__(self, fn: Callable[[], T]) -> None:
        self._fn = fn
        self._value: T | None = None
        self._error: BaseException | None = None
        self.finished_at: float | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._value = self._fn()
        except BaseException as exc:  # handed to the test thread
            self._error = exc
        finally:
            self.finished_at = time.monotonic()

    def alive(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"the background call did not finish within {timeout} s"

    def result(self, timeout: float) -> T:
        self.join(timeout)
        if self._error is not None:
            raise self._error
        value: T = self._value  # type: ignore[assignment]
        return value

    def error(self, timeout: float) -> BaseException | None:
        self.join(timeout)
        return self._error


@contextmanager
def black_hole() -> Iterator[tuple[str, int]]:
    """A loopback TCP listener that never accepts, with its backlog already full.

    A connection attempt to it is neither accepted nor refused: the kernel
    drops the SYN, so only a connect timeout ends it.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    fillers: list[socket.socket] = []
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        address: tuple[str, int] = listener.getsockname()
        for _ in range(16):
            filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            fillers.append(filler)
            filler.settimeout(0.3)
            try:
                filler.connect(address)
            except TimeoutError:
                break  # the backlog is full: later SYNs are dropped
        else:
            raise AssertionError("could not fill the listen backlog")
        yield address
    finally:
        for filler in fillers:
            filler.close()
        listener.close()
