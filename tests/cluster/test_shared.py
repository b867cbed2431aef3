"""One ``AsyncCluster`` shared by concurrent tasks of one loop (documented as supported): ``put_many``
beside another ``put_many``, ``put``s and ``stats()`` on the same producer connections. Every reply
must reach its own command: each message returned names the job of its own body, nothing is
reported failed that was stored, and no server is marked down for a crossed reply."""

from __future__ import annotations

import asyncio
from typing import Any

from beanstalkm import Client
from beanstalkm.aio import AsyncCluster, AsyncMessage

WAIT = 60.0  # the whole run's bound (it takes about a second)


def test_put_many_beside_puts_and_stats_on_one_async_cluster(urls: list[str]) -> None:
    async def main() -> tuple[list[tuple[str, int, Any]], list[str], list[bool], int]:
        sent: list[tuple[str, int, Any]] = []
        errors: list[str] = []

        def keep(messages: list[AsyncMessage]) -> None:
            sent.extend((m.server, m.uid, m.body) for m in messages)

        async with AsyncCluster(urls, timeout=10) as cluster:

            async def many(k: int) -> None:
                for r in range(15):
                    try:
                        keep(await cluster.put_many([{"many": k, "r": r, "i": i} for i in range(50)], tube="shared"))
                    except Exception as exc:
                        errors.append(f"put_many: {exc!r}")

            async def one() -> None:
                for r in range(200):
                    try:
                        keep([await cluster.put({"one": r}, tube="shared")])
                    except Exception as exc:
                        errors.append(f"put: {exc!r}")

            async def stats() -> None:
                for _ in range(100):
                    try:
                        await cluster.stats()
                        await cluster.stats_tube("shared")
                    except Exception as exc:
                        errors.append(f"stats: {exc!r}")
                    await asyncio.sleep(0)

            await asyncio.wait_for(asyncio.gather(many(1), many(2), one(), stats()), WAIT)
            health = [s.up and s.failures == 0 for s in cluster.servers]
            total = (await cluster.stats()).total_jobs
        return sent, errors, health, total

    sent, errors, health, total = asyncio.run(main())
    assert errors == []
    assert health == [True] * len(urls)  # no server marked down for a reply that was another's
    assert len(sent) == 2 * 15 * 50 + 200 == total  # each stored job reported, once
    assert len({(server, uid) for server, uid, _ in sent}) == len(sent)
    clients = {url: Client.from_url(url, timeout=10) for url in urls}
    try:
        wrong = [(s, u, b) for s, u, b in sent if (m := clients[s].queue.peek(u)) is None or m.body != b]
    finally:
        for client in clients.values():
            client.close()
    assert wrong == []  # each reference is the job of its own body


def test_peeks_and_kicks_on_two_tubes_at_once_each_act_on_their_own_tube(urls: list[str]) -> None:
    """``peek_*`` and ``kick`` name a tube, but beanstalkd acts on the connection's used tube: the
    ``use`` and the command must go as one (another task's ``use`` in between sent them to its tube)."""

    async def main() -> tuple[list[str], list[int], list[int]]:
        async with AsyncCluster(urls[:1], timeout=10) as cluster:
            for tube in ("a", "b"):
                await cluster.put_many([{"i": i} for i in range(50)], tube=tube, delay=3600)
            seen: list[str] = []

            async def peeks(tube: str) -> None:
                for _ in range(100):
                    message = await cluster.peek_delayed(tube)
                    assert message is not None
                    stats = await message.stats()
                    seen.append(f"{tube}:{stats.tube if stats is not None else None}")

            await asyncio.wait_for(asyncio.gather(peeks("a"), peeks("b")), WAIT)
            kicked = await asyncio.wait_for(asyncio.gather(cluster.kick("a", 20), cluster.kick("b", 20)), WAIT)
            ready = [(await cluster.stats_tube(tube))[urls[0]].current_jobs_ready for tube in ("a", "b")]
        return seen, list(kicked), ready

    seen, kicked, ready = asyncio.run(main())
    assert sorted(set(seen)) == ["a:a", "b:b"] and len(seen) == 200
    assert kicked == [20, 20]
    assert ready == [20, 20]  # each kick on its own tube
