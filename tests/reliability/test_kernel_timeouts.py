"""Kernel timeouts (docs/hot-path.md, "Kernel timeouts"): on Linux a plain socket's timeouts are the
kernel's (``SO_RCVTIMEO``, ``SO_SNDTIMEO``) on a socket Python sees as blocking, so that no ``poll``
comes before each send and each receive. What a timeout bounds is unchanged
(tests/reliability/test_timeouts.py); these tests hold the mechanism and its edges."""

from __future__ import annotations

import socket
import tempfile
import time
from pathlib import Path

import pytest

from beanstalkm import Connection, SocketError, TimedOut
from beanstalkm._transport import sockets
from beanstalkm._transport.sockets import KERNEL_TIMEOUTS, SocketTransport, TLSSocketTransport, _timeval
from beanstalkm.testing import BeanstalkdServer

from ._support import SLACK

LINUX_ONLY = pytest.mark.skipif(not KERNEL_TIMEOUTS, reason="the kernel's timeouts are used on Linux only")


@pytest.mark.parametrize(
    ("timeout", "seconds", "micros"),
    [
        (None, 0, 0),  # forever
        (1.5, 1, 500_000),
        (0.25, 0, 250_000),
        (1e-9, 0, 1),  # too short to be a microsecond: one (zero would mean forever)
        (2.0000001, 2, 1),
        (0.9999999999, 1, 0),  # rounded up to the next second
        (30.0, 30, 0),
        (2.0**31, 0, 0),  # longer than the kernel is told at once: forever
        (float("inf"), 0, 0),
    ],
)
def test_a_timeout_as_the_kernels_timeval(timeout: float | None, seconds: int, micros: int) -> None:
    assert _timeval(timeout) == sockets._TIMEVAL.pack(seconds, micros)


def _kernel_timeout(sock: socket.socket, option: int) -> float:
    """The kernel's timeout on ``sock``, to a tenth of a second (it keeps its timeouts in clock ticks, a few
    milliseconds each: 0.75 s reads back as 0.752 at 250 ticks a second)."""
    seconds, micros = sockets._TIMEVAL.unpack(sock.getsockopt(socket.SOL_SOCKET, option, sockets._TIMEVAL.size))
    return round(float(seconds) + float(micros) / 1_000_000, 1)


def _transport(conn: Connection) -> SocketTransport:
    transport = conn._transport
    assert isinstance(transport, SocketTransport)
    return transport


@LINUX_ONLY
@pytest.mark.parametrize("unix", [False, True], ids=["tcp", "unix"])
def test_a_connection_with_a_timeout_is_blocking_for_python_and_bounded_by_the_kernel(
    server: BeanstalkdServer, unix: bool
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        if unix:
            local = BeanstalkdServer(unix_path=str(Path(folder) / "b.sock"))
            local.start()
            conn = Connection(unix_socket=local.unix_path, timeout=0.7)
        else:
            local = None
            conn = Connection(server.host, server.port, timeout=0.7)
        try:
            with conn:
                conn.queue.list_tubes()
                sock = _transport(conn).sock
                assert sock.gettimeout() is None  # no poll before each send and receive
                assert _kernel_timeout(sock, socket.SO_RCVTIMEO) == 0.7
                assert _kernel_timeout(sock, socket.SO_SNDTIMEO) == 0.7
        finally:
            if local is not None:
                local.stop()


@LINUX_ONLY
def test_a_reserve_longer_than_the_timeout_is_not_cut_short_and_gives_the_timeout_back(
    server: BeanstalkdServer,
) -> None:
    """The receive's kernel timeout is the reserve's wait plus the connection's timeout while it lasts,
    and the connection's own again for the next command."""
    with Connection(server.host, server.port, timeout=0.3) as conn:
        start = time.monotonic()
        with pytest.raises(TimedOut):  # the server's TIMED_OUT, not a timeout of ours
            conn.queue.reserve_with_timeout(1)
        assert time.monotonic() - start >= 1.0
        assert conn.connected
        conn.queue.put(b"after")
        assert _kernel_timeout(_transport(conn).sock, socket.SO_RCVTIMEO) == 0.3


@LINUX_ONLY
def test_a_stopped_server_times_out_a_receive_by_the_kernels_timeout(server: BeanstalkdServer) -> None:
    """The kernel's EAGAIN becomes the same error as Python's own timeout: a SocketError whose cause is a
    TimeoutError, the command maybe executed, the connection dropped."""
    conn = Connection(server.host, server.port, timeout=0.4)
    conn.queue.list_tubes()
    server.pause()
    try:
        start = time.monotonic()
        with pytest.raises(SocketError, match="timed out") as info:
            conn.queue.put(b"frozen")
        elapsed = time.monotonic() - start
    finally:
        server.resume()
    assert isinstance(info.value.__cause__, TimeoutError), info.value.__cause__
    assert info.value.maybe_executed is True
    assert not conn.connected
    assert 0.35 <= elapsed < 0.4 + SLACK, elapsed
    conn.queue.list_tubes()  # and the next call reconnects, with the kernel's timeouts again
    assert _transport(conn).sock.gettimeout() is None
    conn.close()


def test_timeout_none_and_tls_keep_pythons_own() -> None:
    """``timeout=None``: blocking, the kernel's timeouts left at forever. TLS: Python's own timeout,
    always (a kernel timeout could cut a TLS record in the middle)."""
    assert TLSSocketTransport.kernel_timeouts is False
    a, b = socket.socketpair()
    with a, b:
        transport = SocketTransport(a, None)
        assert a.gettimeout() is None
        if KERNEL_TIMEOUTS:
            assert _kernel_timeout(a, socket.SO_RCVTIMEO) == 0.0
        assert transport._set is None


@LINUX_ONLY
def test_a_wait_of_zero_is_pythons_non_blocking_mode_and_the_kernels_timeout_comes_back() -> None:
    a, b = socket.socketpair()
    with a, b:
        transport = SocketTransport(a, 0.5)
        with pytest.raises(BlockingIOError):  # nothing there: as before, not a timeout
            transport.receive(10, 0.0)
        assert a.gettimeout() == 0.0
        b.sendall(b"x")
        assert transport.receive(10, 0.5) == b"x"
        assert a.gettimeout() is None
        assert _kernel_timeout(a, socket.SO_RCVTIMEO) == 0.5
        with pytest.raises(TimeoutError):  # the kernel's timeout, as Python's own would say it
            transport.receive(10, 0.05)
