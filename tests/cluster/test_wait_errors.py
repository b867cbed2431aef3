"""A reserve's wait on every server at once, where one server breaks the protocol and another then
hands out a job: the job is the caller's (not stranded, reserved by a cluster connection until its
TTR, behind a ``ProtocolError``), and the server that broke the protocol is logged and marked down.
The second server is a scripted fake (a reply that breaks the protocol is what a real beanstalkd
cannot give on demand); the first is a real beanstalkd."""

from __future__ import annotations

import logging
import threading

import pytest

from beanstalkm import Client
from beanstalkm.testing import BeanstalkdServer
from integration._fake import FakeServer

from .conftest import MakeCluster, url_of

WAIT = 10.0


def test_a_job_beside_a_broken_wait_reply_is_returned_and_the_breaker_marked_down(
    make_cluster: MakeCluster, caplog: pytest.LogCaptureFixture
) -> None:
    real = BeanstalkdServer()
    real.start()
    producer = Client(real.host, real.port, timeout=WAIT)
    timers: list[threading.Timer] = []

    def answer(line: str, body: bytes | None) -> object:
        if line.startswith("stats-tube"):
            return b"NOT_FOUND\r\n"
        if line.startswith("reserve-with-timeout") and line != "reserve-with-timeout 0" and not timers:
            # the real server's wait is written already (it comes first): its job comes after this reply
            timers.append(threading.Timer(0.2, lambda: producer.put({"hello": 1}, tube="t")))
            timers[0].start()
            return b"RESERVED 7 3\r\nabcXY"  # no CRLF after the body: the protocol is broken
        return NotImplemented

    fake = FakeServer(answer)
    real_url, fake_url = url_of(real), f"beanstalk://{fake.host}:{fake.port}"
    try:
        cluster = make_cluster([real_url, fake_url], timeout=3)
        cluster.watch("t")
        cluster.ignore("default")
        with caplog.at_level(logging.WARNING, logger="beanstalkm"):
            message = cluster.reserve(timeout=5, drop=False)
        assert timers, "the fake server was never asked to wait"
        assert message is not None and message.server == real_url and message.body == {"hello": 1}
        stats = message.stats()
        assert stats is not None and stats.state == "reserved"
        message.delete()  # the caller holds it: on the connection that reserved it
        health = {h.url: h for h in cluster.servers}
        assert health[real_url].up
        assert not health[fake_url].up and "CRLF" in (health[fake_url].last_error or "")
        assert any(fake_url in r.getMessage() and "CRLF" in r.getMessage() for r in caplog.records)
        tube = producer.queue.stats_tube("t")
        assert (tube.current_jobs_ready, tube.current_jobs_reserved, tube.total_jobs) == (0, 0, 1)
    finally:
        for timer in timers:
            timer.join(WAIT)
        producer.close()
        fake.close()
        real.stop()
