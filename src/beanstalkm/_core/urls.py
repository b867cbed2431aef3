"""Server addresses as URLs, I/O-free: ``beanstalk://host[:port]``, ``beanstalks://host[:port]`` (TLS),
``unix:///path/to/socket``; and the default list (``BEANSTALKD_URL``, else ``beanstalk://127.0.0.1:11300``).

Every malformed URL is an ``InvalidArgument`` naming it and saying why, raised before anything connects.
"""

from __future__ import annotations

__all__ = ["DEFAULT_URL", "ENV_VAR", "ServerURL", "default_urls", "format_url", "parse_url", "parse_urls"]

import ipaddress
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from beanstalkm._core.checks import check_host, check_path
from beanstalkm._errors import ArgumentTypeError, InvalidArgument

DEFAULT_PORT = 11300
DEFAULT_URL = "beanstalk://127.0.0.1:11300"
"""The server used where none is named and ``BEANSTALKD_URL`` is unset."""

ENV_VAR = "BEANSTALKD_URL"
"""The environment variable naming the default server(s): one URL, or several separated by commas."""

Scheme = Literal["beanstalk", "beanstalks", "unix"]
_SCHEMES: dict[str, Scheme] = {"beanstalk": "beanstalk", "beanstalks": "beanstalks", "unix": "unix"}
_FORMS = "beanstalk://host[:port], beanstalks://host[:port] (TLS) or unix:///path/to/socket"
_HOST_FORBIDDEN = frozenset(" /?#@[]%\\")
_Bad = Callable[[str], InvalidArgument]
"""``bad(reason)``: the error to raise for the URL being parsed."""


@dataclass(frozen=True, slots=True)
class ServerURL:
    """A parsed server URL. ``host``/``port`` for TCP (``port`` 0 for a UNIX socket), ``path`` for a
    UNIX socket; ``tls`` for ``beanstalks``. ``str()`` is the canonical form (the port spelled out)."""

    scheme: Scheme
    host: str
    port: int
    path: str | None

    @property
    def tls(self) -> bool:
        """Whether the connection speaks TLS (``beanstalks://``)."""
        return self.scheme == "beanstalks"

    def __str__(self) -> str:
        return format_url(self.host, self.port, self.path, self.tls)


def format_url(host: str, port: int, unix_socket: str | None, tls: bool) -> str:
    """The canonical URL of a connection's address (an IPv6 address in brackets)."""
    if unix_socket is not None:
        return "unix://" + unix_socket
    shown = f"[{host}]" if ":" in host else host
    return f"{'beanstalks' if tls else 'beanstalk'}://{shown}:{port}"


def parse_url(url: object, name: str = "url") -> ServerURL:
    """Parse one server URL; ``InvalidArgument`` (``ArgumentTypeError`` for a non-str) naming it if malformed."""
    if not isinstance(url, str):
        raise ArgumentTypeError(name, url, f"a server URL is a str ({_FORMS}), not {type(url).__name__}")

    def bad(reason: str) -> InvalidArgument:
        return InvalidArgument(name, url, reason)

    if not url:
        raise bad(f"a server URL cannot be empty; expected {_FORMS}")
    if any(c.isspace() or not c.isprintable() for c in url):
        raise bad("a server URL cannot contain whitespace or control characters")
    scheme_text, sep, rest = url.partition("://")
    if not sep:
        raise bad(f"not a server URL: expected {_FORMS}")
    scheme = _SCHEMES.get(scheme_text.lower())
    if scheme is None:
        raise bad(f"unknown scheme {scheme_text!r}: expected {_FORMS}")
    if scheme == "unix":
        return _parse_unix(rest, bad)
    cut = min((i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    authority, tail = rest[:cut], rest[cut:]
    if tail.startswith("?"):
        raise bad("a query (?...) is meaningless in a server URL")
    if tail.startswith("#"):
        raise bad("a fragment (#...) is meaningless in a server URL")
    if tail not in ("", "/"):
        raise bad(f"a path ({tail!r}) is meaningless in a {scheme}:// URL (for a UNIX socket use unix:///path)")
    if "@" in authority:
        raise bad("user info (user:password@) is meaningless: beanstalkd has no authentication")
    host, port = _parse_authority(authority, bad)
    return ServerURL(scheme, host, port, None)


def _parse_authority(authority: str, bad: _Bad) -> tuple[str, int]:
    port_text: str | None = None
    if authority.startswith("["):
        end = authority.find("]")
        if end < 0:
            raise bad("an IPv6 address opened with '[' is not closed with ']'")
        host, after = authority[1:end], authority[end + 1 :]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise bad(f"{host!r} in brackets is not an IPv6 address") from None
        if after:
            if not after.startswith(":"):
                raise bad(f"unexpected {after!r} after the IPv6 address")
            port_text = after[1:]
    else:
        host = authority
        if ":" in authority:
            host, _, port_text = authority.rpartition(":")
            if ":" in host:
                raise bad("an IPv6 address goes in brackets: beanstalk://[::1]:11300")
        if not host:
            raise bad("the host is empty")
        forbidden = sorted(set(host) & _HOST_FORBIDDEN)
        if forbidden:
            raise bad(f"the host cannot contain {forbidden[0]!r}")
        try:
            check_host("host", host)
        except InvalidArgument as exc:
            raise bad(exc.reason) from None
        host = host.lower()
    if port_text is None:
        return host, DEFAULT_PORT
    if not port_text:
        raise bad("the port after ':' is empty")
    if not (port_text.isascii() and port_text.isdigit()):
        raise bad(f"the port {port_text!r} is not a number")
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise bad(f"the port {port} is outside 1..65535")
    return host, port


def _parse_unix(rest: str, bad: _Bad) -> ServerURL:
    if not rest.startswith("/"):
        raise bad("a unix URL takes an absolute path and no host: unix:///path/to/socket")
    if "?" in rest or "#" in rest:
        raise bad("a query or fragment is meaningless in a unix URL")
    if rest == "/" or rest.endswith("/"):
        raise bad("a unix URL must name a socket file, not a directory")
    try:
        path = check_path("path", rest)
    except InvalidArgument as exc:
        raise bad(exc.reason) from None
    return ServerURL("unix", "", 0, path)


def parse_urls(urls: object, name: str = "urls") -> list[ServerURL]:
    """Parse a list of server URLs, or one str of them separated by commas; none may repeat."""
    if isinstance(urls, str):
        items: list[object] = [u.strip() for u in urls.split(",")]
    elif isinstance(urls, (list, tuple)):
        items = list(urls)
    else:
        raise ArgumentTypeError(
            name, urls, f"must be a list of server URLs or a comma-separated str, not {type(urls).__name__}"
        )
    if not items or items == [""]:
        raise InvalidArgument(name, urls, "no server URL given")
    parsed = [parse_url(item, name) for item in items]
    seen: set[str] = set()
    for url in parsed:
        if str(url) in seen:
            raise InvalidArgument(name, urls, f"{url} is listed twice")
        seen.add(str(url))
    return parsed


def default_urls(environ: Mapping[str, str] | None = None) -> list[str]:
    """The servers to use where none is named: ``BEANSTALKD_URL`` (comma-separated for several), each
    checked and in canonical form, else ``["beanstalk://127.0.0.1:11300"]``."""
    value = (os.environ if environ is None else environ).get(ENV_VAR, "")
    if not value.strip():
        return [DEFAULT_URL]
    return [str(url) for url in parse_urls(value, ENV_VAR)]
