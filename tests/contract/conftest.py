"""Fixtures of the contract suite: `driver` (one per kind driver, with the backing services it needs) and
`harness` (a source of that kind, stopped and its driver closed after the test)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.contract.drivers import DRIVERS, KindDriver
from tests.contract.harness import Harness


@pytest.fixture(params=list(DRIVERS))
def driver(request: pytest.FixtureRequest, tmp_path: Path) -> KindDriver:
    cls = DRIVERS[request.param]
    services = {name: request.getfixturevalue(name) for name in cls.services}  # started only when needed
    return cls(tmp_path, services)


@pytest.fixture
async def harness(driver: KindDriver, tmp_path: Path) -> AsyncIterator[Harness]:
    h = Harness(driver, tmp_path)
    try:
        await driver.prepare()
        yield h
    finally:
        await h.close()
