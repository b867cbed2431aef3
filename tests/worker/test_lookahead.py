"""The slot's lookahead: the next job's ``stats-job`` guessed from a ``peek-ready`` and sent with the reserve.

A hit gives the reserved job's own stats (they count this reserve) in the same round trip; a miss
(another client took the guessed job, an urgent job came first) drops the guess's stats and asks
the job's own; either way the worker sees exactly what a separate ``stats-job`` would say.
"""

from __future__ import annotations

from collections.abc import Callable

from beanstalkm import Client, JobStats, Message, Worker
from beanstalkm._core.worker import LOOKAHEAD_REST, SEQUENTIAL_AFTER, Lookahead, take_steps
from beanstalkm._generated import commands as _c
from beanstalkm.testing import BeanstalkdServer


def take(client: Client, ahead: Lookahead | None) -> tuple[Message | None, JobStats | None]:
    reserve = _c.reserve_with_timeout(0)
    to_message = client._reserved_message
    error, message, stats = client._converse(
        lambda session, reader: take_steps(session, reader, None, reserve, to_message, ahead), (reserve,)
    )
    assert error is None
    assert message is None or isinstance(message, Message)
    return message, stats


def test_a_hit_and_a_miss_give_the_jobs_own_stats(server: BeanstalkdServer) -> None:
    with Client(server.host, server.port) as producer, Client(server.host, server.port) as thief:
        ids = [m.uid for m in producer.put_many(["a", "b", "c", "d"], tube="la", priority=7)]
        with Client(server.host, server.port) as client:
            client.watch("la")
            client.ignore("default")
            ahead = Lookahead("la")
            message, stats = take(client, ahead)  # no guess yet: asked apart; the peek sets the guess
            assert message is not None and stats is not None
            assert (message.uid, stats.id, stats.reserves, stats.state) == (ids[0], ids[0], 1, "reserved")
            assert (ahead.guess, ahead.hits, ahead.misses) == (ids[1], 0, 0)
            assert client._session.server_using == "la"  # the lookahead's use: peek-ready looks at the used tube

            message, stats = take(client, ahead)  # the guess was right: stats in the same round trip
            assert message is not None and stats is not None
            assert (message.uid, stats.id, stats.reserves, stats.pri) == (ids[1], ids[1], 1, 7)
            assert (ahead.guess, ahead.hits, ahead.misses) == (ids[2], 1, 0)
            assert message.priority == 7  # learned from the guessed stats

            thief.watch("la")
            stolen = thief.reserve(timeout=0, drop=False)  # takes the guessed job
            assert stolen is not None and stolen.uid == ids[2]
            message, stats = take(client, ahead)  # a miss: the job's own stats, asked apart
            assert message is not None and stats is not None
            assert (message.uid, stats.id, stats.reserves) == (ids[3], ids[3], 1)
            assert (ahead.guess, ahead.hits, ahead.misses) == (None, 1, 1)

            stolen.release()
            message, stats = take(client, ahead)  # released once, reserved again: its reserves say 2
            assert message is not None and stats is not None
            assert (message.uid, stats.reserves, stats.releases) == (ids[2], 2, 1)
            assert take(client, ahead) == (None, None)  # empty: timed out, no guess
            assert ahead.guess is None


def test_large_jobs_turn_the_lookahead_off(server_factory: Callable[..., BeanstalkdServer]) -> None:
    server = server_factory(max_job_size=1 << 20)
    with Client(server.host, server.port) as producer, Client(server.host, server.port) as client:
        producer.put_many(["x" * 70000, "y" * 70000, "z"], tube="big")
        client.watch("big")
        ahead = Lookahead("big")
        message, stats = take(client, ahead)
        assert message is not None and stats is not None and ahead.off and ahead.guess is None


def test_a_worker_counts_attempts_right_with_the_lookahead(server: BeanstalkdServer) -> None:
    """Jobs that fail go back to ready (the lookahead then misses) and are buried after their budget with
    the server's count of attempts; the others run once, in order (hits)."""
    worker = Worker(host=server.host, port=server.port, concurrency=1)
    runs: dict[int, int] = {}

    @worker.handler("counted", retries=1, backoff=[0])
    def handle(message: Message) -> None:
        runs[message.uid] = runs.get(message.uid, 0) + 1
        if message.body % 5 == 0:
            raise RuntimeError("always")

    with Client(server.host, server.port) as producer:
        ids = [m.uid for m in producer.put_many(list(range(40)), tube="counted")]
    poison = [uid for n, uid in enumerate(ids) if n % 5 == 0]
    stats = worker.run(burst=True, handle_signals=False)
    assert (stats.succeeded, stats.retried, stats.buried) == (32, 8, 8)
    assert runs == {uid: 2 if uid in poison else 1 for uid in ids}
    records = {r.job_id: r for r in worker.failures("counted")}
    assert sorted(records) == poison
    assert all((r.attempts, r.reserves, r.reason) == (2, 2, "raised") for r in records.values())
    ahead = worker._slots[0].lanes[0].ahead["counted"]
    assert ahead.hits >= 20 and ahead.misses >= 1


def test_consecutive_ids_turn_the_peek_off_until_a_miss(server: BeanstalkdServer) -> None:
    """Once ``peek-ready`` has shown the reserved id + 1 ``SEQUENTIAL_AFTER`` times, the guess is the last
    id + 1 with no peek; the stats are still the job's own, and the first miss brings the peek back."""
    with Client(server.host, server.port) as producer, Client(server.host, server.port) as thief:
        ids = [m.uid for m in producer.put_many(list(range(10)), tube="seq")]
        with Client(server.host, server.port) as client:
            client.watch("seq")
            client.ignore("default")
            ahead = Lookahead("seq")
            for n in range(SEQUENTIAL_AFTER + 1):
                message, stats = take(client, ahead)
                assert message is not None and stats is not None and (message.uid, stats.id) == (ids[n], ids[n])
            assert ahead.sequential and ahead.guess == ids[SEQUENTIAL_AFTER + 1]
            message, stats = take(client, ahead)  # guessed id + 1, no peek: a hit
            assert message is not None and stats is not None and stats.id == message.uid == ids[SEQUENTIAL_AFTER + 1]
            assert stats.reserves == 1 and ahead.sequential
            thief.watch("seq")
            stolen = thief.reserve(timeout=0, drop=False)
            assert stolen is not None and stolen.uid == ids[SEQUENTIAL_AFTER + 2]
            message, stats = take(client, ahead)  # a miss: the job's own stats; peeking again
            assert message is not None and stats is not None and stats.id == message.uid == ids[SEQUENTIAL_AFTER + 3]
            assert not ahead.sequential and ahead.streak == 0


def test_misses_in_a_row_rest_the_lookahead(server: BeanstalkdServer) -> None:
    """Another client taking every guessed job: after ``LOOKAHEAD_REST[0]`` misses in a row the slot stops
    guessing for ``LOOKAHEAD_REST[1]`` reserves (the worker counts them down)."""
    with Client(server.host, server.port) as producer, Client(server.host, server.port) as thief:
        producer.put_many(list(range(12)), tube="rest")
        thief.watch("rest")
        with Client(server.host, server.port) as client:
            client.watch("rest")
            ahead = Lookahead("rest")
            take(client, ahead)  # sets the first guess
            for _ in range(LOOKAHEAD_REST[0]):
                assert ahead.guess is not None
                assert thief.reserve(timeout=0, drop=False) is not None  # takes the guessed job
                message, stats = take(client, ahead)
                assert message is not None and stats is not None and stats.id == message.uid
            assert (ahead.rest, ahead.guess, ahead.missed) == (LOOKAHEAD_REST[1], None, 0)
