"""Server URLs: every good form parses to what it says, every bad one is an ``InvalidArgument`` naming it
before anything connects; ``from_url`` and ``BEANSTALKD_URL`` in both flavours."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

import beanstalkm
from beanstalkm import ArgumentTypeError, Client, Connection, InvalidArgument
from beanstalkm._core.urls import ServerURL, default_urls, parse_url, parse_urls
from beanstalkm.aio import AsyncClient, AsyncConnection
from beanstalkm.testing import BeanstalkdServer

GOOD = [
    ("beanstalk://127.0.0.1:11300", ServerURL("beanstalk", "127.0.0.1", 11300, None), "beanstalk://127.0.0.1:11300"),
    ("beanstalk://localhost", ServerURL("beanstalk", "localhost", 11300, None), "beanstalk://localhost:11300"),
    ("beanstalk://Queue.Example.ORG:1/", ServerURL("beanstalk", "queue.example.org", 1, None), None),
    ("BEANSTALK://h:65535", ServerURL("beanstalk", "h", 65535, None), "beanstalk://h:65535"),
    ("beanstalks://q.example.org", ServerURL("beanstalks", "q.example.org", 11300, None), None),
    ("beanstalk://[::1]:11301", ServerURL("beanstalk", "::1", 11301, None), "beanstalk://[::1]:11301"),
    ("unix:///run/beanstalkd.sock", ServerURL("unix", "", 0, "/run/beanstalkd.sock"), "unix:///run/beanstalkd.sock"),
]


@pytest.mark.parametrize(("url", "parsed", "canonical"), GOOD)
def test_good_urls_parse(url: str, parsed: ServerURL, canonical: str | None) -> None:
    result = parse_url(url)
    assert result == parsed
    assert result.tls == (parsed.scheme == "beanstalks")
    if canonical is not None:
        assert str(result) == canonical
    assert parse_url(str(result)) == result  # the canonical form parses back to the same


BAD = [
    ("", "cannot be empty"),
    ("127.0.0.1:11300", "not a server URL"),
    ("redis://127.0.0.1", "unknown scheme 'redis'"),
    ("beanstalk://", "the host is empty"),
    ("beanstalk://:11300", "the host is empty"),
    ("beanstalk://h:", "the port after ':' is empty"),
    ("beanstalk://h:0", "the port 0 is outside 1..65535"),
    ("beanstalk://h:65536", "the port 65536 is outside 1..65535"),
    ("beanstalk://h:-1", "the port '-1' is not a number"),
    ("beanstalk://h:11300x", "the port '11300x' is not a number"),
    ("beanstalk://h:١٢", "is not a number"),  # Arabic-Indic digits are digits to str.isdigit, not to us
    ("beanstalk://user:pw@h", "user info"),
    ("beanstalk://h/tube", "a path ('/tube') is meaningless"),
    ("beanstalk://h?timeout=1", "a query"),
    ("beanstalk://h#x", "a fragment"),
    ("beanstalk://::1", "an IPv6 address goes in brackets"),
    ("beanstalk://[::1", "is not closed"),
    ("beanstalk://[nothost]:1", "is not an IPv6 address"),
    ("beanstalk://[::1]x", "unexpected 'x'"),
    ("beanstalk://h h", "whitespace"),
    ("beanstalk://h\x00", "control characters"),
    ("beanstalk://h%41", "cannot contain '%'"),
    ("unix://relative/path", "absolute path and no host"),
    ("unix:///", "not a directory"),
    ("unix:///run/", "not a directory"),
    ("unix:///run/sock?x=1", "query or fragment"),
]


@pytest.mark.parametrize(("url", "reason"), BAD)
def test_bad_urls_are_refused_naming_them(url: str, reason: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_url(url)
    assert reason in caught.value.reason
    assert caught.value.value == url
    assert repr(url)[:70] in str(caught.value)


@pytest.mark.parametrize("value", [None, 11300, b"beanstalk://h", ["beanstalk://h"]])
def test_a_url_that_is_no_str_is_a_type_error(value: object) -> None:
    with pytest.raises(ArgumentTypeError):
        parse_url(value)


def test_lists_and_comma_separated_strings() -> None:
    assert [str(u) for u in parse_urls("beanstalk://a, beanstalk://b:2")] == [
        "beanstalk://a:11300",
        "beanstalk://b:2",
    ]
    assert len(parse_urls(["beanstalk://a", "unix:///s"])) == 2
    with pytest.raises(InvalidArgument, match="listed twice"):
        parse_urls("beanstalk://a,beanstalk://a:11300")
    with pytest.raises(InvalidArgument, match="no server URL"):
        parse_urls([])
    with pytest.raises(InvalidArgument, match="cannot be empty"):
        parse_urls("beanstalk://a,,beanstalk://b")
    with pytest.raises(ArgumentTypeError):
        parse_urls(42)


def test_default_urls_follow_beanstalkd_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BEANSTALKD_URL", raising=False)
    assert beanstalkm.default_urls() == ["beanstalk://127.0.0.1:11300"]
    monkeypatch.setenv("BEANSTALKD_URL", "  ")
    assert beanstalkm.default_urls() == ["beanstalk://127.0.0.1:11300"]
    monkeypatch.setenv("BEANSTALKD_URL", "beanstalk://a:1,beanstalks://b")
    assert beanstalkm.default_urls() == ["beanstalk://a:1", "beanstalks://b:11300"]
    assert default_urls({"BEANSTALKD_URL": "unix:///x"}) == ["unix:///x"]
    monkeypatch.setenv("BEANSTALKD_URL", "beanstalk://a,http://b")
    with pytest.raises(InvalidArgument) as caught:
        beanstalkm.default_urls()
    assert caught.value.name == "BEANSTALKD_URL" and "unknown scheme 'http'" in str(caught.value)


def _refuse_connects(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Record (and refuse) every connect attempt: a bad URL must be refused before any."""
    attempts: list[object] = []

    def create_connection(*args: object, **kwargs: object) -> socket.socket:
        attempts.append(args)
        raise AssertionError("connected")

    monkeypatch.setattr(socket, "create_connection", create_connection)
    return attempts


@pytest.mark.parametrize(("url", "reason"), BAD[:8])
def test_from_url_refuses_before_connecting(monkeypatch: pytest.MonkeyPatch, url: str, reason: str) -> None:
    attempts = _refuse_connects(monkeypatch)
    for factory in (Connection.from_url, Client.from_url, AsyncConnection.from_url, AsyncClient.from_url):
        with pytest.raises(InvalidArgument, match="invalid url"):
            factory(url)
    assert attempts == []


def test_from_url_connects_both_flavours(server: BeanstalkdServer, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"beanstalk://{server.host}:{server.port}"
    with Client.from_url(url, timeout=5) as client:
        assert client.url == url
        assert client.put("sync").uid > 0

    async def main() -> str:
        async with AsyncClient.from_url(url, timeout=5) as client:
            message = await client.put("async")
            return message.server

    assert asyncio.run(main()) == url
    monkeypatch.setenv("BEANSTALKD_URL", url)
    with Connection.from_url(timeout=5) as conn:  # no URL: BEANSTALKD_URL's one server
        assert conn.queue.stats().current_jobs_ready == 2
    monkeypatch.setenv("BEANSTALKD_URL", f"{url},beanstalk://127.0.0.1:1")
    with pytest.raises(InvalidArgument, match="names 2 servers"):
        Connection.from_url()


def test_from_url_unix_socket(unix_server: BeanstalkdServer) -> None:
    assert unix_server.unix_path is not None
    with Client.from_url("unix://" + unix_server.unix_path, timeout=5) as client:
        message = client.put({"n": 1})
        assert message.server == "unix://" + unix_server.unix_path
        assert message.ref == (message.server, message.uid)


def test_ssl_only_with_beanstalks(monkeypatch: pytest.MonkeyPatch) -> None:
    import ssl

    attempts = _refuse_connects(monkeypatch)
    context = ssl.create_default_context()
    not_a_context: Any = True
    with pytest.raises(InvalidArgument, match="needs a beanstalks:// URL"):
        Client.from_url("beanstalk://h", ssl=context)
    with pytest.raises(ArgumentTypeError, match=r"ssl\.SSLContext"):
        AsyncClient("h", ssl=not_a_context)
    assert attempts == []
