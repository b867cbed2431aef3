"""TLS over a UNIX socket: a context that checks host names is refused by the constructor (a UNIX
socket has no host name), naming ``ssl``, before connecting; one that does not check them connects
(here to a plain beanstalkd, so the handshake fails as a ``SocketError``), in both flavours. Before,
both flavours raised a bare ``ValueError`` from the ssl module or asyncio."""

from __future__ import annotations

import asyncio
import ssl

import pytest

from beanstalkm import Connection, InvalidArgument, SocketError
from beanstalkm.aio import AsyncConnection
from beanstalkm.testing import BeanstalkdServer


def _connect(flavour: str, path: str, context: ssl.SSLContext) -> None:
    if flavour == "sync":
        Connection(unix_socket=path, ssl=context, timeout=1).close()
        return

    async def main() -> None:
        async with AsyncConnection(unix_socket=path, ssl=context, timeout=1):
            pass

    asyncio.run(main())


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_a_context_that_checks_host_names_is_refused_for_a_unix_socket(
    unix_server: BeanstalkdServer, flavour: str
) -> None:
    assert unix_server.unix_path is not None
    context = ssl.create_default_context()
    with pytest.raises(InvalidArgument) as info:
        _connect(flavour, unix_server.unix_path, context)
    assert info.value.name == "ssl" and "UNIX socket" in str(info.value)


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_a_context_without_host_name_checks_reaches_the_handshake(unix_server: BeanstalkdServer, flavour: str) -> None:
    assert unix_server.unix_path is not None
    context = ssl.create_default_context()
    context.check_hostname = False
    with pytest.raises(SocketError) as info:  # beanstalkd speaks no TLS: the handshake fails
        _connect(flavour, unix_server.unix_path, context)
    assert info.value.maybe_executed is False
