"""What the ``Client`` and ``Message`` integration tests share (their fixtures are in conftest.py)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from beanstalkm import Connection

MISSING_ID = 987654321

#: Longest a test waits for the server (or another thread) to get somewhere.
PATIENCE = 5.0

BODIES: list[Any] = [
    "hey!",
    "",
    {"a": 1, "nested": {"list": [1, 2.5, None, True]}},
    [1, "two", {"three": 3}],
    [],
    {},
    0,
    -17,
    2**70,
    1.5,
    True,
    False,
    None,
    "日本語 ☃",
    {"日本語": "☃"},
    "\x00\x01\xfe\xff",
    {"data": "\x00\x01\xfe\xff"},
    '{"@context": "message"}',
    "123",
]


def _token(body: Any) -> str:
    return hashlib.md5(json.dumps({"body": body}, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _state(conn: Connection, job_id: int) -> str:
    return conn.queue.stats_job(job_id).state


def _raw(conn: Connection, job_id: int) -> bytes:
    """The job's bytes as the server holds them."""
    peeked = conn.queue.peek(job_id)
    assert peeked is not None and peeked.raw is not None
    return peeked.raw
