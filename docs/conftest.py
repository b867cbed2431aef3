"""Runs docs/tutorial.md as a doctest against a beanstalkd this test run starts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from beanstalkm.testing import BeanstalkdServer


@pytest.fixture(autouse=True, scope="module")
def _tutorial_server(doctest_namespace: dict[str, Any]) -> Iterator[None]:
    with BeanstalkdServer() as server:
        doctest_namespace["port"] = server.port
        yield
