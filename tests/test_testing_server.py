"""Tests of beanstalkm.testing.BeanstalkdServer, using raw sockets only."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

import pytest

import beanstalkm.testing as bt
from beanstalkm.testing import BeanstalkdServer, ServerFactory, find_beanstalkd


def _connect(srv: BeanstalkdServer, timeout: float = 5.0) -> socket.socket:
    address = srv.address
    if isinstance(address, str):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.connect(address)
    return sock


def _read_line(sock: socket.socket, buf: bytearray) -> bytes:
    while b"\r\n" not in buf:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("server closed the connection")
        buf += chunk
    line, _, rest = bytes(buf).partition(b"\r\n")
    buf[:] = rest
    return line


def _read_exact(sock: socket.socket, buf: bytearray, n: int) -> bytes:
    while len(buf) < n:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("server closed the connection")
        buf += chunk
    data = bytes(buf[:n])
    del buf[:n]
    return data


def _request(sock: socket.socket, command: bytes) -> tuple[bytes, bytes | None]:
    """Send one command; return (status line, body or None)."""
    sock.sendall(command)
    buf = bytearray()
    line = _read_line(sock, buf)
    if line.startswith(b"OK ") or line.startswith(b"FOUND "):
        size = int(line.split()[-1])
        body = _read_exact(sock, buf, size + 2)
        assert body.endswith(b"\r\n")
        return line, body[:-2]
    return line, None


def _stats(srv: BeanstalkdServer) -> dict[str, str]:
    with _connect(srv) as sock:
        line, body = _request(sock, b"stats\r\n")
    assert line.startswith(b"OK "), line
    assert body is not None
    stats: dict[str, str] = {}
    for raw in body.decode().splitlines():
        if ": " in raw:
            key, _, value = raw.partition(": ")
            stats[key] = value.strip()
    return stats


def test_tcp_server_answers_stats(server: BeanstalkdServer) -> None:
    assert server.running
    assert server.pid is not None and server.pid > 0
    assert server.host == "127.0.0.1"
    assert 0 < server.port < 65536
    with _connect(server) as sock:
        sock.sendall(b"stats\r\n")
        assert sock.recv(3) == b"OK "
    stats = _stats(server)
    assert stats["pid"] == str(server.pid)
    assert stats["max-job-size"] == "65535"


def test_readiness_wait_opens_no_connection(server: BeanstalkdServer) -> None:
    # On Linux the launcher waits via /proc, so stats start from a clean slate.
    if not os.path.exists("/proc/net/tcp"):
        pytest.skip("no /proc: the launcher falls back to a connect probe")
    assert _stats(server)["total-connections"] == "1"


def test_session_server(beanstalkd: BeanstalkdServer) -> None:
    assert beanstalkd.running
    assert "version" in _stats(beanstalkd)


def test_unix_socket_server(unix_server: BeanstalkdServer) -> None:
    assert unix_server.unix_path is not None
    assert unix_server.address == unix_server.unix_path
    assert Path(unix_server.unix_path).is_socket()
    with _connect(unix_server) as sock:
        line, body = _request(sock, b"stats\r\n")
    assert line.startswith(b"OK ")
    assert body is not None and b"current-connections: 1" in body


def test_max_job_size_is_honoured(server_factory: ServerFactory) -> None:
    srv = server_factory(max_job_size=1234)
    assert _stats(srv)["max-job-size"] == "1234"
    with _connect(srv) as sock:
        big = b"x" * 1235
        line, _ = _request(sock, b"put 0 0 10 %d\r\n%s\r\n" % (len(big), big))
        assert line == b"JOB_TOO_BIG"
        line, _ = _request(sock, b"put 0 0 10 4\r\nabcd\r\n")
        assert line.startswith(b"INSERTED ")


def test_two_servers_get_distinct_ports(server_factory: ServerFactory) -> None:
    a = server_factory()
    b = server_factory()
    assert a.port != b.port
    assert _stats(a)["pid"] != _stats(b)["pid"]


def test_explicit_port(server_factory: ServerFactory) -> None:
    port = bt._pick_free_port()
    srv = server_factory(port=port)
    assert srv.port == port
    assert "pid" in _stats(srv)


def test_stop_is_idempotent() -> None:
    srv = BeanstalkdServer()
    srv.stop()  # never started: no-op
    srv.start()
    pid = srv.pid
    assert pid is not None
    srv.stop()
    assert not srv.running
    assert srv.pid is None
    srv.stop()
    srv.stop()
    with pytest.raises(OSError):
        _connect(srv, timeout=1.0)


def test_context_manager_starts_and_stops() -> None:
    with BeanstalkdServer() as srv:
        assert srv.running
        assert "pid" in _stats(srv)
    assert not srv.running


def test_start_twice_is_noop(server: BeanstalkdServer) -> None:
    pid = server.pid
    server.start()
    assert server.pid == pid


def test_kill_and_restart_on_same_port(server: BeanstalkdServer) -> None:
    port = server.port
    old_pid = server.pid
    with _connect(server) as sock:  # an open connection when it dies
        server.kill()
        assert not server.running
        assert server.pid is None
        try:
            assert sock.recv(16) == b""  # FIN
        except ConnectionResetError:  # or RST, if not yet accepted
            pass
    with pytest.raises(OSError):
        _connect(server, timeout=1.0)
    server.start()
    assert server.running
    assert server.port == port
    assert server.pid != old_pid
    assert _stats(server)["pid"] == str(server.pid)


def test_binlog_survives_kill(server_factory: ServerFactory, tmp_path: Path) -> None:
    srv = server_factory(binlog_dir=str(tmp_path / "binlog"))
    with _connect(srv) as sock:
        line, _ = _request(sock, b"put 0 0 60 5\r\nhello\r\n")
    assert line.startswith(b"INSERTED ")
    job_id = line.split()[1]
    srv.kill()
    srv.start()
    with _connect(srv) as sock:
        line, body = _request(sock, b"peek " + job_id + b"\r\n")
    assert line == b"FOUND " + job_id + b" 5"
    assert body == b"hello"


def test_unix_server_restarts_after_kill(unix_server: BeanstalkdServer) -> None:
    unix_server.kill()
    unix_server.start()  # beanstalkd replaces the stale socket file
    assert "pid" in _stats(unix_server)


def test_pause_and_resume(server: BeanstalkdServer) -> None:
    with _connect(server) as sock:
        server.pause()
        assert server.running
        sock.settimeout(0.3)
        sock.sendall(b"stats\r\n")
        with pytest.raises(TimeoutError):
            sock.recv(3)
        server.resume()
        sock.settimeout(5.0)
        assert sock.recv(3) == b"OK "


def test_stop_a_paused_server() -> None:
    srv = BeanstalkdServer()
    srv.start()
    srv.pause()
    srv.stop()
    assert not srv.running


def test_sigusr1_drain_mode(server: BeanstalkdServer) -> None:
    server.signal(signal.SIGUSR1)
    with _connect(server) as sock:
        line, _ = _request(sock, b"put 0 0 10 1\r\nx\r\n")
    assert line == b"DRAINING"
    assert _stats(server)["draining"] == "true"


def test_signal_when_not_running() -> None:
    srv = BeanstalkdServer()
    with pytest.raises(RuntimeError):
        srv.signal(signal.SIGUSR1)


def test_missing_executable_says_how_to_install(tmp_path: Path) -> None:
    srv = BeanstalkdServer(executable=str(tmp_path / "no-such-beanstalkd"))
    with pytest.raises(FileNotFoundError, match="apt-get install -y beanstalkd"):
        srv.start()
    assert not srv.running


def test_find_beanstalkd_respects_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    real = find_beanstalkd()
    assert os.access(real, os.X_OK)
    monkeypatch.setenv("BEANSTALKD", real)
    assert find_beanstalkd() == real
    monkeypatch.setenv("BEANSTALKD", str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="apt-get install -y beanstalkd"):
        find_beanstalkd()


def test_find_beanstalkd_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("BEANSTALKD", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(bt, "_FALLBACK_DIRS", (str(tmp_path),))
    with pytest.raises(FileNotFoundError, match="apt-get install -y beanstalkd"):
        find_beanstalkd()


def test_startup_failure_reports_server_output(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-socket"
    blocker.write_text("a regular file blocks beanstalkd's UNIX socket")
    srv = BeanstalkdServer(unix_path=str(blocker))
    with pytest.raises(RuntimeError, match="already exists"):
        srv.start()
    assert not srv.running
    srv.stop()


def test_port_in_use_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    # The first "free" port offered is taken: start() must pick another one.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy_port: int = taken.getsockname()[1]
        ports = iter([busy_port])
        real_pick = bt._pick_free_port
        monkeypatch.setattr(bt, "_pick_free_port", lambda: next(ports, None) or real_pick())
        with BeanstalkdServer() as srv:
            assert srv.port != busy_port
            assert "pid" in _stats(srv)


def test_without_proc_readiness_falls_back_to_a_connect_probe(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Where /proc/net cannot be read, start() waits by connecting (one connection counted), TCP and UNIX alike.
    monkeypatch.setattr(bt, "_tcp_listen_inodes", lambda port: None)
    monkeypatch.setattr(bt, "_unix_listen_inodes", lambda path: None)
    with BeanstalkdServer() as tcp, BeanstalkdServer(unix_path=str(tmp_path / "probe.sock")) as unix:
        for srv in (tcp, unix):
            assert srv.running and srv.pid is not None
            assert _stats(srv)["total-connections"] == "2"  # the probe's, then this one
    assert tcp.pid is None and not tcp._probe_connect()


def test_find_beanstalkd_falls_back_to_the_usual_directories(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    real = find_beanstalkd()
    (tmp_path / "beanstalkd").write_text("not executable")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "beanstalkd").symlink_to(real)
    monkeypatch.delenv("BEANSTALKD", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(bt, "_FALLBACK_DIRS", (str(tmp_path), str(bin_dir)))
    assert find_beanstalkd() == str(bin_dir / "beanstalkd")  # the first executable one
