"""Failure records as stored: what ``FailureRecord.from_json`` takes for a record, and that a job in a
record tube that is not a well-formed record is passed over (never listed, never touched)."""

from __future__ import annotations

import pytest

from beanstalkm import Client, FailureRecord
from beanstalkm._core.worker import RECORD_MARK, record_tube
from beanstalkm._sync.failures import list_records, store_record
from beanstalkm.testing import BeanstalkdServer

GOOD: dict[str, object] = {
    RECORD_MARK: 1,
    "job_id": 7,
    "tube": "records",
    "priority": 3,
    "reason": "raised",
    "exception": "ValueError",
    "message": "bad",
    "traceback": "Traceback ...",
    "attempts": 4,
    "reserves": 4,
    "kicks": 0,
    "host": "h",
    "pid": 12,
    "time": 1700000000,
}

BAD = [
    pytest.param({**GOOD, RECORD_MARK: 2}, id="another-format-version"),
    pytest.param({key: value for key, value in GOOD.items() if key != "host"}, id="a-key-missing"),
    pytest.param({**GOOD, "job_id": True}, id="bool-for-int"),
    pytest.param({**GOOD, "job_id": 7.0}, id="float-for-int"),
    pytest.param({**GOOD, "tube": 5}, id="int-for-str"),
    pytest.param({**GOOD, "time": "now"}, id="str-for-time"),
    pytest.param({**GOOD, "time": False}, id="bool-for-time"),
    pytest.param({**GOOD, "reason": "exploded"}, id="unknown-reason"),
    pytest.param({**GOOD, "reason": ["raised"]}, id="unhashable-reason"),
    pytest.param(["not", "a", "mapping"], id="a-list"),
]


def test_a_stored_record_reads_back_as_it_was() -> None:
    record = FailureRecord.from_json(GOOD, record_id=99)
    assert record is not None
    assert (record.job_id, record.tube, record.reason, record.record_id, record.state) == (
        7,
        "records",
        "raised",
        99,
        None,
    )
    assert record.time == 1700000000.0 and isinstance(record.time, float)  # an int time is taken as a float
    assert FailureRecord.from_json(record.to_json(), record_id=99) == record
    for reason in ("raised", "crashed", "requested", "invalid"):
        again = FailureRecord.from_json({**GOOD, "reason": reason})
        assert again is not None and again.reason == reason


@pytest.mark.parametrize("data", BAD)
def test_anything_else_is_not_a_record(data: object) -> None:
    assert FailureRecord.from_json(data) is None


def test_a_malformed_record_in_a_record_tube_is_passed_over(server: BeanstalkdServer) -> None:
    with Client(server.host, server.port) as client:
        buried = client.put("x", tube="records").uid
        forged = client.put({**GOOD, "job_id": buried, "reason": "exploded"}, tube=record_tube("records", buried))
        assert list_records(client, "records") == []  # its tube is listed, its job peeked, and skipped
        good = FailureRecord.from_json({**GOOD, "job_id": 10**9})  # a job no server has: its state is "gone"
        assert good is not None
        stored = store_record(client, good)
        records = list_records(client, "records")
        assert [(r.job_id, r.record_id, r.state) for r in records] == [(10**9, stored, "gone")]
        assert client.queue.stats_job(forged.uid).state == "ready"  # nothing was reserved or deleted
