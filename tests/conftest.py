"""Shared pytest fixtures: private beanstalkd servers on loopback / UNIX sockets.

* ``beanstalkd`` (session): one TCP server shared by the whole run; use it
  for tests that do not care about global stats or server faults.
* ``server`` (function): a fresh TCP server per test, so tests that count
  stats, drain, pause or kill the server are isolated.
* ``server_factory`` (function): ``server_factory(max_job_size=..., ...)``
  starts a server with custom options; all are stopped at teardown.
* ``unix_server`` (function): a fresh server on a UNIX socket in ``tmp_path``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

from beanstalkm.testing import BeanstalkdServer, ServerFactory

# sun_path limit (108 on Linux, 104 on BSDs) minus some slack.
_MAX_SOCKET_PATH = 100


@pytest.fixture(scope="session")
def beanstalkd() -> Iterator[BeanstalkdServer]:
    """A TCP beanstalkd shared by the whole session (default settings)."""
    with BeanstalkdServer() as srv:
        yield srv


@pytest.fixture
def server() -> Iterator[BeanstalkdServer]:
    """A fresh TCP beanstalkd for this test only."""
    with BeanstalkdServer() as srv:
        yield srv


@pytest.fixture
def server_factory() -> Iterator[ServerFactory]:
    """Build-and-start servers with custom options; all stop at teardown."""
    servers: list[BeanstalkdServer] = []

    def factory(
        *,
        port: int | None = None,
        unix_path: str | None = None,
        max_job_size: int | None = None,
        binlog_dir: str | None = None,
        executable: str | None = None,
        extra_args: Sequence[str] = (),
    ) -> BeanstalkdServer:
        srv = BeanstalkdServer(
            port=port,
            unix_path=unix_path,
            max_job_size=max_job_size,
            binlog_dir=binlog_dir,
            executable=executable,
            extra_args=extra_args,
        )
        servers.append(srv)
        srv.start()
        return srv

    try:
        yield factory
    finally:
        for srv in reversed(servers):
            srv.stop()


@pytest.fixture
def unix_socket_path(tmp_path: Path) -> Iterator[str]:
    """A fresh UNIX socket path, in ``tmp_path`` unless that is too long."""
    path = str(tmp_path / "beanstalkd.sock")
    if len(os.fsencode(path)) <= _MAX_SOCKET_PATH:
        yield path
        return
    short_dir = tempfile.mkdtemp(prefix="bsm-")
    try:
        yield os.path.join(short_dir, "beanstalkd.sock")
    finally:
        shutil.rmtree(short_dir, ignore_errors=True)


@pytest.fixture
def unix_server(unix_socket_path: str) -> Iterator[BeanstalkdServer]:
    """A fresh beanstalkd listening only on a UNIX socket."""
    with BeanstalkdServer(unix_path=unix_socket_path) as srv:
        yield srv


@contextmanager
def _traced_peak() -> Iterator[list[int]]:
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    out: list[int] = []
    try:
        yield out
    finally:
        out.append(tracemalloc.get_traced_memory()[1] - base)
        if not was_tracing:
            tracemalloc.stop()


@pytest.fixture(scope="session")
def peak_memory() -> Callable[[], AbstractContextManager[list[int]]]:
    """``with peak_memory() as peak:`` traces allocations (every thread's) inside the block;
    ``peak[0]`` holds their peak afterwards, in bytes."""
    return _traced_peak
