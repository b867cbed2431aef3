"""The cluster's decisions, with no server: placement orders, rendezvous stability, the weighted
reserve order, backoff with jitter, health."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from beanstalkm import ArgumentTypeError, InvalidArgument
from beanstalkm._core.cluster import ServerState, check_placement, placement_order, reserve_order
from beanstalkm._core.urls import parse_url


def _states(n: int) -> list[ServerState]:
    return [ServerState(str(parse_url(f"beanstalk://s{i}"))) for i in range(n)]


def test_round_robin_rotates() -> None:
    states = _states(3)
    firsts = [next(placement_order(states, "round-robin", turn, "t", None)).url for turn in range(6)]
    assert firsts == [s.url for s in states] * 2
    assert [s.url for s in placement_order(states, "round-robin", 1, "t", None)] == [
        states[1].url,
        states[2].url,
        states[0].url,
    ]


def test_rendezvous_moves_only_the_keys_of_a_server_added() -> None:
    three, four = _states(3), _states(4)
    keys = [f"key{i}" for i in range(3000)]
    before = {k: next(placement_order(three, "hash", 0, "t", k)).url for k in keys}
    after = {k: next(placement_order(four, "hash", 0, "t", k)).url for k in keys}
    moved = [k for k in keys if before[k] != after[k]]
    assert all(after[k] == four[3].url for k in moved)  # every key that moved went to the new server
    assert 0.18 < len(moved) / len(keys) < 0.32  # about a quarter
    assert min(Counter(before.values()).values()) / len(keys) > 0.28  # spread evenly
    # the tube is the key when none is given; a server down hands its keys to their next choice
    order = [s.url for s in placement_order(three, "hash", 5, "orders", None)]
    assert order == [s.url for s in placement_order(three, "hash", 0, "t", "orders")]
    rest = [s.url for s in placement_order([s for s in three if s.url != order[0]], "hash", 0, "orders", None)]
    assert rest == order[1:]


def test_callable_placement_is_asked_again_only_after_a_failure() -> None:
    states = _states(3)
    asked: list[list[str]] = []

    def choose(up: list[str], tube: str, key: str | None) -> str:
        asked.append(up)
        return up[-1]

    order = placement_order(states, choose, 0, "t", None)
    assert next(order).url == states[2].url and len(asked) == 1
    assert next(order).url == states[1].url and asked[1] == [states[0].url, states[1].url]
    with pytest.raises(InvalidArgument):
        next(placement_order(states, lambda up, tube, key: "nope", 0, "t", None))
    assert check_placement("hash") == "hash"
    with pytest.raises(InvalidArgument):
        check_placement("random")
    with pytest.raises(ArgumentTypeError):
        check_placement(None)


def test_the_weighted_reserve_order_follows_the_backlogs() -> None:
    states = _states(3)
    for state, backlog in zip(states, (1000, 500, 100), strict=True):
        state.backlog = backlog
    picks: Counter[str] = Counter()
    for turn in range(800):
        pick = reserve_order(states, turn)[0]
        picks[pick.url] += 1
        pick.backlog -= 1
    assert [picks[s.url] for s in states] == [500, 250, 50]  # each backlog half drained at the half-way point
    states[2].backlog = 0
    order = reserve_order(states, 0)
    assert order[-1] is states[2]  # thought empty: asked last (a job may have come since), never skipped
    assert len(order) == 3


def test_backoff_doubles_with_jitter_up_to_its_cap_and_health_reports_it() -> None:
    state = _states(1)[0]
    rng = random.Random(7)
    delays: list[float] = []
    for _ in range(8):
        assert state.failed("refused", 100.0, 0.5, 8.0, rng) is (not delays)
        delays.append(state.retry_at - 100.0)
    for n, delay in enumerate(delays):
        assert min(8.0, 0.5 * 2**n) * 0.5 <= delay <= min(8.0, 0.5 * 2**n)
    health = state.health(100.0)
    assert not health.up and health.failures == 8 and health.last_error == "refused" and health.retry_in > 0
    assert not state.available(100.0) and state.available(109.0)
    assert state.reached() is True and state.reached() is False
    assert state.health(0.0).up and state.health(0.0).failures == 0
