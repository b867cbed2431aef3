"""A connection the server closed while it sat idle (a restart, an idle cut): the next command is not
written, and its error says it cannot have run (``maybe_executed=False``), in both flavours, for the
hot path, the general path, the pipelined path (asyncio) and batches."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from beanstalkm import Client, Connection, SocketError
from beanstalkm.aio import AsyncClient
from beanstalkm.testing import BeanstalkdServer
from cluster._tls import TLSProxy, self_signed

from ._flavours import ClientFactory

CALLS: dict[str, Callable[[Client], object]] = {
    "Client.put": lambda c: c.put("second"),
    "Client.put to a tube": lambda c: c.put("second", tube="elsewhere"),
    "queue.put": lambda c: c.queue.put(b"second"),
    "queue.stats": lambda c: c.queue.stats(),
    "put_many": lambda c: c.put_many(["second", "third"]),
    "reserve(timeout=0)": lambda c: c.reserve(timeout=0, drop=False),
    "pipeline": lambda c: c.pipeline().put(b"second").stats().execute(),
}


def _wait_until(predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


@pytest.mark.parametrize("call", list(CALLS))
def test_a_command_after_the_server_closed_the_connection_is_not_sent(
    server: BeanstalkdServer, make_client: ClientFactory, call: str
) -> None:
    client = make_client(server.host, server.port, timeout=5)
    client.put("first")
    server.kill()
    server.start()
    _wait_until(client._peer_closed, "the end of the stream reaching the client")

    with pytest.raises(SocketError) as info:
        CALLS[call](client)
    assert info.value.maybe_executed is False, info.value  # it was never written
    assert "had closed the connection; the command was not sent" in str(info.value)  # one text, both flavours
    assert not client.connected

    observer = Connection(server.host, server.port, timeout=5)
    try:
        before = observer.queue.stats()
        assert before.cmd_put == 0 and before.total_jobs == 0  # the restarted server got nothing
        CALLS[call](client)  # the next call connects again and runs it, once
        after = observer.queue.stats()
        assert after.total_connections == 2
        assert after.cmd_put == {"put_many": 2, "reserve(timeout=0)": 0, "queue.stats": 0}.get(call, 1)
    finally:
        observer.close()


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_over_tls_too(tmp_path: Path, server: BeanstalkdServer, flavour: str) -> None:
    """Through a TLS terminator: the end of the stream (the terminator closing once beanstalkd is
    gone) is told from TLS records of its own (session tickets), and the put is not written."""
    cert, key = self_signed(tmp_path)
    proxy = TLSProxy(cert, key, (server.host, server.port))
    context = ssl.create_default_context(cafile=str(cert))
    url = f"beanstalks://localhost:{proxy.port}"
    try:
        if flavour == "sync":
            with Client.from_url(url, ssl=context, timeout=5) as client:
                client.put("first")
                server.kill()
                server.start()
                _wait_until(client._peer_closed, "the end of the TLS stream reaching the client")
                with pytest.raises(SocketError) as info:
                    client.put("second")
                assert info.value.maybe_executed is False and not client.connected
                client.put("third")
        else:

            async def main() -> SocketError:
                async with AsyncClient.from_url(url, ssl=context, timeout=5) as client:
                    await client.put("first")
                    server.kill()
                    server.start()
                    for _ in range(1000):
                        if client._peer_closed():
                            break
                        await asyncio.sleep(0.01)
                    with pytest.raises(SocketError) as info:
                        await client.put("second")
                    assert not client.connected
                    await client.put("third")
                    return info.value

            assert asyncio.run(main()).maybe_executed is False
        with Connection(server.host, server.port, timeout=5) as observer:
            assert observer.queue.stats().cmd_put == 1  # the third only
    finally:
        proxy.close()
