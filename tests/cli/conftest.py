"""Fixtures for the CLI tests: a tube holding a job in every state."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from beanstalkm.testing import BeanstalkdServer

from ._support import Mixed, populate


@pytest.fixture
def mixed(server: BeanstalkdServer) -> Iterator[Mixed]:
    yield from populate(server)
