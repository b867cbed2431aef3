"""Start a private, throw-away beanstalkd for tests, demos and benchmarks.

:class:`BeanstalkdServer` runs the real ``beanstalkd`` binary as a child
process that listens only on the loopback interface (``127.0.0.1``) or on a
UNIX socket, so it never clashes with a system-wide beanstalkd on port 11300
and is never reachable from another machine.

Typical use::

    from beanstalkm.testing import BeanstalkdServer

    with BeanstalkdServer() as server:          # picks a free port
        print(server.host, server.port)         # '127.0.0.1', e.g. 40123
        ...                                     # connect a client here

    with BeanstalkdServer(unix_path="/tmp/bs.sock", max_job_size=1024) as server:
        ...                                     # listens on unix:/tmp/bs.sock only

Fault injection for tests:

* :meth:`BeanstalkdServer.kill` sends ``SIGKILL`` (a crash); a later
  :meth:`BeanstalkdServer.start` brings the server back on the same port or
  path (pass ``binlog_dir`` to keep jobs across the crash);
* :meth:`BeanstalkdServer.pause` / :meth:`BeanstalkdServer.resume` freeze and
  thaw the process (``SIGSTOP`` / ``SIGCONT``): connections are still
  accepted by the kernel but nothing is answered;
* :meth:`BeanstalkdServer.signal` sends any signal, e.g. ``signal.SIGUSR1``
  puts beanstalkd in drain mode (``put`` answers ``DRAINING``).

The binary is found by :func:`find_beanstalkd`: ``$BEANSTALKD``, then
``PATH``, then ``/usr/sbin``, ``/usr/bin`` and ``/usr/local/bin``.  On Debian
or Ubuntu install it with ``apt-get install -y beanstalkd``.

Readiness is detected without opening a client connection where the platform
allows it (Linux ``/proc``), so a fresh server's ``stats`` start from zero
connections; elsewhere a connect probe is used, which counts as one
connection in ``total-connections``.

The module only uses the standard library.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal as _signal
import socket
import subprocess
import tempfile
import time
import weakref
from collections.abc import Sequence
from contextlib import suppress
from types import TracebackType
from typing import IO, Protocol

__all__ = [
    "INSTALL_HINT",
    "BeanstalkdServer",
    "ServerFactory",
    "find_beanstalkd",
]

INSTALL_HINT = (
    "install it with `apt-get install -y beanstalkd` (Debian/Ubuntu), "
    "`brew install beanstalkd` (macOS), or point $BEANSTALKD at the binary"
)

_FALLBACK_DIRS: tuple[str, ...] = ("/usr/sbin", "/usr/bin", "/usr/local/bin")

_LOOPBACK = "127.0.0.1"
# sun_path is 108 bytes on Linux (104 on the BSDs), including the trailing NUL.
_MAX_UNIX_PATH = 103
_PORT_ATTEMPTS = 5


def find_beanstalkd() -> str:
    """Return the path of the ``beanstalkd`` executable.

    Looks at ``$BEANSTALKD`` first (which must then name an executable),
    then ``PATH``, then ``/usr/sbin``, ``/usr/bin`` and ``/usr/local/bin``.

    Raises:
        FileNotFoundError: if no executable is found; the message says how
            to install beanstalkd.
    """
    env = os.environ.get("BEANSTALKD")
    if env:
        found = shutil.which(env)
        if found is None:
            raise FileNotFoundError(
                f"$BEANSTALKD is set to {env!r}, which is not an executable file; fix or unset it, or {INSTALL_HINT}"
            )
        return found
    found = shutil.which("beanstalkd")
    if found is not None:
        return found
    for directory in _FALLBACK_DIRS:
        candidate = os.path.join(directory, "beanstalkd")
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise FileNotFoundError(
        f"beanstalkd executable not found in $BEANSTALKD, PATH or {', '.join(_FALLBACK_DIRS)}; {INSTALL_HINT}"
    )


def _resolve_executable(executable: str) -> str:
    found = shutil.which(executable)
    if found is None:
        raise FileNotFoundError(f"beanstalkd executable {executable!r} not found or not executable; {INSTALL_HINT}")
    return found


def _pick_free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def _kill_quietly(proc: subprocess.Popen[bytes]) -> None:
    """Finalizer: make sure a forgotten server does not outlive its owner."""
    if proc.poll() is None:
        with suppress(OSError):
            proc.kill()
        with suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)


def _socket_inodes_of(pid: int) -> set[str] | None:
    """Inodes of the sockets open in process ``pid``; None if unknowable."""
    fd_dir = f"/proc/{pid}/fd"
    try:
        names = os.listdir(fd_dir)
    except OSError:
        return None
    inodes: set[str] = set()
    for name in names:
        try:
            target = os.readlink(os.path.join(fd_dir, name))
        except OSError:
            continue
        if target.startswith("socket:[") and target.endswith("]"):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def _tcp_listen_inodes(port: int) -> set[str] | None:
    """Inodes of sockets listening on 127.0.0.1:port, from /proc/net/tcp."""
    try:
        with open("/proc/net/tcp", encoding="ascii") as f:
            lines = f.readlines()[1:]
    except OSError:
        return None
    # The address is the raw network-order word printed as host-order hex.
    wanted = {f"0100007F:{port:04X}", f"7F000001:{port:04X}"}
    inodes: set[str] = set()
    for line in lines:
        fields = line.split()
        if len(fields) > 9 and fields[1] in wanted and fields[3] == "0A":
            inodes.add(fields[9])
    return inodes


def _unix_listen_inodes(path: str) -> set[str] | None:
    """Inodes of UNIX sockets listening on ``path``, from /proc/net/unix."""
    try:
        with open("/proc/net/unix", encoding="utf-8", errors="replace") as f:
            lines = f.readlines()[1:]
    except OSError:
        return None
    inodes: set[str] = set()
    for line in lines:
        fields = line.split(maxsplit=7)
        if len(fields) == 8 and fields[7].rstrip("\n") == path:
            try:
                flags = int(fields[3], 16)
            except ValueError:
                continue
            if flags & 0x10000:  # __SO_ACCEPTCON: a listening socket
                inodes.add(fields[6])
    return inodes


class ServerFactory(Protocol):
    """Type of a callable that builds and starts a :class:`BeanstalkdServer`.

    Used e.g. by the ``server_factory`` pytest fixture.
    """

    def __call__(
        self,
        *,
        port: int | None = None,
        unix_path: str | None = None,
        max_job_size: int | None = None,
        binlog_dir: str | None = None,
        executable: str | None = None,
        extra_args: Sequence[str] = (),
    ) -> BeanstalkdServer: ...


class BeanstalkdServer:
    """A private beanstalkd child process on 127.0.0.1 or a UNIX socket.

    Args:
        port: TCP port on 127.0.0.1; a free one is chosen when None.  It is
            kept across :meth:`kill`/:meth:`start` cycles.
        unix_path: listen on this UNIX socket path (``-l unix:PATH``)
            instead of TCP; ``port`` is then unused.
        max_job_size: ``-z``: the largest job body accepted, in bytes.
        binlog_dir: ``-b``: write-ahead log directory (created if missing),
            which lets jobs survive :meth:`kill` + :meth:`start`.
        executable: path or name of the binary; :func:`find_beanstalkd`
            when None.
        extra_args: more command-line arguments, appended last.
    """

    #: Seconds :meth:`start` waits for the server to listen.
    startup_timeout: float = 10.0
    #: Seconds :meth:`stop` waits after SIGTERM before sending SIGKILL.
    stop_timeout: float = 5.0

    host: str
    port: int
    unix_path: str | None
    max_job_size: int | None
    binlog_dir: str | None
    extra_args: tuple[str, ...]

    def __init__(
        self,
        *,
        port: int | None = None,
        unix_path: str | None = None,
        max_job_size: int | None = None,
        binlog_dir: str | None = None,
        executable: str | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        if port is not None and not 0 < port < 65536:
            raise ValueError(f"port must be in 1..65535, got {port}")
        if max_job_size is not None and max_job_size <= 0:
            raise ValueError(f"max_job_size must be positive, got {max_job_size}")
        if unix_path is not None:
            unix_path = os.path.abspath(unix_path)
            if len(os.fsencode(unix_path)) > _MAX_UNIX_PATH:
                raise ValueError(
                    f"UNIX socket path is too long ({len(os.fsencode(unix_path))} "
                    f"bytes, max {_MAX_UNIX_PATH}): {unix_path!r}"
                )
        self.host = _LOOPBACK
        self._port_fixed = port is not None
        self.port = port if port is not None else 0
        self.unix_path = unix_path
        self.max_job_size = max_job_size
        self.binlog_dir = os.path.abspath(binlog_dir) if binlog_dir is not None else None
        self.extra_args = tuple(extra_args)
        self._executable = executable
        self._proc: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize[[subprocess.Popen[bytes]], BeanstalkdServer] | None = None
        self._log: IO[bytes] | None = None
        self._last_command: list[str] = []

    # ------------------------------------------------------------------ info

    @property
    def pid(self) -> int | None:
        """Process id of the running server, or None when it is not running."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    @property
    def running(self) -> bool:
        """True while the server process is alive (also when paused)."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def address(self) -> tuple[str, int] | str:
        """``(host, port)`` for TCP, or the UNIX socket path."""
        return (self.host, self.port) if self.unix_path is None else self.unix_path

    def output(self) -> str:
        """Everything the server has written to stdout/stderr so far."""
        return self._read_log(0)

    def _read_log(self, start: int) -> str:
        if self._log is None:
            return ""
        fd = self._log.fileno()
        # pread leaves the file offset, shared with the child, untouched.
        size = max(os.fstat(fd).st_size - start, 0)
        data = os.pread(fd, size, start)
        return data.decode("utf-8", errors="replace")

    def command(self) -> list[str]:
        """The command line :meth:`start` runs (with the current port)."""
        executable = _resolve_executable(self._executable) if self._executable is not None else find_beanstalkd()
        args = [executable]
        if self.unix_path is not None:
            args += ["-l", f"unix:{self.unix_path}"]
        else:
            args += ["-l", self.host, "-p", str(self.port)]
        if self.max_job_size is not None:
            args += ["-z", str(self.max_job_size)]
        if self.binlog_dir is not None:
            args += ["-b", self.binlog_dir]
        args += self.extra_args
        return args

    def __repr__(self) -> str:
        where = f"unix:{self.unix_path}" if self.unix_path is not None else f"{self.host}:{self.port}"
        state = f"pid={self.pid}" if self.running else "stopped"
        return f"<BeanstalkdServer {where} {state}>"

    # ------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Start the server and wait until it listens.

        Does nothing if it is already running.  A server that was
        :meth:`kill`-ed or :meth:`stop`-ped comes back on the same port/path.

        Raises:
            FileNotFoundError: beanstalkd is not installed.
            RuntimeError: the server died or did not listen within
                :attr:`startup_timeout` seconds (the message has its output).
        """
        if self.running:
            return
        self._reap()
        if self.binlog_dir is not None:
            os.makedirs(self.binlog_dir, exist_ok=True)
        if self._log is None:
            # Lives as long as the server (across restarts); closed by stop().
            self._log = tempfile.TemporaryFile(prefix="beanstalkd-", suffix=".log")  # noqa: SIM115

        choose_port = self.unix_path is None and not self._port_fixed
        attempts = _PORT_ATTEMPTS if choose_port else 1
        for attempt in range(attempts):
            if choose_port:
                self.port = _pick_free_port()
            log_start = os.fstat(self._log.fileno()).st_size
            try:
                self._launch()
                self._wait_until_listening(log_start)
            except _AddressInUse:
                if attempt + 1 < attempts:
                    continue
                raise RuntimeError(
                    f"beanstalkd could not bind a free port after {attempts} attempts:\n{self._read_log(log_start)}"
                ) from None
            break
        # From now on kill()/start() reuse this port.
        self._port_fixed = True

    def _launch(self) -> None:
        args = self.command()
        self._last_command = args
        assert self._log is not None
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log)
        self._proc = proc
        self._finalizer = weakref.finalize(self, _kill_quietly, proc)

    def _wait_until_listening(self, log_start: int) -> None:
        proc = self._proc
        assert proc is not None
        deadline = time.monotonic() + self.startup_timeout
        delay = 0.005
        while True:
            if proc.poll() is not None:
                self._reap()
                text = self._read_log(log_start)
                if "Address already in use" in text:
                    raise _AddressInUse()
                raise RuntimeError(
                    f"beanstalkd exited with status {proc.returncode} during "
                    f"startup ({' '.join(self._last_command)}):\n{text}"
                )
            if self._is_listening(proc.pid):
                return
            if time.monotonic() >= deadline:
                self._terminate(kill_only=True)
                raise RuntimeError(
                    f"beanstalkd did not listen on {self.address!r} within "
                    f"{self.startup_timeout} s; output:\n{self.output()}"
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def _is_listening(self, pid: int) -> bool:
        listening = _unix_listen_inodes(self.unix_path) if self.unix_path is not None else _tcp_listen_inodes(self.port)
        if listening is not None:
            if not listening:
                return False
            owned = _socket_inodes_of(pid)
            # Without access to the fds, trust the listening entry.
            return owned is None or bool(listening & owned)
        return self._probe_connect()

    def _probe_connect(self) -> bool:
        with socket.socket(socket.AF_INET if self.unix_path is None else socket.AF_UNIX) as sock:
            sock.settimeout(1.0)
            try:
                sock.connect(self.address)
            except OSError:
                return False
        return True

    def stop(self) -> None:
        """Stop the server: SIGTERM, then SIGKILL if it lingers.  Idempotent."""
        self._terminate(kill_only=False)
        if self._log is not None:
            self._log.close()
            self._log = None

    def kill(self) -> None:
        """SIGKILL the server at once (simulate a crash); :meth:`start` revives it."""
        self._terminate(kill_only=True)

    def pause(self) -> None:
        """Freeze the server with SIGSTOP (it accepts but does not answer)."""
        self.signal(_signal.SIGSTOP)

    def resume(self) -> None:
        """Thaw a :meth:`pause`-d server with SIGCONT."""
        self.signal(_signal.SIGCONT)

    def signal(self, sig: int) -> None:
        """Send signal ``sig`` to the server (e.g. SIGUSR1 for drain mode).

        Raises:
            RuntimeError: the server is not running.
        """
        proc = self._proc
        if proc is None or proc.poll() is not None:
            raise RuntimeError("beanstalkd is not running")
        proc.send_signal(sig)

    def _terminate(self, *, kill_only: bool) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            try:
                if kill_only:
                    proc.kill()
                else:
                    proc.terminate()
                    # A SIGSTOP-ped process only acts on SIGTERM once continued.
                    proc.send_signal(_signal.SIGCONT)
            except OSError as exc:  # already gone
                if exc.errno != errno.ESRCH:
                    raise
            try:
                proc.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._reap()

    def _reap(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is not None:
            self._proc = None
            if self._finalizer is not None:
                self._finalizer.detach()
                self._finalizer = None

    def __enter__(self) -> BeanstalkdServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __del__(self) -> None:
        log = getattr(self, "_log", None)
        if log is not None:
            log.close()


class _AddressInUse(Exception):
    """Internal: beanstalkd could not bind the chosen port."""
