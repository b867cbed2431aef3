"""A reserved ``Message``'s lifecycle (touch, release, bury, kick, delete) against a real beanstalkd."""

from __future__ import annotations

import time

import pytest

from beanstalkm import (
    DEFAULT_TUBE,
    Client,
    Connection,
    NotFound,
)

from ._client_support import _state

# -- the message lifecycle -----------------------------------------------------------------------


def test_message_lifecycle(client: Client, observer: Connection) -> None:
    sent = client.put("cycle", ttr=60)
    assert sent.stats() is not None
    client.watch(DEFAULT_TUBE)

    m = client.reserve(timeout=0, drop=False)
    assert m is not None and m.uid == sent.uid
    m.release()
    stats = m.stats()
    assert stats is not None and stats.state == "ready" and stats["state"] == "ready"
    assert m.reserved is False

    m = client.reserve(timeout=0, drop=False)
    assert m is not None
    m.bury()
    assert _state(observer, m.uid) == "buried"
    assert client.reserve(timeout=0) is None
    m.kick()
    assert _state(observer, m.uid) == "ready"

    m = client.reserve(timeout=0, drop=False)
    assert m is not None
    time.sleep(1.1)
    before = observer.queue.stats_job(m.uid).time_left
    m.touch()
    after = observer.queue.stats_job(m.uid)
    assert after.state == "reserved"
    assert after.time_left > before

    m.release(delay=3600)
    stats = m.stats()
    assert stats is not None and (stats.state, stats.delay) == ("delayed", 3600)
    m.kick()
    assert _state(observer, m.uid) == "ready"

    m = client.reserve(timeout=0, drop=False)
    assert m is not None
    uid = m.uid
    m.delete()
    assert m.deleted is True
    assert m.uid == uid  # the id is kept
    assert m.stats() is None
    with pytest.raises(NotFound):
        observer.queue.stats_job(uid)


def test_release_and_bury_keep_priority(client: Client, observer: Connection) -> None:
    client.put("p", priority=42)
    client.watch(DEFAULT_TUBE)
    m = client.reserve(drop=False)
    assert m is not None
    assert m.priority == 42
    m.release()
    assert observer.queue.stats_job(m.uid).pri == 42

    m = client.reserve(drop=False)
    assert m is not None
    m.bury()
    stats = observer.queue.stats_job(m.uid)
    assert (stats.state, stats.pri) == ("buried", 42)
    m.kick()

    m = client.reserve(drop=False)
    assert m is not None
    m.release(priority=7)
    assert observer.queue.stats_job(m.uid).pri == 7
    m = client.reserve(drop=False)
    assert m is not None
    m.bury(priority=3)
    assert observer.queue.stats_job(m.uid).pri == 3


def test_lifecycle_errors_are_raised(client: Client) -> None:
    sent = client.put("x")
    # not reserved: release/bury/touch fail with NotFound, nothing swallowed
    with pytest.raises(NotFound):
        sent.release()
    with pytest.raises(NotFound):
        sent.bury()
    with pytest.raises(NotFound):
        sent.touch()
    with pytest.raises(NotFound):
        sent.kick()  # it is ready, neither buried nor delayed
    sent.delete()
    assert sent.stats() is None
