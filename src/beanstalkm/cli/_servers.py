"""Every server address the CLI handles, in one place: ``-s URL``, the default, connecting.

The URLs are the library's own (``beanstalk://host[:port]``, ``beanstalks://host[:port]`` for TLS,
``unix:///path/to/socket``), parsed by it; without ``-s``, ``$BEANSTALKD_URL`` (a comma-separated list
means several servers), else ``beanstalk://127.0.0.1:11300`` (``beanstalkm.default_urls()``).
"""

from __future__ import annotations

__all__ = ["Server", "connect", "parse_servers"]

from collections.abc import Sequence
from dataclasses import dataclass

from beanstalkm import Client, default_urls
from beanstalkm._core.urls import parse_urls


@dataclass(frozen=True, slots=True)
class Server:
    """One server named on the command line: its position (1-based, in ``-s`` order) and canonical URL."""

    index: int
    url: str


def parse_servers(urls: Sequence[str]) -> list[Server]:
    """The servers of ``-s`` options (each may itself be a comma-separated list), else the default.

    Raises:
        InvalidArgument: a malformed URL, or one named twice (the message names it).
    """
    given = [part.strip() for url in urls for part in url.split(",") if part.strip()]
    parsed = [str(url) for url in parse_urls(given, "--server")] if given else default_urls()
    return [Server(i, url) for i, url in enumerate(parsed, start=1)]


def connect(server: Server, timeout: float | None) -> Client:
    """A connected ``Client`` to ``server``; raises ``SocketError`` if it cannot be reached."""
    return Client.from_url(server.url, timeout=timeout)
