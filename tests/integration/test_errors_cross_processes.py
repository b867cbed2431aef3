"""beanstalkm's errors survive pickling, as they must to cross a process boundary (multiprocessing,
``concurrent.futures.ProcessPoolExecutor``): each comes back as the same class with the same fields
and message. Before, ``InvalidArgument``/``ArgumentTypeError``, ``BatchFailed`` and ``CorruptJob``
could be pickled but not unpickled, which breaks a process pool (``BrokenProcessPool``: every
pending future fails) instead of giving the caller the error."""

from __future__ import annotations

import concurrent.futures
import copy
import multiprocessing
import pickle

import pytest

from beanstalkm import (
    ArgumentTypeError,
    BatchFailed,
    Client,
    CommandFailed,
    InvalidArgument,
    NotFound,
    ProtocolError,
    SocketError,
)
from beanstalkm._core.message import _ReservationEnded
from beanstalkm._errors import CorruptJob, UnexpectedResponse
from beanstalkm.testing import BeanstalkdServer

ERRORS: list[BaseException] = [
    InvalidArgument("tube", "a b", "a tube name cannot contain ' '"),
    ArgumentTypeError("priority", "1", "must be an int, not str"),
    SocketError("put: connection failed", maybe_executed=True),
    NotFound("delete", "NOT_FOUND"),
    CommandFailed("bury", "NOT_FOUND", ["x"]),
    UnexpectedResponse("put", "WHAT", ["1"]),
    BatchFailed([1, NotFound("delete", "NOT_FOUND"), None]),
    ProtocolError("reply too long"),
    CorruptJob(7, b"\0" * 5, b"\0\0"),
    _ReservationEnded("release", 42),  # release/bury/touch of a lapsed reservation: a NotFound, not sent
]

FIELDS = ("name", "value", "reason", "maybe_executed", "command", "status", "reply_args", "job_id", "body")


@pytest.mark.parametrize("how", ["pickle", "copy", "deepcopy"])
@pytest.mark.parametrize("error", ERRORS, ids=[f"{type(e).__name__}-{i}" for i, e in enumerate(ERRORS)])
def test_an_error_round_trips_through_pickle(error: BaseException, how: str) -> None:
    """Failed before the fix for the lapsed reservation's NotFound (PicklingError: it is not the same object
    as beanstalkm.NotFound; copy: TypeError, its __init__ does not take CommandFailed's args)."""
    error.__notes__ = []
    error.add_note("a note travels too")
    if how == "pickle":
        back = pickle.loads(pickle.dumps(error))
    else:
        back = copy.copy(error) if how == "copy" else copy.deepcopy(error)
    assert back.__notes__ == ["a note travels too"]
    assert type(back) is type(error)
    assert str(back) == str(error)
    for field in FIELDS:
        assert getattr(back, field, None) == getattr(error, field, None), field
    if isinstance(error, BatchFailed):
        assert isinstance(back, BatchFailed)
        assert [type(r) for r in back.results] == [type(r) for r in error.results]


def _bad_put(port: int) -> None:
    with Client("127.0.0.1", port, timeout=5) as client:
        client.put("job", tube="a b")  # InvalidArgument, raised in the child


def test_an_invalid_argument_raised_in_a_process_pool_reaches_the_caller(server: BeanstalkdServer) -> None:
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        future = pool.submit(_bad_put, server.port)
        with pytest.raises(InvalidArgument) as info:
            future.result(timeout=60)
    assert info.value.name == "tube" and info.value.value == "a b"
