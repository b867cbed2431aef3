"""A server that refuses the ``use`` the client sends to route a put (``OUT_OF_MEMORY``: beanstalkd says so
when it cannot make the tube, and the tube in force stays) while the put itself runs, stored in that tube.
The put's error then carries the job it stored (``outcome``): it is not a refusal of the put, so the cluster
must not send it to another server (that would store it twice). A real server cannot be made to do this on
demand, so a scripted fake stands beside a real beanstalkd."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from beanstalkm import BatchFailed, Client, OutOfMemory
from beanstalkm.testing import BeanstalkdServer

from .conftest import MakeCluster, url_of


class RefusingUse:
    """A loopback fake: ``use`` gets ``OUT_OF_MEMORY``, ``put`` is stored (``INSERTED n``), anything else
    ``UNKNOWN_COMMAND``. Bounded: daemon threads with socket timeouts, closed by ``close()``."""

    def __init__(self) -> None:
        self.stored: list[bytes] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"beanstalk://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(20)
        buf = b""
        with conn:
            try:
                while True:
                    while b"\r\n" not in buf:
                        data = conn.recv(65536)
                        if not data:
                            return
                        buf += data
                    line, buf = buf.split(b"\r\n", 1)
                    words = line.split(b" ")
                    if words[0] == b"use":
                        conn.sendall(b"OUT_OF_MEMORY\r\n")
                    elif words[0] == b"put":
                        size = int(words[4])
                        while len(buf) < size + 2:
                            buf += conn.recv(65536)
                        self.stored.append(buf[:size])
                        buf = buf[size + 2 :]
                        conn.sendall(b"INSERTED %d\r\n" % (100 + len(self.stored)))
                    elif words[0] == b"quit":
                        return
                    else:
                        conn.sendall(b"UNKNOWN_COMMAND\r\n")
            except OSError:
                return

    def close(self) -> None:
        self._listener.close()


@pytest.fixture
def fake() -> Iterator[RefusingUse]:
    made = RefusingUse()
    try:
        yield made
    finally:
        made.close()


def _jobs(server: BeanstalkdServer, tube: str) -> int:
    with Client(server.host, server.port, timeout=5) as client:
        return client.queue.stats_tube(tube).current_jobs_ready if tube in client.queue.list_tubes() else 0


def test_a_put_whose_use_was_refused_but_ran_is_not_sent_again(
    servers: list[BeanstalkdServer], fake: RefusingUse, make_cluster: MakeCluster
) -> None:
    def fake_first(up: list[str], tube: str, key: str | None) -> str:
        return fake.url if fake.url in up else up[0]

    cluster = make_cluster([fake.url, url_of(servers[0])], placement=fake_first, timeout=5)
    with pytest.raises(OutOfMemory) as caught:
        cluster.put({"n": 1}, tube="work")
    assert caught.value.outcome == 101  # stored on the fake, in its tube in force
    assert len(fake.stored) == 1 and _jobs(servers[0], "work") == 0  # and nowhere else


def test_put_many_items_whose_use_was_refused_but_ran_are_reported_not_sent_again(
    servers: list[BeanstalkdServer], fake: RefusingUse, make_cluster: MakeCluster
) -> None:
    cluster = make_cluster([fake.url, url_of(servers[0])], timeout=5)  # round-robin: one item each
    with pytest.raises(BatchFailed) as caught:
        cluster.put_many([{"n": 1}, {"n": 2}], tube="work")
    refused = [r for r in caught.value.results if isinstance(r, OutOfMemory)]
    assert len(refused) == 1 and refused[0].outcome == 101  # the fake's item: stored there, reported so
    assert len(fake.stored) == 1 and _jobs(servers[0], "work") == 1  # the real server's one item only
