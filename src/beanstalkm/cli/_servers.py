"""Every server address the CLI handles, in one place: parsing ``-s URL``, the default, connecting.

``beanstalk://host[:port]`` (port 11300 by default) and ``unix:///path/to/socket``. Without ``-s``,
``$BEANSTALKD_URL`` (a comma-separated list means several servers), else ``beanstalk://127.0.0.1:11300``.
This module is the seam where ``Client.from_url`` takes over once the library parses URLs itself.
"""

from __future__ import annotations

__all__ = ["DEFAULT_URL", "Server", "ServerAddressError", "connect", "parse_servers"]

import os
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from beanstalkm import DEFAULT_PORT, Client

DEFAULT_URL = f"beanstalk://127.0.0.1:{DEFAULT_PORT}"
ENV_VAR = "BEANSTALKD_URL"


class ServerAddressError(ValueError):
    """A malformed server URL (the message names it)."""


@dataclass(frozen=True, slots=True)
class Server:
    """One server named on the command line: its position (1-based, in ``-s`` order) and address."""

    index: int
    url: str
    host: str = ""
    port: int = DEFAULT_PORT
    unix_socket: str | None = None


def _parse(index: int, url: str) -> Server:
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme == "unix":
        if parts.netloc or not parts.path:
            raise ServerAddressError(f"bad server URL {url!r}: write unix:///path/to/socket")
        return Server(index, url, unix_socket=parts.path)
    if parts.scheme != "beanstalk":
        raise ServerAddressError(f"bad server URL {url!r}: write beanstalk://host[:port] or unix:///path")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
        raise ServerAddressError(f"bad server URL {url!r}: only beanstalk://host[:port] is understood")
    try:
        port = parts.port
    except ValueError:
        raise ServerAddressError(f"bad server URL {url!r}: the port must be 1..65535") from None
    if not parts.hostname:
        raise ServerAddressError(f"bad server URL {url!r}: no host")
    if port == 0:
        raise ServerAddressError(f"bad server URL {url!r}: the port must be 1..65535")
    return Server(index, url, host=parts.hostname, port=DEFAULT_PORT if port is None else port)


def parse_servers(urls: Sequence[str]) -> list[Server]:
    """The servers of ``-s`` options (each may itself be a comma-separated list), else the default.

    Raises:
        ServerAddressError: a malformed URL, naming it.
    """
    given = [part for url in urls for part in url.split(",") if part.strip()]
    if not given:
        given = [part for part in os.environ.get(ENV_VAR, "").split(",") if part.strip()] or [DEFAULT_URL]
    servers = [_parse(i, url) for i, url in enumerate(given, start=1)]
    seen: set[str] = set()
    for server in servers:
        if server.url in seen:
            raise ServerAddressError(f"server {server.url!r} is named twice")
        seen.add(server.url)
    return servers


def connect(server: Server, timeout: float | None) -> Client:
    """A connected ``Client`` to ``server``; raises ``SocketError`` if it cannot be reached."""
    if server.unix_socket is not None:
        return Client(unix_socket=server.unix_socket, timeout=timeout)
    return Client(server.host, server.port, timeout=timeout)
