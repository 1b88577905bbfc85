from __future__ import annotations

from collections.abc import Iterator

import pytest
from runtime_harness import Listener, Moto

from sas.runtime.monitors import audit, cloud_sdk


@pytest.fixture(scope="session")
def moto() -> Iterator[Moto]:
    server = Moto()
    yield server
    server.close()


@pytest.fixture(scope="session")
def listener() -> Iterator[Listener]:
    target = Listener()
    yield target
    target.close()


@pytest.fixture(autouse=True)
def _no_policy_leaks() -> Iterator[None]:
    """In-process tests must leave no active policy behind (the hook itself cannot be removed)."""
    yield
    audit.deactivate()
    cloud_sdk.deactivate()
