"""The gateway on an ephemeral port in front of a real suite (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from services.gateway.app import RunningGateway, start_gateway
from tests.support import Suite


@pytest.fixture
def gateway(suite: Suite) -> Iterator[RunningGateway]:
    running: RunningGateway = suite.run(start_gateway(suite.addresses))
    try:
        yield running
    finally:
        suite.run(running.stop(0))


@pytest.fixture
def http(gateway: RunningGateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.url, timeout=30) as client:
        yield client
